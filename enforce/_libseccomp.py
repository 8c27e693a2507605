"""Compile a `Policy` into a libseccomp filter (pyseccomp), with tinyjail's hardened defaults.

This is the only module that talks to libseccomp for enforcement. Every failure of
libseccomp (OSError/RuntimeError/ValueError from pyseccomp) becomes an `EnforceError`
(exit 125) naming the rule at fault, so a filter that cannot be built never runs anything.

Choices (documented in notes/threat-model.md):

* The default action is used as written, except that a *kill* default (``SCMP_ACT_KILL``,
  which the runtime spec defines as kill-thread, or ``SCMP_ACT_KILL_THREAD``) becomes
  ``SCMP_ACT_KILL_PROCESS``: killing one thread of a multi-threaded program leaves it running
  in an undefined state. Rule actions are kept as written.
* Bad architecture: calls from an ABI the policy does not list (i386 ``int 0x80``, x32
  numbers) kill the process. libseccomp 2.5 sends x32 numbers (bit 0x40000000) of an
  x86_64-only filter to the bad-arch action too.
* ``io_uring_setup/enter/register`` are refused with EPERM unless a rule names them
  literally (io_uring performs I/O without syscalls, so seccomp cannot see it).
* ``clone3`` is answered with ENOSYS when ``clone`` has argument rules (clone3 takes its
  flags in memory that seccomp cannot read; glibc falls back to clone on ENOSYS) unless
  a rule names ``clone3`` literally.
* complain mode turns every refusing action (KILL*, TRAP, ERRNO) into ``SCMP_ACT_LOG``,
  including the bad-arch action and the io_uring refusal; the clone3 ENOSYS stays, so the
  program takes its clone path and the clone argument rules are what gets logged.
"""

from __future__ import annotations

import errno as errno_mod
import functools
import io
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Literal

import pyseccomp

from tinyjail import syscalls
from tinyjail.errors import EnforceError, PolicyError
from tinyjail.policy import DENY_ACTIONS, Arg, Policy, Rule

Mode = Literal["enforce", "complain"]
MODES: tuple[str, ...] = ("enforce", "complain")

BPF_MAXINSNS = 4096
"""The kernel refuses a classic BPF program longer than this (include/uapi/linux/bpf_common.h)."""

IO_URING = ("io_uring_setup", "io_uring_enter", "io_uring_register")

_KILLS = frozenset({"SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS"})

_OPS: dict[str, int] = {
    "SCMP_CMP_NE": pyseccomp.NE,
    "SCMP_CMP_LT": pyseccomp.LT,
    "SCMP_CMP_LE": pyseccomp.LE,
    "SCMP_CMP_EQ": pyseccomp.EQ,
    "SCMP_CMP_GE": pyseccomp.GE,
    "SCMP_CMP_GT": pyseccomp.GT,
    "SCMP_CMP_MASKED_EQ": pyseccomp.MASKED_EQ,
}

# OCI flag -> libseccomp filter attribute (libseccomp 2.5 has no WAIT_KILLABLE_RECV).
_FLAG_ATTRS: dict[str, int] = {
    "SECCOMP_FILTER_FLAG_TSYNC": pyseccomp.Attr.CTL_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": pyseccomp.Attr.CTL_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": pyseccomp.Attr.CTL_SSB,
}


@dataclass(frozen=True)
class PlannedRule:
    """One rule as it goes into libseccomp: a syscall, an action value and AND-ed conditions.
    ``origin`` says where it came from ("policy", "io_uring", "clone3") for `tinyjail compile`."""

    name: str
    action: str
    errno_ret: int | None
    args: tuple[Arg, ...]
    value: int
    origin: str = "policy"


@dataclass
class FilterPlan:
    """Everything `build_filter` will hand to libseccomp, computed without touching it."""

    mode: str
    default_action: str
    default_value: int
    badarch_value: int
    arches: list[str]
    rules: list[PlannedRule] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    hardening: list[str] = field(default_factory=list)   # one line per hardened default applied
    ignored_arches: list[str] = field(default_factory=list)
    source: str | None = None                             # the policy file, for messages


def action_value(action: str, errno_ret: int | None = None) -> int:
    """The kernel's SECCOMP_RET_* value of an OCI action (ERRNO/TRACE default to EPERM, as runc)."""
    ret = errno_mod.EPERM if errno_ret is None else int(errno_ret)
    if action == "SCMP_ACT_KILL_PROCESS":
        return pyseccomp.KILL_PROCESS
    if action in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return pyseccomp.KILL_THREAD
    if action == "SCMP_ACT_TRAP":
        return pyseccomp.TRAP
    if action == "SCMP_ACT_ERRNO":
        return pyseccomp.ERRNO(ret)
    if action == "SCMP_ACT_TRACE":
        return pyseccomp.TRACE(ret)
    if action == "SCMP_ACT_ALLOW":
        return pyseccomp.ALLOW
    if action == "SCMP_ACT_LOG":
        return pyseccomp.LOG
    if action == "SCMP_ACT_NOTIFY":
        return pyseccomp.NOTIFY
    raise EnforceError(f"unknown seccomp action {action!r}")


def _filter_arches(policy: Policy) -> tuple[list[str], list[str]]:
    """The x86 ABIs the filter covers (native first) and the listed arches it ignores.

    ``architectures`` as written; a moby profile without it uses its ``archMap`` entry for
    the native arch (what Docker does). Non-x86 arches can never be reported by this kernel,
    so they are ignored instead of growing the program.
    """
    from tinyjail.policy import effective_architectures

    listed = effective_architectures(policy, syscalls.ARCHES[syscalls.NATIVE_ARCH].oci)
    by_oci = {info.oci: short for short, info in syscalls.ARCHES.items()}
    arches = [syscalls.NATIVE_ARCH]
    ignored: list[str] = []
    for oci in listed:
        short = by_oci.get(oci)
        if short is None:
            if oci not in syscalls.OCI_ARCHES:
                raise EnforceError(f"unknown architecture {oci!r} in the policy")
            ignored.append(oci)
        elif short not in arches:
            arches.append(short)
    return arches, ignored


def _named_literally(policy: Policy) -> set[str]:
    return {n for rule in policy.syscalls for n in rule.names if not n.startswith("@")}


def _effective(policy: Policy, arches: Iterable[str]) -> list[Rule]:
    """The native rules, plus rules for names only a listed foreign ABI has (i386's socketcall...).

    moby's ``includes.arches`` are evaluated for the native arch only, as Docker does (it
    compares them with the runtime's GOARCH); libseccomp then translates each rule by name to
    every ABI of the filter.
    """
    from tinyjail.policy import effective_rules

    native = set(syscalls.table(syscalls.NATIVE_ARCH))
    seen: dict[Rule, None] = dict.fromkeys(effective_rules(policy, syscalls.NATIVE_ARCH))
    for arch in arches:
        if arch == syscalls.NATIVE_ARCH or set(syscalls.table(arch)) <= native:
            continue
        for rule in effective_rules(policy, arch):
            if rule.name not in native:
                seen.setdefault(rule, None)
    return list(seen)


def _uses_notify(policy: Policy) -> str | None:
    """The JSON path of the first SCMP_ACT_NOTIFY action."""
    if policy.default_action == "SCMP_ACT_NOTIFY":
        return "$.defaultAction"
    for i, rule in enumerate(policy.syscalls):
        if rule.action == "SCMP_ACT_NOTIFY":
            return f"$.syscalls[{i}].action ({', '.join(rule.names)})"
    return None


def _named(source: str | None, err: EnforceError) -> EnforceError:
    """``err`` with the policy file in front, so the exit-125 line says which policy it is."""
    if source is None or isinstance(err, PolicyError) or str(err).startswith(f"{source}: "):
        return err
    return EnforceError(f"{source}: {err}")


class PolicyNotEnforceable(EnforceError, PolicyError):
    """The filter cannot express the policy: exit 125 like every EnforceError (CMD is not run),
    one line per problem (``FILE: $.json.path: ...``) like a PolicyError."""

    exit_code = 125


def _check_unknown_names(policy: Policy, default_action: str) -> None:
    """Fail closed when a rule would be dropped although it is stricter than the default action.

    `effective_rules` drops syscalls the installed libseccomp cannot resolve (moby's profile
    lists newer ones: mseal, statmount, listmount...). The filter then gives them its default
    action: harmless for an ALLOW rule under an ERRNO default (the call is refused anyway),
    but a KILL rule under an ALLOW default would silently let the call through.
    """
    from tinyjail.policy import show_action, strictness, unknown_to_libseccomp

    src = policy.source or "<policy>"
    default = show_action(default_action, policy.default_errno_ret)
    lines = []
    for entry in unknown_to_libseccomp(policy):
        if strictness(entry.action) >= strictness(default_action):
            continue
        if entry.written.startswith("@"):
            shown = ", ".join(entry.names[:5]) + (", ..." if len(entry.names) > 5 else "")
            what, them = f"{len(entry.names)} syscalls of {entry.written} ({shown})", "them"
        else:
            what, them = f'"{entry.written}"', "it"
        lines.append(
            f"{src}: {entry.path}: the installed libseccomp {libseccomp_version()} does not know {what}, "
            f"so the filter cannot give {them} {show_action(entry.action, entry.errno_ret)}; the default "
            f"{default} would apply instead (fail closed: drop the rule, make the default at least as "
            "strict, or use a libseccomp that knows the syscall)"
        )
    if lines:
        raise PolicyNotEnforceable(lines)


@functools.cache
def libseccomp_version() -> str:
    """The loaded libseccomp's version (``seccomp_version()``), e.g. ``2.5.4``."""
    import ctypes
    import ctypes.util

    class _Version(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]

    try:
        lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2")
        lib.seccomp_version.restype = ctypes.POINTER(_Version)
        v = lib.seccomp_version().contents
    except (OSError, AttributeError):
        return "(unknown version)"
    return f"{v.major}.{v.minor}.{v.micro}"


def plan(policy: Policy, mode: str = "enforce", *, supervised: bool = False) -> FilterPlan:
    """Decide every rule, action and attribute of the filter (pure: libseccomp is not called).

    Raises EnforceError, naming the policy file, when the filter could not enforce the policy
    as written (PolicyNotEnforceable, one line per entry, for rules naming syscalls libseccomp
    does not know).
    """
    try:
        found = _plan(policy, mode, supervised)
    except EnforceError as err:
        raise _named(policy.source, err) from err
    found.source = policy.source
    return found


def _plan(policy: Policy, mode: str, supervised: bool) -> FilterPlan:
    if mode not in MODES:
        raise EnforceError(f"unknown mode {mode!r} (use enforce or complain)")
    where = _uses_notify(policy)
    if where is not None and not supervised:
        raise EnforceError(
            f"{where}: SCMP_ACT_NOTIFY needs a supervisor listening on the notify fd; "
            "tinyjail run has none, so it cannot enforce this policy (fail closed). Use another action."
        )
    complain = mode == "complain"

    def mapped(action: str) -> str:
        return "SCMP_ACT_LOG" if complain and action in DENY_ACTIONS else action

    default_action = policy.default_action
    hardening: list[str] = []
    if default_action in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        default_action = "SCMP_ACT_KILL_PROCESS"
        hardening.append(f"default {policy.default_action} -> SCMP_ACT_KILL_PROCESS "
                         "(a violation kills the process)")
    _check_unknown_names(policy, default_action)
    default_action = mapped(default_action)
    default_value = action_value(default_action, policy.default_errno_ret)

    arches, ignored = _filter_arches(policy)
    badarch = pyseccomp.LOG if complain else pyseccomp.KILL_PROCESS
    foreign = [a for a in ("x86", "x32") if a not in arches]
    if foreign:
        hardening.append(f"calls of the {'/'.join(foreign)} ABI kill the process "
                         "(the policy does not list it)")

    rules = _effective(policy, arches)
    literal = _named_literally(policy)
    planned: list[PlannedRule] = []
    for rule in rules:
        if rule.name in IO_URING and rule.name not in literal:
            continue
        action = mapped(rule.action)
        planned.append(PlannedRule(rule.name, action, rule.errno_ret, tuple(rule.args),
                                   action_value(action, rule.errno_ret)))

    deny_default = policy.default_action in DENY_ACTIONS
    unnamed = [name for name in IO_URING if name not in literal]
    for name in unnamed if not deny_default else ():
        action = mapped("SCMP_ACT_ERRNO")
        planned.append(PlannedRule(name, action, errno_mod.EPERM, (), action_value(action, errno_mod.EPERM),
                                   "io_uring"))
    if unnamed:
        how = "by the default action" if deny_default else "with EPERM"
        hardening.append(f"{', '.join(unnamed)}: not named in the policy, so refused {how} "
                         "(name them in a rule to opt out)")

    if any(r.name == "clone" and r.args for r in rules) and "clone3" not in literal:
        planned = [r for r in planned if r.name != "clone3"]
        planned.append(PlannedRule("clone3", "SCMP_ACT_ERRNO", errno_mod.ENOSYS, (),
                                   action_value("SCMP_ACT_ERRNO", errno_mod.ENOSYS), "clone3"))
        hardening.append("clone3: ENOSYS because clone has argument rules (name clone3 to opt out)")

    # libseccomp refuses a rule whose action is the default one (EACCES); it changes nothing.
    planned = [r for r in planned if r.value != default_value]

    for i, flag in enumerate(policy.flags):
        if flag not in _FLAG_ATTRS:
            needs = " (it needs 2.6)" if flag == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" else ""
            raise EnforceError(f"$.flags[{i}]: filter flag {flag} is not supported by the installed "
                               f"libseccomp {libseccomp_version()}{needs}")
    return FilterPlan(mode, default_action, default_value, badarch, arches, planned, list(policy.flags),
                      hardening, ignored)


def _describe(rule: PlannedRule) -> str:
    conds = " && ".join(
        f"arg{a.index} {a.op.removeprefix('SCMP_CMP_')} {a.value:#x}"
        + (f" == {a.value_two:#x}" if a.op == "SCMP_CMP_MASKED_EQ" else "")
        for a in rule.args
    )
    return f"{rule.name} -> {rule.action}" + (f" if {conds}" if conds else "")


def _check_args(rule: PlannedRule) -> None:
    indexes = [a.index for a in rule.args]
    for a in rule.args:
        if not 0 <= a.index <= 5:
            raise EnforceError(f"rule {_describe(rule)}: argument index {a.index} is not in 0..5")
        if a.op not in _OPS:
            raise EnforceError(f"rule {_describe(rule)}: unknown comparison {a.op!r}")
    if len(set(indexes)) != len(indexes):
        raise EnforceError(
            f"rule {_describe(rule)}: libseccomp 2.5 cannot test the same argument twice in one rule; "
            "split it into several rules (they are OR-ed) or use SCMP_CMP_MASKED_EQ"
        )


def build_filter(
    policy: Policy, mode: str = "enforce", *, supervised: bool = False
) -> pyseccomp.SyscallFilter:
    """The libseccomp filter for ``policy`` in ``mode``, hardened defaults applied.

    Raises EnforceError (fail closed) when libseccomp refuses anything or the program would
    be longer than the kernel accepts.
    """
    return build_from_plan(plan(policy, mode, supervised=supervised))


def build_from_plan(p: FilterPlan) -> pyseccomp.SyscallFilter:
    """Hand a `FilterPlan` to libseccomp.

    The syscall dispatch is a binary tree sorted by number (SCMP_FLTATR_CTL_OPTIMIZE=2): a
    syscall with argument rules costs ~log2(rules) comparisons instead of a walk past every
    unconditional rule (the kernel caches always-allowed syscalls, not those with argument
    rules; tools/bench_enforce.py measured 1.37x -> 1.01x on dd bs=1 under an allowlist with
    rules on read/write). A tree is a little longer; if it would pass the kernel's limit the
    linear layout is used instead.
    """
    try:
        try:
            return _build(p, optimize=2)
        except _TooBig:
            return _build(p, optimize=1)
    except EnforceError as err:
        raise _named(p.source, err) from err


class _TooBig(EnforceError):
    pass


def _build(p: FilterPlan, optimize: int) -> pyseccomp.SyscallFilter:
    try:
        filt = pyseccomp.SyscallFilter(p.default_value)
        filt.set_attr(pyseccomp.Attr.ACT_BADARCH, p.badarch_value)
        filt.set_attr(pyseccomp.Attr.CTL_NNP, 1)
        filt.set_attr(pyseccomp.Attr.CTL_OPTIMIZE, optimize)
        for flag in p.flags:
            filt.set_attr(_FLAG_ATTRS[flag], 1)
        # Arches first: libseccomp adds a rule only to the arches present at that moment.
        for arch in p.arches[1:]:
            filt.add_arch(syscalls.ARCHES[arch].token)
    except (OSError, RuntimeError, ValueError) as err:
        raise EnforceError(f"libseccomp cannot create the filter: {err}") from err
    for rule in p.rules:
        _check_args(rule)
        args = [pyseccomp.Arg(a.index, _OPS[a.op], a.value, a.value_two) for a in rule.args]
        try:
            filt.add_rule(rule.value, rule.name, *args)
        except (OSError, RuntimeError, ValueError) as err:
            why = getattr(err, "strerror", None) or str(err)
            if getattr(err, "errno", None) == errno_mod.EEXIST:
                why = "it conflicts with another rule for the same syscall and arguments"
            raise EnforceError(f"libseccomp refused rule {_describe(rule)}: {why}") from err
    check_size(filt)
    return filt


def bpf_bytes(filt: pyseccomp.SyscallFilter) -> bytes:
    """The raw BPF program libseccomp generates (what seccomp_load hands to the kernel)."""
    with tempfile.TemporaryFile() as tmp:
        try:
            filt.export_bpf(tmp)
        except (OSError, RuntimeError) as err:
            raise EnforceError(f"libseccomp cannot generate the BPF program: {err}") from err
        tmp.seek(0)
        return tmp.read()


def pfc_text(filt: pyseccomp.SyscallFilter) -> str:
    """libseccomp's pseudo filter code, the human-readable form of the program."""
    with tempfile.TemporaryFile() as tmp:
        try:
            filt.export_pfc(tmp)
        except (OSError, RuntimeError) as err:
            raise EnforceError(f"libseccomp cannot generate the PFC text: {err}") from err
        tmp.seek(0)
        return tmp.read().decode()


def check_size(filt: pyseccomp.SyscallFilter) -> int:
    """Generate the program once (as seccomp_load will) and refuse one the kernel would reject."""
    n = len(bpf_bytes(filt)) // 8
    if n > BPF_MAXINSNS:
        raise _TooBig(
            f"the filter has {n} BPF instructions, more than the kernel's limit of {BPF_MAXINSNS}; "
            "merge argument rules or drop architectures"
        )
    return n


def export_bpf(policy: Policy, dest: str | os.PathLike[str] | IO[bytes], mode: str = "enforce") -> int:
    """Write the raw BPF program of ``policy`` to a path or binary file; returns its instruction count."""
    data = bpf_bytes(build_filter(policy, mode))
    if isinstance(dest, (str, os.PathLike)):
        with open(dest, "wb") as fh:
            fh.write(data)
    else:
        dest.write(data)
    return len(data) // 8


def export_pfc(
    policy: Policy, dest: str | os.PathLike[str] | IO[str] | None = None, mode: str = "enforce"
) -> str:
    """libseccomp's PFC text of ``policy``; also written to ``dest`` when given."""
    text = pfc_text(build_filter(policy, mode))
    if isinstance(dest, (str, os.PathLike)):
        with open(dest, "w") as fh:
            fh.write(text)
    elif isinstance(dest, io.TextIOBase) or dest is not None:
        dest.write(text)
    return text
