"""The portable form of a policy: the same filter as plain runtime-spec JSON, without tinyjail's
extensions (``@group`` names, symbolic values) or moby's keys, so that runc, crun, podman and
Docker take it as-is (notes/policy-format.md, "Portability")."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tinyjail import groups, syscalls
from tinyjail.policy_moby import conditions_hold, effective_architectures, running_kernel
from tinyjail.policy_model import (
    Arg,
    Policy,
    SyscallRule,
    arg_key,
    arg_sets,
    condition_key,
    explicit_names,
    group_applies,
    strictness,
)

Winner = tuple[bool, int, int]


def members(rule: SyscallRule) -> dict[str, bool]:
    """Every syscall a rule names (groups expanded) -> whether it is written explicitly."""
    out: dict[str, bool] = {}
    for written in rule.names:
        for name in groups.expand(written):
            out[name] = out.get(name, False) or not written.startswith("@")
    return out


def winners(rules: Sequence[SyscallRule], by_conditions: bool) -> dict[tuple[str, Any, str], Winner]:
    """(syscall, argument set, moby conditions or "") -> (explicit, strictness, index of the rule
    that decides it), with effective_rules' precedence: a @group rule does not decide a member
    that an entry names explicitly (`group_applies`), then the stricter action wins, then the
    earlier rule. A (syscall, argument set) that only an overridden group gives has no entry.
    Used wherever groups are written out, so that their members do not become explicit rivals
    of the rules that overrode them."""
    explicit = explicit_names(rules, by_conditions)
    winner: dict[tuple[str, Any, str], Winner] = {}
    for i, rule in enumerate(rules):
        rank = strictness(rule.action)
        cond = condition_key(rule) if by_conditions else ""
        for name, direct in members(rule).items():
            if not (direct or group_applies(explicit, name, cond)):
                continue
            for args in arg_sets(rule.args):
                key = (name, arg_key(args), cond)
                old = winner.get(key)
                if old is None or (direct and not old[0]) or (direct == old[0] and rank < old[1]):
                    winner[key] = (direct, rank, i)
    return winner


def to_portable(policy: Policy, caps: Iterable[str] | None = None,
                kernel: tuple[int, int] | None = None) -> Policy:
    """The same filter without tinyjail's extensions or moby's keys, so that runc (which reads
    ``value`` as uint64 and knows no @group) and every other runtime take it unchanged.

    - ``@group`` names are expanded into their members, sorted and de-duplicated per rule.
      Every member is kept, also those the native ABI lacks (``mmap2``): the file may be used
      for other architectures, and runtimes skip names they cannot resolve.
    - Symbolic argument values become numbers.
    - moby ``includes``/``excludes`` are evaluated for this machine (native ABI, running kernel,
      the capabilities ``caps``, default none) like `effective_rules` does: rules that do not
      apply are dropped, the others lose their conditions. ``archMap`` becomes
      ``architectures`` (`effective_architectures`).
    - Where the compiled form lets one entry win over another (a name written explicitly
      takes the syscall away from every group that contains it; the stricter of overlapping
      moby rules wins), only the winner keeps the name, because without groups and conditions
      both would be written explicitly under the same conditions (a conflict), or the group's
      unconditional rule would replace the explicit argument rules.
    - ``comment`` stays (moby and podman read it, runc ignores it); other unknown keys are
      dropped.

    ``effective_rules`` of the result equal those of ``policy`` (for the same ``caps`` and
    kernel), and it contains no @group, no symbolic value and no moby key.
    """
    kern = kernel or running_kernel()
    granted = frozenset(caps or ())
    live = [(i, rule) for i, rule in enumerate(policy.syscalls)
            if conditions_hold(rule, syscalls.NATIVE_ARCH, granted, kern)]

    winner = winners([rule for _, rule in live], by_conditions=False)

    rules: list[SyscallRule] = []
    for i, (_, rule) in enumerate(live):
        sets = arg_sets(rule.args)
        whole: list[str] = []
        partial: dict[int, list[str]] = {}   # argument set -> names this rule wins only there
        for name in members(rule):
            won = [k for k, args in enumerate(sets) if _decided_by(winner, (name, arg_key(args), ""), i)]
            if len(won) == len(sets):
                whole.append(name)
            else:
                for k in won:
                    partial.setdefault(k, []).append(name)
        pieces = [(whole, list(rule.args))] if whole else []
        pieces += [(names, list(sets[k])) for k, names in sorted(partial.items())]
        for names, args in pieces:
            rules.append(SyscallRule(names=sorted(names), action=rule.action, errno_ret=rule.errno_ret,
                                     args=[Arg(a.index, a.value, a.op, a.value_two) for a in args],
                                     comment=rule.comment))
    covered = policy.architectures or policy.arch_map
    return Policy(
        default_action=policy.default_action,
        default_errno_ret=policy.default_errno_ret,
        architectures=effective_architectures(policy) if covered else [],
        flags=list(policy.flags),
        listener_path=policy.listener_path,
        listener_metadata=policy.listener_metadata,
        syscalls=rules,
        source=policy.source,
    )


def _decided_by(winner: dict[tuple[str, Any, str], Winner], key: tuple[str, Any, str], index: int) -> bool:
    found = winner.get(key)
    return found is not None and found[2] == index


def is_portable(policy: Policy) -> bool:
    """True when `to_dict` already writes plain runtime-spec JSON: no @group, no symbolic value,
    no moby key (``includes``/``excludes``/``archMap``) and no unknown key."""
    return not (policy.arch_map is not None or policy.extra or any(
        rule.includes or rule.excludes or rule.extra
        or any(n.startswith("@") for n in rule.names)
        or any(a.symbolic is not None or a.symbolic_two is not None for a in rule.args)
        for rule in policy.syscalls))
