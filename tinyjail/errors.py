"""One exception tree, so the CLI can turn every expected failure into a one-line message.

Backends wrap OSError/RuntimeError into these at their edge; anything else is a bug.
"""

from __future__ import annotations


class TinyjailError(Exception):
    """Base of every error tinyjail raises on purpose. `exit_code` is what the CLI exits with."""

    exit_code: int = 2


class UsageError(TinyjailError):
    """Bad input from the user that is not a policy file (a syscall name, a path, an option)."""


class PolicyError(TinyjailError):
    """A policy file is unreadable or invalid. `problems` holds every problem, one line each."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class TraceError(TinyjailError):
    """A trace cannot be recorded, read or written."""


class EnforceError(TinyjailError):
    """A filter, Landlock ruleset or namespace cannot be applied: the command is not run (fail closed)."""

    exit_code = 125


class BackendUnavailable(TinyjailError):
    """A kernel feature or system component is missing (root, eBPF, tracefs, headers, runc...)."""

    exit_code = 2


def describe_os_error(err: OSError) -> str:
    """`reason: path` of an OSError nobody wrapped (the CLI's last-resort line), e.g.
    ``No such file or directory: /nonexist/x.bpf``."""
    reason = err.strerror or str(err) or type(err).__name__
    paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
    return ": ".join([reason, " -> ".join(paths)]) if paths else reason


for _cls in (TinyjailError, UsageError, PolicyError, TraceError, EnforceError, BackendUnavailable):
    _cls.__module__ = "tinyjail.errors"
