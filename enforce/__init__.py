"""tinyjail.enforce: apply an OCI seccomp policy to a command (libseccomp via pyseccomp).

Light on purpose: `tinyjail run` imports this, so nothing here pulls in pandas, bcc or dash.

- `build_filter(policy, mode)`: the hardened libseccomp filter (`plan` shows what goes in it).
- `export_bpf` / `export_pfc`: what `tinyjail compile` writes.
- `run(policy, argv, mode)`: fork, load the filter, exec CMD, wait; returns a `RunResult` whose
  ``messages`` start with the policy's notes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tinyjail.policy import Policy, notes

from . import runner
from ._libseccomp import (
    BPF_MAXINSNS,
    IO_URING,
    MODES,
    FilterPlan,
    PlannedRule,
    action_value,
    bpf_bytes,
    build_filter,
    export_bpf,
    export_pfc,
    pfc_text,
    plan,
)
from .complain import ComplainReport, Violation, write_report
from .launch import CommandNotFound
from .runner import Denial, RunResult, apply_in_child, preexec_fn


def run(policy: Policy, argv: Sequence[str], mode: str = "enforce", *, env: dict[str, str] | None = None,
        need_audit: bool | None = None, on_note: Callable[[str], None] | None = None) -> RunResult:
    """`runner.run` (fork, load the filter, exec, wait) with the policy's notes (unknown
    top-level keys kept as written, syscalls the installed libseccomp skips): given to
    ``on_note`` once the filter is built, before CMD starts (`tinyjail run` prints them then),
    else first in ``messages``."""
    found = [f"note: {line}" for line in notes(policy)]
    if on_note is None:
        result = runner.run(policy, argv, mode, env=env, need_audit=need_audit)
        result.messages[:0] = found
        return result
    say = on_note

    def before_start() -> None:     # only once the filter is built: a refused policy says why, not notes
        for line in found:
            say(line)

    return runner.run(policy, argv, mode, env=env, need_audit=need_audit, before_start=before_start)


__all__ = [
    "BPF_MAXINSNS",
    "IO_URING",
    "MODES",
    "CommandNotFound",
    "ComplainReport",
    "Denial",
    "FilterPlan",
    "PlannedRule",
    "RunResult",
    "Violation",
    "action_value",
    "apply_in_child",
    "bpf_bytes",
    "build_filter",
    "export_bpf",
    "export_pfc",
    "pfc_text",
    "plan",
    "preexec_fn",
    "run",
    "write_report",
]
