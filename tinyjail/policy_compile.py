"""Compiling a policy for one ABI (`effective_rules`) and simulating the compiled filter
(`evaluate`, `allowed`), following libseccomp's rules (notes/policy-format.md, "Compilation and
precedence")."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tinyjail import bpfsim, groups, syscalls
from tinyjail.policy_moby import conditions_hold, effective_architectures, running_kernel
from tinyjail.policy_model import (
    PERMIT_ACTIONS,
    RET_DATA_ACTIONS,
    Arg,
    Policy,
    Rule,
    arg_key,
    arg_sets,
    explicit_names,
    group_applies,
    ret_errno,
    strictness,
)
from tinyjail.policy_read import from_dict
from tinyjail.policy_write import dumps


def effective_rules(policy: Policy, arch: str = "x86_64", caps: Iterable[str] | None = None,
                    kernel: tuple[int, int] | None = None) -> list[Rule]:
    """The compiled rules for ``arch``: @groups expanded, moby conditions evaluated, names the
    ABI lacks (or the installed libseccomp does not know: `unknown_to_libseccomp` lists them,
    and enforcement refuses a policy where that drops a rule stricter than the default)
    dropped, rules equal to the default action dropped (runc skips them, libseccomp refuses
    them).

    Precedence, in order: a syscall written explicitly in an entry that applies is decided by its
    explicit entries alone (with their argument rules): no @group rule applies to it; for the
    same name and arguments the stricter action wins; a rule without argument conditions
    replaces every conditional rule of that name (libseccomp does the same).
    """
    return list(_compiled(_snapshot(policy), arch, frozenset(caps or ()), kernel or running_kernel()))


_SNAPSHOTS: dict[str, str] = {}


def _snapshot(policy: Policy) -> str:
    """The policy's JSON text, memoised on its repr (5x cheaper than dumping), so that repeated
    evaluate()/effective_rules() calls on an unchanged policy reuse the compiled form."""
    key = repr(policy)
    text = _SNAPSHOTS.get(key)
    if text is None:
        if len(_SNAPSHOTS) >= 64:
            _SNAPSHOTS.pop(next(iter(_SNAPSHOTS)))
        text = _SNAPSHOTS[key] = dumps(policy)
    return text


@functools.lru_cache(maxsize=64)
def _compiled(text: str, arch: str, caps: frozenset[str], kernel: tuple[int, int]) -> tuple[Rule, ...]:
    policy = from_dict(json.loads(text))
    table = syscalls.table(arch)
    default = (policy.default_action, ret_errno(policy.default_action, policy.default_errno_ret))
    live = [rule for rule in policy.syscalls if conditions_hold(rule, arch, caps, kernel)]
    explicit = explicit_names(live)
    # (name, argkey) -> (action, errno, args): the stricter action wins
    chosen: dict[tuple[str, Any], tuple[str, int | None, tuple[Arg, ...]]] = {}
    for rule in live:
        errno_ret = ret_errno(rule.action, rule.errno_ret)
        for written in rule.names:
            direct = not written.startswith("@")
            for name in groups.expand(written):
                if name not in table or not (direct or group_applies(explicit, name)):
                    continue
                for args in arg_sets(rule.args):
                    key = (name, arg_key(args))
                    old = chosen.get(key)
                    if old is None or strictness(rule.action) < strictness(old[0]):
                        chosen[key] = (rule.action, errno_ret, args)
    by_name: dict[str, list[Rule]] = {}
    for (name, _), (action, errno_ret, args) in chosen.items():
        if (action, errno_ret) == default:
            continue
        by_name.setdefault(name, []).append(Rule(name, action, errno_ret, args))
    out: list[Rule] = []
    for name in sorted(by_name):
        rules = by_name[name]
        plain = [r for r in rules if not r.args]
        if plain:
            out.append(plain[0])
        else:
            out.extend(sorted(rules, key=lambda r: arg_key(r.args)))
    return tuple(out)


@dataclass(frozen=True)
class Unknown:
    """Syscalls an entry gives (directly or through a @group) that the installed libseccomp
    does not know on any ABI, so `effective_rules` cannot compile them: the filter gives them
    its default action instead. Safe only when the entry is no stricter than the default
    (enforcement checks that: `tinyjail.enforce.plan`)."""

    path: str                 # $.syscalls[i].names[j]
    written: str              # the name or @group as written there
    names: tuple[str, ...]
    action: str
    errno_ret: int | None


def unknown_to_libseccomp(policy: Policy, arch: str = "x86_64", caps: Iterable[str] | None = None,
                          kernel: tuple[int, int] | None = None) -> list[Unknown]:
    """Every entry that applies on this machine (moby conditions, the precedence of explicit
    names over groups) and names syscalls the installed libseccomp cannot resolve. Names an
    ABI merely lacks (``mmap2`` on x86_64) are not listed: no call can reach them."""
    kern = kernel or running_kernel()
    live = [(i, rule) for i, rule in enumerate(policy.syscalls)
            if conditions_hold(rule, arch, frozenset(caps or ()), kern)]
    explicit = explicit_names(rule for _, rule in live)
    out: list[Unknown] = []
    for i, rule in live:
        for j, written in enumerate(rule.names):
            direct = not written.startswith("@")
            names = tuple(sorted(n for n in groups.expand(written) if not syscalls.is_known(n)
                                 and (direct or group_applies(explicit, n))))
            if names:
                out.append(Unknown(f"$.syscalls[{i}].names[{j}]", written, names, rule.action,
                                   ret_errno(rule.action, rule.errno_ret)))
    return out


def evaluate(
    policy: Policy, name: str, args: Sequence[int] = (0, 0, 0, 0, 0, 0), arch: str = "x86_64",
    caps: Iterable[str] | None = None, kernel: tuple[int, int] | None = None,
) -> tuple[str, int | None]:
    """(action, errno) the compiled filter returns for syscall ``name`` with ``args``.

    The effective rules are compiled by libseccomp (as enforcement does) and the exported BPF
    program is run by `tinyjail.bpfsim` on a ``seccomp_data`` for this call, so overlapping
    argument rules resolve exactly as in the kernel. A name the ABI lacks gets the default
    action; a foreign ABI (x86, x32) the policy's architectures do not cover gets
    SCMP_ACT_KILL_PROCESS, the bad-arch action of tinyjail's filters. If libseccomp cannot
    compile the rules, a model of its semantics answers instead (an unconditional rule decides
    alone; else the strictest matching conditional rule; else the default).
    """
    kern = kernel or running_kernel()
    text = _snapshot(policy)
    default = (policy.default_action, ret_errno(policy.default_action, policy.default_errno_ret))
    nr = syscalls.number(name, arch)
    if nr is None:
        return default
    if arch != syscalls.NATIVE_ARCH and syscalls.ARCHES[arch].oci not in effective_architectures(policy):
        return "SCMP_ACT_KILL_PROCESS", None   # the bad-arch action of tinyjail's filters
    program = _program(text, arch, frozenset(caps or ()), kern)
    if program is None:
        return _evaluate_model(policy, name, args, arch, caps, kern)
    token = syscalls.ARCHES["x86_64" if arch == "x32" else arch].token
    action, data = bpfsim.decode(bpfsim.run(program, bpfsim.seccomp_data(nr, token, args)))
    if action == "SCMP_ACT_KILL_THREAD" and "SCMP_ACT_KILL" in _actions_used(policy) \
            and "SCMP_ACT_KILL_THREAD" not in _actions_used(policy):
        action = "SCMP_ACT_KILL"
    return action, (data if action in RET_DATA_ACTIONS else None)


def _actions_used(policy: Policy) -> set[str]:
    return {policy.default_action, *(r.action for r in policy.syscalls)}


def _scmp_action(action: str, errno_ret: int | None) -> int:
    import pyseccomp

    if action == "SCMP_ACT_ERRNO":
        return pyseccomp.ERRNO(ret_errno(action, errno_ret) or 0)
    if action == "SCMP_ACT_TRACE":
        return pyseccomp.TRACE(ret_errno(action, errno_ret) or 0)
    value: int = getattr(pyseccomp, action.removeprefix("SCMP_ACT_"))
    return value


@functools.lru_cache(maxsize=32)
def _program(text: str, arch: str, caps: frozenset[str], kernel: tuple[int, int]) -> bpfsim.Program | None:
    """The BPF program libseccomp generates for the effective rules (None if it refuses them)."""
    import tempfile

    import pyseccomp

    policy = from_dict(json.loads(text))
    try:
        filt = pyseccomp.SyscallFilter(_scmp_action(policy.default_action, policy.default_errno_ret))
        if arch != syscalls.NATIVE_ARCH:
            filt.add_arch(syscalls.ARCHES[arch].token)
        for rule in _compiled(text, arch, caps, kernel):
            conds = [pyseccomp.Arg(a.index, getattr(pyseccomp, a.op.removeprefix("SCMP_CMP_")), a.value,
                                   a.value_two) for a in rule.args]
            filt.add_rule(_scmp_action(rule.action, rule.errno_ret), rule.name, *conds)
        with tempfile.TemporaryFile() as fh:
            filt.export_bpf(fh)
            fh.seek(0)
            return bpfsim.parse(fh.read())
    except (OSError, ValueError, RuntimeError):
        return None


def _evaluate_model(policy: Policy, name: str, args: Sequence[int], arch: str,
                    caps: Iterable[str] | None, kernel: tuple[int, int]) -> tuple[str, int | None]:
    rules = [r for r in effective_rules(policy, arch, caps, kernel) if r.name == name]
    default = (policy.default_action, ret_errno(policy.default_action, policy.default_errno_ret))
    if not rules:
        return default
    if not rules[0].args:
        return rules[0].action, rules[0].errno_ret
    hits = [r for r in rules if all(a.matches(args) for a in r.args)]
    if not hits:
        return default
    best = min(hits, key=lambda r: strictness(r.action))
    return best.action, best.errno_ret


def allowed(policy: Policy, name: str, arch: str = "x86_64", caps: Iterable[str] | None = None) -> bool:
    """True when some call of ``name`` can pass the filter (ALLOW, LOG, NOTIFY or TRACE for
    some arguments)."""
    rules = [r for r in effective_rules(policy, arch, caps) if r.name == name]
    if not rules:
        return policy.default_action in PERMIT_ACTIONS
    if not rules[0].args:
        return rules[0].action in PERMIT_ACTIONS
    return any(r.action in PERMIT_ACTIONS for r in rules) or policy.default_action in PERMIT_ACTIONS
