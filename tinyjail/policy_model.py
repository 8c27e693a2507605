"""The OCI runtime-spec ``linux.seccomp`` policy as data: the dataclasses, the vocabulary of the
format (actions, comparisons, flags, architectures, keys) and the precedence of actions.

A `Policy` is the JSON object as written, kept faithfully so it saves back unchanged (``@group``
names, symbolic argument values, moby's keys). Everything else (reading, writing, compiling,
portability, merging) lives in its own ``tinyjail.policy_*`` module; `tinyjail.policy` is the
facade that re-exports them all.
"""

from __future__ import annotations

import errno as errno_mod
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tinyjail import syscalls

ACTIONS: tuple[str, ...] = (
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL",          # = KILL_THREAD
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_LOG",
    "SCMP_ACT_ALLOW",
)
"""Every action of the runtime spec, strictest first (the kernel's precedence order when
several stacked filters disagree: KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > USER_NOTIF >
TRACE > LOG > ALLOW)."""

OPS: tuple[str, ...] = (
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)
"""The seven argument comparisons (MASKED_EQ: ``(arg & value) == valueTwo``)."""

FLAGS: tuple[str, ...] = (
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
)

DENY_ACTIONS: frozenset[str] = frozenset(
    {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO"}
)
"""Actions that refuse the call; complain mode turns each into SCMP_ACT_LOG."""

PERMIT_ACTIONS: frozenset[str] = frozenset(
    {"SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE"}
)
"""Actions under which the call can still happen (NOTIFY/TRACE: if the supervisor/tracer lets it)."""

RET_DATA_ACTIONS: frozenset[str] = frozenset({"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"})
"""Actions that carry ``errnoRet`` (runc passes it as the errno, or as the ptrace event message)."""

SPEC_ARCHES: tuple[str, ...] = (
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
)
"""Architecture names of the runtime spec and of current libseccomp (older libseccomp may lack some)."""

KNOWN_ARCHES: tuple[str, ...] = tuple(sorted(set(SPEC_ARCHES) | set(syscalls.OCI_ARCHES)))

MAX_ERRNO = 4095
"""Largest errno a syscall can return (the kernel's MAX_ERRNO); larger values are not errors to libc."""

UINT64_MAX = 2**64 - 1
DEFAULT_ERRNO = errno_mod.EPERM
"""What runc returns for SCMP_ACT_ERRNO/SCMP_ACT_TRACE without errnoRet."""

TOP_KEYS = ("defaultAction", "defaultErrnoRet", "architectures", "flags", "listenerPath",
            "listenerMetadata", "syscalls", "archMap")
RULE_KEYS = ("names", "name", "action", "errnoRet", "args", "comment", "includes", "excludes")
ARG_KEYS = ("index", "value", "valueTwo", "op")
CONDITION_KEYS = ("caps", "arches", "minKernel")


@dataclass(frozen=True)
class Arg:
    """One argument condition. ``symbolic`` keeps a value written as a name (``"AF_UNIX"``,
    ``"CLONE_NEWUSER|CLONE_NEWNS"``) so it saves back as written; ``value`` is always numeric."""

    index: int
    value: int
    op: str
    value_two: int = 0
    symbolic: str | None = None
    symbolic_two: str | None = None

    def matches(self, args: Sequence[int]) -> bool:
        """Whether syscall arguments ``args`` satisfy this condition (compared as uint64)."""
        a = (args[self.index] if self.index < len(args) else 0) & UINT64_MAX
        v = self.value & UINT64_MAX
        if self.op == "SCMP_CMP_NE":
            return a != v
        if self.op == "SCMP_CMP_LT":
            return a < v
        if self.op == "SCMP_CMP_LE":
            return a <= v
        if self.op == "SCMP_CMP_EQ":
            return a == v
        if self.op == "SCMP_CMP_GE":
            return a >= v
        if self.op == "SCMP_CMP_GT":
            return a > v
        if self.op == "SCMP_CMP_MASKED_EQ":
            return (a & v) == (self.value_two & UINT64_MAX)
        raise ValueError(f"unknown op {self.op!r}")

    def key(self) -> tuple[int, str, int, int]:
        """The numeric identity of the condition (symbolic spelling ignored)."""
        two = self.value_two if self.op == "SCMP_CMP_MASKED_EQ" else 0
        return (self.index, self.op, self.value, two)

    def text(self) -> str:
        """Short human form, e.g. ``a0 == AF_UNIX`` or ``a0 & 0x7e020000 == 0``."""
        sym = {"SCMP_CMP_NE": "!=", "SCMP_CMP_LT": "<", "SCMP_CMP_LE": "<=", "SCMP_CMP_EQ": "==",
               "SCMP_CMP_GE": ">=", "SCMP_CMP_GT": ">"}
        value = self.symbolic if self.symbolic is not None else _num(self.value)
        if self.op == "SCMP_CMP_MASKED_EQ":
            two = self.symbolic_two if self.symbolic_two is not None else _num(self.value_two)
            return f"a{self.index} & {value} == {two}"
        return f"a{self.index} {sym.get(self.op, self.op)} {value}"


def _num(value: int) -> str:
    return str(value) if value < 4096 else hex(value)


@dataclass
class SyscallRule:
    """One entry of ``syscalls[]``. ``names`` may hold ``@group`` names (a tinyjail extension)."""

    names: list[str]
    action: str
    errno_ret: int | None = None
    args: list[Arg] = field(default_factory=list)
    comment: str | None = None
    includes: dict[str, Any] = field(default_factory=dict)   # moby: caps, arches, minKernel
    excludes: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)      # set by callers only (reading refuses
    #                                                          unknown rule keys); written on save


@dataclass
class Policy:
    """A whole ``linux.seccomp`` object (or moby profile), as written."""

    default_action: str = "SCMP_ACT_ERRNO"
    default_errno_ret: int | None = None
    architectures: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    listener_path: str | None = None
    listener_metadata: str | None = None
    syscalls: list[SyscallRule] = field(default_factory=list)
    arch_map: list[dict[str, Any]] | None = None   # moby's archMap, kept on save
    extra: dict[str, Any] = field(default_factory=dict)
    source: str | None = None                      # file it was read from, for messages


@dataclass(frozen=True)
class Rule:
    """One compiled rule: a single syscall name with its action and AND-ed arg conditions.
    Several Rules for the same name with different args are OR-ed."""

    name: str
    action: str
    errno_ret: int | None = None
    args: tuple[Arg, ...] = ()


# --------------------------------------------------------------------------- precedence

_STRICTNESS = {action: rank for rank, action in enumerate(ACTIONS)}
_STRICTNESS["SCMP_ACT_KILL"] = _STRICTNESS["SCMP_ACT_KILL_THREAD"]


def strictness(action: str) -> int:
    """Rank of an action, 0 = strictest (KILL_PROCESS) ... ALLOW = loosest."""
    return _STRICTNESS[action]


def stricter(a: str, b: str) -> str:
    """The stricter of two actions (``a`` on a tie)."""
    return a if strictness(a) <= strictness(b) else b


def ret_errno(action: str, errno_ret: int | None) -> int | None:
    """The errno/trace data the filter really returns: EPERM when ERRNO/TRACE gives none (runc's
    default), None for actions that carry no data."""
    if action not in RET_DATA_ACTIONS:
        return None
    return DEFAULT_ERRNO if errno_ret is None else errno_ret


def action_text(action: str, errno_ret: int | None) -> str:
    """``SCMP_ACT_ERRNO(EACCES)`` style text for an action and its errno as given."""
    if errno_ret is None:
        return action
    if action != "SCMP_ACT_ERRNO":
        return f"{action}({errno_ret})"
    name = errno_mod.errorcode.get(errno_ret, str(errno_ret))
    return f"{action}({name})"


def show_action(action: str, errno_ret: int | None = None) -> str:
    """``SCMP_ACT_ERRNO(EPERM)`` style text for an action and its errno."""
    return action_text(action, ret_errno(action, errno_ret))


def condition_key(rule: SyscallRule) -> str:
    """A rule's moby conditions as a comparable key."""
    return json.dumps([rule.includes, rule.excludes], sort_keys=True)


NO_CONDITIONS = json.dumps([{}, {}], sort_keys=True)
"""`condition_key` of a rule without moby conditions (it applies everywhere)."""


def explicit_names(rules: Iterable[SyscallRule], by_conditions: bool = False) -> set[tuple[str, str]]:
    """(syscall, moby conditions or "") for every name written explicitly (not through a @group)."""
    out: set[tuple[str, str]] = set()
    for rule in rules:
        cond = condition_key(rule) if by_conditions else ""
        out.update((name, cond) for name in rule.names if not name.startswith("@"))
    return out


def group_applies(explicit: set[tuple[str, str]], name: str, cond: str = "") -> bool:
    """Whether a @group rule (with moby conditions ``cond``, "" when they are already decided)
    still decides its member ``name``: not when an entry names it explicitly under the same
    conditions or under none. An explicitly named syscall is defined by its explicit entries
    alone (with their argument rules); the group's unconditional rule would otherwise replace
    them (notes/policy-format.md, "Precedence with groups")."""
    return (name, cond) not in explicit and (name, NO_CONDITIONS) not in explicit


def arg_key(args: Iterable[Arg]) -> tuple[tuple[int, str, int, int], ...]:
    """The numeric identity of a set of AND-ed conditions (order and spelling ignored)."""
    return tuple(sorted(a.key() for a in args))


def arg_sets(args: list[Arg]) -> list[tuple[Arg, ...]]:
    """runc's reading of ``args``: conditions on distinct arguments are AND-ed; when an argument
    index repeats, every condition becomes a rule of its own (OR-ed)."""
    if not args:
        return [()]
    indexes = [a.index for a in args]
    if len(set(indexes)) == len(indexes):
        return [tuple(sorted(args, key=lambda a: a.index))]
    return [(a,) for a in args]
