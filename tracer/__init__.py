"""tinyjail.tracer: record every syscall of a process tree with eBPF and store it as Parquet timelines.

Importing this package is cheap: bcc (and numpy/pyarrow) are imported only when a recording
starts; `record` and `record_to` are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tinyjail.timeline import Trace, load, save

if TYPE_CHECKING:
    from tinyjail.tracer.recorder import RecordResult, record, record_to

_LAZY = {"record": "recorder", "record_to": "recorder", "RecordResult": "recorder"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tinyjail.tracer' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"tinyjail.tracer.{module}"), name)


__all__ = ["RecordResult", "Trace", "load", "record", "record_to", "save"]
