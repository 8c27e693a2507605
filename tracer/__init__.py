"""tinyjail.tracer: record every syscall of a process tree with eBPF and store it as Parquet timelines.

Importing this package is cheap: bcc is imported only when a recording starts.
"""

from tinyjail.timeline import Trace, load, save

__all__ = ["Trace", "load", "save"]
