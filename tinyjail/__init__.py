"""tinyjail: find the system calls a program really needs, then lock it to exactly those.

The package root stays import-light: `tinyjail run` must start fast, so nothing here
pulls in pandas, bcc or dash.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
