"""The complain-mode report: which syscalls the policy would have refused, from audit records.

In complain mode every refusing action is SCMP_ACT_LOG, so each would-be-denied call leaves
one kernel audit record of type SECCOMP (1326). The audit records are the source of truth
(not dmesg, which is rate-limited): one record is one call, so the counts are exact.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tinyjail.newfile import check_new, write_new
from tinyjail.policy import Policy

REPORT_FORMAT = "tinyjail-complain-report/1"


@dataclass
class Violation:
    """One syscall (on one ABI) that the policy would have refused, with how often and where first."""

    name: str
    nr: int
    arch: str
    count: int
    first_pid: int
    first_ip: int
    comm: str
    exe: str


@dataclass
class ComplainReport:
    """Everything `tinyjail run --mode complain` prints and writes with --report."""

    command: list[str]
    policy: str | None
    exit_status: int
    violations: list[Violation] = field(default_factory=list)
    logged_by_policy: int = 0          # records of rules whose own action is SCMP_ACT_LOG
    family_complete: bool = True
    lost: int = 0                      # audit records that never reached us (counts are then too low)

    @property
    def total(self) -> int:
        """Every would-be-denied call."""
        return sum(v.count for v in self.violations)

    def suggestion(self) -> dict[str, Any] | None:
        """One rule that would allow every native syscall seen, as it would be added to ``syscalls``."""
        names = sorted({v.name for v in self.violations if v.arch == "x86_64"})
        return {"names": names, "action": "SCMP_ACT_ALLOW"} if names else None

    def foreign_arches(self) -> list[str]:
        """ABIs other than x86_64 that were used; the policy would have to list them."""
        return sorted({v.arch for v in self.violations if v.arch != "x86_64"})

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written by --report."""
        return {
            "format": REPORT_FORMAT,
            "command": self.command,
            "policy": self.policy,
            "mode": "complain",
            "exit_status": self.exit_status,
            "total": self.total,
            "logged_by_policy": self.logged_by_policy,
            "family_complete": self.family_complete,
            "lost_records": self.lost,
            "violations": [asdict(v) for v in self.violations],
            "suggestion": self.suggestion(),
            "foreign_arches": self.foreign_arches(),
        }


def policy_logged_names(policy: Policy) -> frozenset[str]:
    """Syscalls whose every rule is SCMP_ACT_LOG as written: their records are not violations."""
    from tinyjail.policy import effective_rules

    actions: dict[str, set[str]] = {}
    for rule in effective_rules(policy):
        actions.setdefault(rule.name, set()).add(rule.action)
    return frozenset(n for n, acts in actions.items() if acts == {"SCMP_ACT_LOG"})


def build_report(
    records: Iterable[Any],
    command: Sequence[str],
    policy: Policy,
    logged_by_policy: frozenset[str],
    exit_status: int,
    *,
    family_complete: bool = True,
) -> ComplainReport:
    """Aggregate SECCOMP audit records (action ``log``) by (arch, syscall), first occurrence kept."""
    by_key: dict[tuple[str, int], Violation] = {}
    policy_logs = 0
    for r in sorted(records, key=lambda r: r.serial):
        if r.action != "log":
            continue
        if r.arch == "x86_64" and r.name in logged_by_policy:
            policy_logs += 1
            continue
        key = (r.arch, r.nr)
        v = by_key.get(key)
        if v is None:
            by_key[key] = Violation(r.name, r.nr, r.arch, 1, r.pid, r.ip, r.comm, r.exe)
        else:
            v.count += 1
    violations = sorted(by_key.values(), key=lambda v: (-v.count, v.arch, v.name))
    return ComplainReport(list(command), policy.source, exit_status, violations, policy_logs, family_complete)


def check_writable(path: str | os.PathLike[str], force: bool) -> Path:
    """Refuse a report path that cannot be written (an existing file without --force, a missing or
    read-only directory) before CMD runs, so a bad path never costs CMD's result."""
    return check_new(path, force)


def write_report(report: ComplainReport, path: str | os.PathLike[str], force: bool = False) -> Path:
    """Write the report as JSON: atomically, never through a symlink, never over an existing file
    without ``force``. Raises UsageError."""
    return write_new(path, json.dumps(report.to_dict(), indent=2) + "\n", force=force)


def render(report: ComplainReport, console: Any) -> None:
    """Print the table of would-be-denied syscalls with rich (imported here: enforce mode never needs it)."""
    from rich.table import Table

    if not report.violations:
        console.print(f"complain: no syscall would have been denied ({report.command[0]} exited "
                      f"{report.exit_status})")
    else:
        title = f"would have been denied: {report.total} calls of {len(report.violations)} syscalls"
        table = Table(title=title)
        for col, kw in (("syscall", {}), ("nr", {"justify": "right"}), ("arch", {}),
                        ("count", {"justify": "right"}), ("first pid", {"justify": "right"}),
                        ("ip", {}), ("comm", {})):
            table.add_column(col, **kw)  # type: ignore[arg-type]
        for v in report.violations:
            table.add_row(v.name, str(v.nr), v.arch, str(v.count), str(v.first_pid), f"{v.first_ip:#x}",
                          v.comm)
        console.print(table)
        sug = report.suggestion()
        if sug:
            console.print("to allow them, add to \"syscalls\":", style="bold")
            console.print(json.dumps(sug), markup=False, highlight=False, soft_wrap=True)
        for arch in report.foreign_arches():
            console.print(f"calls of the {arch} ABI were seen: list it in \"architectures\" to allow them")
    if report.logged_by_policy:
        console.print(f"({report.logged_by_policy} calls were logged by the policy's own SCMP_ACT_LOG rules)")
    if report.lost:
        console.print(f"warning: {report.lost} audit records were lost; the counts above are too low",
                      style="bold red")
    if not report.family_complete:
        console.print("note: child processes could not be followed; only CMD's own pid was counted")
