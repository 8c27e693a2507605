"""Turn recorded traces into a deny-by-default OCI seccomp profile.

The profile allows the union of the syscalls seen in every trace and nothing else. Where a
syscall's dangerous power hides in one argument (socket family, clone namespace flags,
personality, prctl option, ioctl request) the allow rule is narrowed to the values that were
seen, but never below them: every recorded call stays allowed (`verify` proves it with
`tinyjail.policy.evaluate`). See notes/profile.md for the reasoning behind each rule.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tinyjail import syscalls
from tinyjail.errors import TraceError, UsageError
from tinyjail.policy import Arg, Policy, SyscallRule

if TYPE_CHECKING:
    import pandas as pd

    from tinyjail.timeline import Trace

DEFAULTS: dict[str, str] = {"errno": "SCMP_ACT_ERRNO", "kill": "SCMP_ACT_KILL_PROCESS"}
"""`--default` choices -> the action for every syscall the traces never made."""

LOW32 = 0xFFFF_FFFF
"""The int-sized arguments below are compared on their low 32 bits only: the kernel reads an
``int``/``unsigned int`` there, and the x86_64 ABI leaves the upper half of the register undefined."""

ALWAYS_ALLOWED: dict[str, str] = {
    "execve": "exec of the command itself: the filter is installed before it, the trace starts after it",
}
"""Syscalls the enforced command needs although no trace can show them."""

UNFILTERABLE: dict[str, str] = {
    "clone3": "seen; its flags are in memory that seccomp cannot read, so namespace creation through "
    "clone3 cannot be refused while it is allowed",
}
"""Seen syscalls that get a rule of their own to say why their arguments are not narrowed."""

@dataclass(frozen=True)
class Seen:
    """One distinct call shape of a syscall: its six raw arguments and how often it was made."""

    args: tuple[int, int, int, int, int, int]
    count: int


def generate(
    traces: Sequence[Trace],
    default: str = "errno",
    allow_lossy: bool = False,
    *,
    infer_args: bool = True,
    allow_unknown: bool = False,
) -> Policy:
    """A deny-by-default policy allowing exactly what ``traces`` did (plus the command's execve).

    Refuses (TraceError) a lossy trace unless ``allow_lossy``: a dropped event may be the only
    call of a syscall, and a profile missing it kills the program in production. Refuses syscall
    numbers libseccomp cannot name (``syscall_NNN``) unless ``allow_unknown``: an OCI profile
    cannot list them, so they would fall to the default action.
    """
    if default not in DEFAULTS:
        raise UsageError(f"--default must be one of {', '.join(DEFAULTS)}, not {default!r}")
    if not traces:
        raise UsageError("no trace given; record one with 'tinyjail trace -o TRACE -- CMD'")
    for trace in traces:
        if trace.lossy and not allow_lossy:
            raise TraceError(
                f"{trace.name}: lossy trace ({trace.dropped} events dropped); a profile from it may miss "
                "syscalls. Record again, or pass --allow-lossy to accept that risk"
            )
    seen = seen_calls(traces, detail=lambda n: infer_args and n in _INFERENCES)
    unknown = sorted((n for n in seen if not _nameable(n)), key=_unknown_sort_key)
    if unknown and not allow_unknown:
        raise TraceError(
            f"syscalls unknown to libseccomp were recorded ({', '.join(unknown)}); an OCI profile cannot "
            "name them, so they would get the default action. Pass --allow-unknown to deny them anyway"
        )

    plain: list[str] = []
    narrowed: list[SyscallRule] = []
    for name in sorted(seen):
        if not _nameable(name):
            continue
        rules = _infer(name, seen[name]) if infer_args else None
        if rules is None:
            plain.append(name)
        else:
            narrowed.extend(rules)
    extra_needed = sorted(n for n in ALWAYS_ALLOWED if n not in seen)
    unfilterable = [n for n in plain if n in UNFILTERABLE] if infer_args else []
    plain = [n for n in plain if n not in unfilterable]
    rules_out: list[SyscallRule] = []
    if plain:
        rules_out.append(SyscallRule(names=plain, action="SCMP_ACT_ALLOW", comment=_provenance(traces)))
    rules_out.extend(narrowed)
    for name in unfilterable:
        rules_out.append(SyscallRule(names=[name], action="SCMP_ACT_ALLOW", comment=UNFILTERABLE[name]))
    for name in extra_needed:
        rules_out.append(SyscallRule(names=[name], action="SCMP_ACT_ALLOW", comment=ALWAYS_ALLOWED[name]))
    action = DEFAULTS[default]
    return Policy(
        default_action=action,
        default_errno_ret=errno.EPERM if action == "SCMP_ACT_ERRNO" else None,
        architectures=[native_oci_arch()],
        syscalls=rules_out,
    )


def native_oci_arch() -> str:
    """The OCI name of the running machine's ABI. Foreign ABIs are left out so the filter kills them."""
    machine = os.uname().machine
    info = syscalls.ARCHES.get(machine)
    if info is None:
        raise UsageError(
            f"profiles are generated for {', '.join(syscalls.ARCHES)} only; this machine is {machine}"
        )
    return info.oci


def seen_calls(traces: Iterable[Trace], detail: Callable[[str], bool] | None = None) -> dict[str, list[Seen]]:
    """Every syscall of the traces -> its distinct argument tuples with counts.

    Only names for which ``detail(name)`` is true (all when ``detail`` is None) get every distinct
    tuple; the others get one representative tuple carrying the total count, which keeps a
    million-event trace cheap when only a few syscalls have argument rules.
    Seccomp records logged as allowed (complain mode) count as seen calls too: they are calls the
    program made that a stricter policy would have refused.
    """
    out: dict[str, dict[tuple[int, ...], int]] = {}
    for trace in traces:
        for name, args, count in _shapes(trace, detail):
            bucket = out.setdefault(name, {})
            bucket[args] = bucket.get(args, 0) + count
        sc = trace.seccomp
        if len(sc):
            logged = sc[sc["action"].astype("string").isin(["log", "allow"])]
            for nm in logged["name"].astype("string").dropna().unique():
                out.setdefault(str(nm), {})
    result: dict[str, list[Seen]] = {}
    for nm, shapes in out.items():
        if detail is not None and not detail(nm) and len(shapes) > 1:
            first = next(iter(shapes))
            shapes = {first: sum(shapes.values())}
        result[nm] = [Seen(args=_six(k), count=c) for k, c in sorted(shapes.items())]
    return result


def _shapes(trace: Trace, detail: Callable[[str], bool] | None) -> Iterable[tuple[str, tuple[int, ...], int]]:
    """(name, args, count) of the distinct calls of one trace (see `seen_calls`)."""
    ev = trace.events
    if not len(ev):
        return
    names = ev["name"].astype("string")
    missing = names.isna()
    if missing.any():
        names = names.copy()
        names[missing] = [syscalls.name(int(n)) for n in ev.loc[missing, "nr"]]
    frame = ev[_ARG_COLUMNS].astype("uint64").assign(name=names)
    unique = [str(n) for n in names.dropna().unique()]
    detailed = unique if detail is None else [n for n in unique if detail(n)]
    if len(detailed) < len(unique):
        rest = frame[~names.isin(detailed)]
        totals = rest["name"].value_counts()
        for row in rest.drop_duplicates("name").itertuples(index=False):
            yield str(row.name), tuple(int(getattr(row, c)) for c in _ARG_COLUMNS), int(totals[row.name])
    sub = frame[names.isin(detailed)] if len(detailed) < len(unique) else frame
    if len(sub):
        grouped = sub.groupby(["name", *_ARG_COLUMNS], observed=True, sort=False).size()
        for key, count in grouped.items():
            assert isinstance(key, tuple)
            nm, *vals = key
            yield str(nm), tuple(int(v) for v in vals), int(count)


def _six(args: tuple[int, ...]) -> tuple[int, int, int, int, int, int]:
    a = (*args, 0, 0, 0, 0, 0, 0)
    return (a[0], a[1], a[2], a[3], a[4], a[5])


_ARG_COLUMNS = [f"arg{i}" for i in range(6)]


def verify(policy: Policy, traces: Iterable[Trace]) -> list[str]:
    """Every recorded call the policy would refuse, one line each (empty: the profile covers the traces)."""
    from tinyjail.policy import DENY_ACTIONS, effective_rules, evaluate

    conditioned = {rule.name for rule in effective_rules(policy) if rule.args}
    problems: list[str] = []
    for name, shapes in sorted(seen_calls(traces, detail=conditioned.__contains__).items()):
        if not _nameable(name):
            problems.append(f"{name}: cannot be named in an OCI profile (unknown to libseccomp)")
            continue
        for shape in shapes:
            action, ret = evaluate(policy, name, shape.args)
            if action in DENY_ACTIONS:
                shown = ", ".join(hex(a) for a in shape.args)
                problems.append(f"{name}({shown}) x{shape.count}: {action}" + (f" ({ret})" if ret else ""))
    return problems


# --- argument inference -------------------------------------------------------------------------

Inference = Callable[[str, list["Seen"]], "list[SyscallRule] | None"]


def _infer(name: str, shapes: list[Seen]) -> list[SyscallRule] | None:
    """Narrowed rules for ``name``, or None when it is allowed whatever its arguments."""
    rule = _INFERENCES.get(name)
    if rule is None or not shapes:
        return None
    return rule(name, shapes)


def _low32_is(index: int, value: int) -> Arg:
    return Arg(index=index, value=LOW32, op="SCMP_CMP_MASKED_EQ", value_two=value & LOW32)


def _render(name: str, index: int, value: int) -> str:
    """``AF_INET`` for display; hex when the symbols table has no name for it."""
    from tinyjail.symbols import render

    if name == "personality" and index == 0 and value == LOW32:
        return "0xffffffff (query only)"
    try:
        text = render(name, index, value, "SCMP_CMP_EQ")
    except (ValueError, KeyError):
        text = None
    return text or hex(value)


def _per_value(index: int, what: str) -> Inference:
    """One allow rule per distinct value of argument ``index`` (personality, prctl, ioctl)."""

    def infer(name: str, shapes: list[Seen]) -> list[SyscallRule] | None:
        counts: dict[int, int] = {}
        for s in shapes:
            v = s.args[index] & LOW32
            counts[v] = counts.get(v, 0) + s.count
        return [
            SyscallRule(
                names=[name],
                action="SCMP_ACT_ALLOW",
                args=[_low32_is(index, v)],
                comment=f"{what} {_render(name, index, v)} (seen {n}x)",
            )
            for v, n in sorted(counts.items())
        ]

    return infer


def _socket(name: str, shapes: list[Seen]) -> list[SyscallRule] | None:
    """One rule per (family, type) seen; SOCK_CLOEXEC/SOCK_NONBLOCK and the protocol stay free."""
    from tinyjail.argrules import SOCK_TYPE_BITS as type_mask
    counts: dict[tuple[int, int], int] = {}
    for s in shapes:
        key = (s.args[0] & LOW32, s.args[1] & type_mask)
        counts[key] = counts.get(key, 0) + s.count
    return [
        SyscallRule(
            names=[name],
            action="SCMP_ACT_ALLOW",
            args=[
                _low32_is(0, family),
                Arg(index=1, value=type_mask, op="SCMP_CMP_MASKED_EQ", value_two=kind),
            ],
            comment=f"{_render(name, 0, family)}, {_render(name, 1, kind)} (seen {n}x)",
        )
        for (family, kind), n in sorted(counts.items())
    ]


def clone_namespace_mask() -> int:
    """The CLONE_NEW* bits a clone() call can carry (shared with tinyjail.argrules; CLONE_NEWTIME is
    not among them: in clone() its bit belongs to the exit-signal byte)."""
    from tinyjail.argrules import namespace_flags

    return namespace_flags()[1]


def _clone(name: str, shapes: list[Seen]) -> list[SyscallRule] | None:
    """clone without namespace flags, unless a namespace was created during the trace."""
    mask = clone_namespace_mask()
    if any(s.args[0] & mask for s in shapes):
        return None
    total = sum(s.count for s in shapes)
    return [
        SyscallRule(
            names=[name],
            action="SCMP_ACT_ALLOW",
            args=[Arg(index=0, value=mask, op="SCMP_CMP_MASKED_EQ", value_two=0)],
            comment=f"clone without CLONE_NEW* namespace flags (none in {total} recorded calls)",
        )
    ]


_INFERENCES: dict[str, Inference] = {
    "socket": _socket,
    "clone": _clone,
    "personality": _per_value(0, "persona"),
    "prctl": _per_value(0, "option"),
    "ioctl": _per_value(1, "request"),
}
"""Syscalls whose rules are narrowed to the argument values seen (see notes/profile.md)."""

INFERRED_SYSCALLS: tuple[str, ...] = tuple(_INFERENCES)


# --- helpers ------------------------------------------------------------------------------------


def _nameable(name: str) -> bool:
    return not name.startswith("syscall_") and syscalls.is_known(name)


def _unknown_sort_key(name: str) -> tuple[int, str]:
    tail = name.removeprefix("syscall_")
    return (int(tail), name) if tail.isdigit() else (1 << 30, name)


def _provenance(traces: Sequence[Trace]) -> str:
    labels = ", ".join(_label(t) for t in traces[:4]) + (
        f" and {len(traces) - 4} more" if len(traces) > 4 else ""
    )
    return f"seen in {labels}"


def _label(trace: Trace) -> str:
    cmd = trace.meta.get("command")
    return f"{trace.name} ({cmd})" if cmd and cmd != trace.name else trace.name


def event_count(traces: Iterable[Trace]) -> int:
    """Recorded syscalls over all traces (for summaries)."""
    return sum(len(t.events) for t in traces)


def summary_frame(policy: Policy) -> pd.DataFrame:
    """One row per rule (names, action, argument conditions, comment), for the CLI's table."""
    import pandas as pd

    rows = []
    for rule in policy.syscalls:
        conds = " && ".join(_condition_text(rule.names[0], a) for a in rule.args)
        rows.append(
            {"names": ", ".join(rule.names), "action": rule.action, "args": conds, "comment": rule.comment}
        )
    return pd.DataFrame(rows, columns=["names", "action", "args", "comment"])


def _condition_text(name: str, arg: Arg) -> str:
    if arg.op == "SCMP_CMP_MASKED_EQ":
        if arg.value == LOW32:
            return f"arg{arg.index} == {_render(name, arg.index, arg.value_two)}"
        if arg.value_two == 0:
            return f"arg{arg.index} & {_render(name, arg.index, arg.value)} == 0"
        return f"arg{arg.index} & {arg.value:#x} == {_render(name, arg.index, arg.value_two)}"
    return f"arg{arg.index} {arg.op.removeprefix('SCMP_CMP_')} {arg.value:#x}"


__all__ = [
    "ALWAYS_ALLOWED",
    "DEFAULTS",
    "INFERRED_SYSCALLS",
    "Seen",
    "clone_namespace_mask",
    "event_count",
    "generate",
    "native_oci_arch",
    "seen_calls",
    "summary_frame",
    "verify",
]
