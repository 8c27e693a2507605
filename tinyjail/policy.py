"""The OCI runtime-spec ``linux.seccomp`` policy model (the ``db.c`` of tinyjail).

A `Policy` is the JSON object as written, kept faithfully so it saves back unchanged
(``@group`` names stay as written, moby's ``includes``/``excludes``/``archMap`` are kept).
`effective_rules` is the compiled view: groups expanded, moby conditions evaluated for
this machine, one `Rule` per (syscall, action, arg conditions). `evaluate` is a pure
simulator of what the kernel filter will decide, like libseccomp's ``bpf_sim``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ACTIONS: tuple[str, ...] = (
    "SCMP_ACT_KILL",          # = KILL_THREAD
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
)
"""Every action of the runtime spec, strictest first (the kernel's own precedence order)."""

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
    extra: dict[str, Any] = field(default_factory=dict)      # unknown keys, kept on save


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
