"""Combining and comparing policies: `merge` (union, the stricter action wins where both give
a syscall, every such case reported) and `diff` (what differs once compiled)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tinyjail import groups
from tinyjail.policy_compile import effective_rules
from tinyjail.policy_model import (
    Arg,
    Policy,
    Rule,
    SyscallRule,
    action_text,
    arg_key,
    arg_sets,
    condition_key,
    explicit_names,
    group_applies,
    ret_errno,
    show_action,
    strictness,
)
from tinyjail.policy_portable import winners
from tinyjail.policy_write import arg_to_dict, validate

_Key = tuple[str, Any, str]


def _written_map(rules: Sequence[SyscallRule]) -> dict[_Key, tuple[str, int | None, bool]]:
    """(name, args, moby conditions) -> (action, errno, explicit) as written, with the precedence
    of effective_rules (a @group does not decide a member named explicitly, then stricter wins)."""
    explicit = explicit_names(rules, by_conditions=True)
    out: dict[_Key, tuple[str, int | None, bool]] = {}
    for rule in rules:
        outcome = (rule.action, ret_errno(rule.action, rule.errno_ret))
        sig, cond = arg_key(rule.args), condition_key(rule)
        for written in rule.names:
            direct = not written.startswith("@")
            for name in groups.expand(written):
                if not (direct or group_applies(explicit, name, cond)):
                    continue
                key = (name, sig, cond)
                old = out.get(key)
                if old is None or strictness(outcome[0]) < strictness(old[0]):
                    out[key] = (*outcome, direct)
    return out


def _group_decided(rules: Sequence[SyscallRule]) -> dict[str, list[tuple[int, tuple[Arg, ...]]]]:
    """syscall -> (index of the @group rule, argument set) for every (argument set, moby
    conditions) of it that a group decides, with effective_rules' precedence."""
    out: dict[str, list[tuple[int, tuple[Arg, ...]]]] = {}
    for (name, sig, _), (direct, _, i) in winners(rules, by_conditions=True).items():
        if not direct:
            args = next(a for a in arg_sets(rules[i].args) if arg_key(a) == sig)
            out.setdefault(name, []).append((i, args))
    return out


def _name_explicitly(rules: list[SyscallRule], names: Iterable[str]) -> list[str]:
    """Give each of ``names`` that ``rules`` decide only through @groups explicit entries with
    exactly the groups' treatment (a group rule that decides all its argument sets is copied as
    written). The groups stay as written: an explicit name overrides every group containing it.
    Returns the groups the names came from."""
    mine = {name for name, _ in explicit_names(rules)}
    decided = _group_decided(rules)
    via: list[str] = []
    for name in sorted(set(names) - mine):
        for i in dict.fromkeys(i for i, _ in decided.get(name, [])):
            rule = rules[i]
            sets = [args for j, args in decided[name] if j == i]
            via += [g for g in rule.names if g.startswith("@") and name in groups.expand(g)]
            if len(sets) == len(arg_sets(rule.args)):
                rules.append(replace(copy.deepcopy(rule), names=[name]))
            else:
                rules.extend(replace(copy.deepcopy(rule), names=[name], args=list(args)) for args in sets)
    return via


def _drop_name(rules: list[SyscallRule], key: _Key) -> None:
    """Remove the explicit syscall ``key[0]`` from the rules with those args and conditions."""
    name, sig, cond = key
    for rule in rules:
        if arg_key(rule.args) == sig and condition_key(rule) == cond:
            rule.names = [n for n in rule.names if n != name]
    rules[:] = [r for r in rules if r.names]


def _rule_identity(rule: SyscallRule) -> str:
    return json.dumps([rule.action, rule.errno_ret, [arg_to_dict(a) for a in rule.args], rule.comment,
                       rule.includes, rule.excludes, rule.extra], sort_keys=True, default=str)


def _tidy(rules: list[SyscallRule]) -> list[SyscallRule]:
    """Fold rules that differ only in their names into one (first occurrence keeps its place)."""
    out: list[SyscallRule] = []
    index: dict[str, SyscallRule] = {}
    for rule in rules:
        ident = _rule_identity(rule)
        if ident in index:
            target = index[ident]
            target.names = list(dict.fromkeys([*target.names, *rule.names]))
        else:
            index[ident] = rule
            out.append(rule)
    return out


def _describe_key(key: _Key) -> str:
    name, sig, cond = key
    text = name
    if sig:
        text += " if " + " && ".join(Arg(i, v, op, two).text() for i, op, v, two in sig)
    conds = json.loads(cond)
    if conds[0] or conds[1]:
        text += f" [includes {conds[0]}, excludes {conds[1]}]"
    return text


def merge(a: Policy, b: Policy) -> tuple[Policy, list[str]]:
    """The union of two policies. Where both give the same syscall (same arguments, same moby
    conditions) different actions, the stricter action wins; each such case is reported as one
    line. Scalars (default action, errno, listener) follow the same rule or, when not
    comparable, keep ``a``'s value; that is reported too."""
    la, lb = a.source or "A", b.source or "B"
    report: list[str] = []
    out = Policy(source=None)

    da = (a.default_action, ret_errno(a.default_action, a.default_errno_ret))
    db = (b.default_action, ret_errno(b.default_action, b.default_errno_ret))
    win = a if strictness(a.default_action) <= strictness(b.default_action) else b
    out.default_action, out.default_errno_ret = win.default_action, win.default_errno_ret
    if da != db:
        report.append(f"defaultAction: {la} has {action_text(*da)}, {lb} has {action_text(*db)}; "
                      f"the stricter {action_text(*(da if win is a else db))} is used")
    out.architectures = list(dict.fromkeys([*a.architectures, *b.architectures]))
    out.flags = list(dict.fromkeys([*a.flags, *b.flags]))
    for attr, label in (("arch_map", "archMap"), ("listener_path", "listenerPath"),
                        ("listener_metadata", "listenerMetadata")):
        va, vb = getattr(a, attr), getattr(b, attr)
        setattr(out, attr, copy.deepcopy(va if va is not None else vb))
        if va is not None and vb is not None and va != vb:
            report.append(f"{label}: {la} and {lb} differ; {la}'s is kept")
    out.extra = copy.deepcopy({**b.extra, **a.extra})

    rules_a, rules_b = copy.deepcopy(a.syscalls), copy.deepcopy(b.syscalls)
    # A name explicit on one side takes it away from the other side's groups once both are in
    # one policy: name it there too, with that side's treatment, so the union keeps both.
    _name_explicitly(rules_a, (n for n, _ in explicit_names(b.syscalls)))
    _name_explicitly(rules_b, (n for n, _ in explicit_names(a.syscalls)))
    map_a, map_b = _written_map(rules_a), _written_map(rules_b)
    for key in sorted(map_a.keys() & map_b.keys(), key=str):
        oa, ob = map_a[key][:2], map_b[key][:2]
        if oa == ob:
            continue
        a_wins = strictness(oa[0]) <= strictness(ob[0])
        line = (f"{_describe_key(key)}: {la} has {action_text(*oa)}, {lb} has {action_text(*ob)}; "
                f"{action_text(*(oa if a_wins else ob))} wins")
        if not (map_a[key][2] and map_b[key][2]):
            # both sides have it through @groups: name it explicitly (that overrides the groups,
            # which stay as written), then drop the losing side's entry
            via = _name_explicitly(rules_a, [key[0]]) + _name_explicitly(rules_b, [key[0]])
            if via:
                line += f" (now named explicitly, which overrides {', '.join(sorted(set(via)))})"
        _drop_name(rules_b if a_wins else rules_a, key)
        report.append(line)
    out.syscalls = _tidy(rules_a + rules_b)
    validate(out)
    return out, report


@dataclass
class PolicyDiff:
    """What differs between two policies once compiled for one machine."""

    only_in_a: list[str]
    only_in_b: list[str]
    changed: list[tuple[str, str, str]]   # (syscall, how a treats it, how b treats it)
    default_a: str
    default_b: str
    treatment_a: dict[str, str] = field(default_factory=dict)   # syscall -> how a treats it
    treatment_b: dict[str, str] = field(default_factory=dict)

    @property
    def default_changed(self) -> bool:
        return self.default_a != self.default_b

    @property
    def same(self) -> bool:
        return not (self.only_in_a or self.only_in_b or self.changed or self.default_changed)


def treatment(rules: Sequence[Rule]) -> str:
    """How a list of compiled rules of one syscall treat it, as text (``ALLOW if a0 == 1; ...``)."""
    parts = []
    for rule in rules:
        text = show_action(rule.action, rule.errno_ret)
        if rule.args:
            text += " if " + " && ".join(arg.text() for arg in rule.args)
        parts.append(text)
    return "; ".join(parts)


def diff(a: Policy, b: Policy, arch: str = "x86_64", caps: Iterable[str] | None = None) -> PolicyDiff:
    """Compare the compiled rules of ``a`` and ``b`` on ``arch``: syscalls only one of them has
    rules for, syscalls both have but treat differently, and the default actions."""

    def by_name(policy: Policy) -> dict[str, list[Rule]]:
        out: dict[str, list[Rule]] = {}
        for rule in effective_rules(policy, arch, caps):
            out.setdefault(rule.name, []).append(rule)
        return out

    ra, rb = by_name(a), by_name(b)
    changed = []
    for name in sorted(ra.keys() & rb.keys()):
        key_a = sorted((r.action, r.errno_ret, arg_key(r.args)) for r in ra[name])
        key_b = sorted((r.action, r.errno_ret, arg_key(r.args)) for r in rb[name])
        if key_a != key_b:
            changed.append((name, treatment(ra[name]), treatment(rb[name])))
    return PolicyDiff(
        only_in_a=sorted(ra.keys() - rb.keys()),
        only_in_b=sorted(rb.keys() - ra.keys()),
        changed=changed,
        default_a=show_action(a.default_action, a.default_errno_ret),
        default_b=show_action(b.default_action, b.default_errno_ret),
        treatment_a={name: treatment(rules) for name, rules in ra.items()},
        treatment_b={name: treatment(rules) for name, rules in rb.items()},
    )
