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
    ret_errno,
    show_action,
    strictness,
)
from tinyjail.policy_portable import winners
from tinyjail.policy_write import arg_to_dict, validate

_Key = tuple[str, Any, str]


def _written_map(policy: Policy) -> dict[_Key, tuple[str, int | None, bool]]:
    """(name, args, moby conditions) -> (action, errno, explicit) as written, with the same
    precedence as effective_rules (explicit beats @group, then stricter wins)."""
    out: dict[_Key, tuple[str, int | None, bool]] = {}
    for rule in policy.syscalls:
        outcome = (rule.action, ret_errno(rule.action, rule.errno_ret))
        sig, cond = arg_key(rule.args), condition_key(rule)
        for written in rule.names:
            direct = not written.startswith("@")
            for name in groups.expand(written):
                key = (name, sig, cond)
                old = out.get(key)
                if old is None or (direct and not old[2]) or (
                    direct == old[2] and strictness(outcome[0]) < strictness(old[0])
                ):
                    out[key] = (outcome[0], outcome[1], direct)
    return out


def _remove_name(rules: list[SyscallRule], key: _Key) -> list[str]:
    """Drop syscall ``key[0]`` from every rule with those args/conditions; a @group that
    contains it is replaced by its other members, except those another rule decides (an
    explicit override must stay an override, not become a conflict). Returns the groups that
    were expanded."""
    name, sig, cond = key
    winner = winners(rules, by_conditions=True)
    expanded: list[str] = []
    out: list[SyscallRule] = []
    for i, rule in enumerate(rules):
        out.append(rule)
        if arg_key(rule.args) != sig or condition_key(rule) != cond:
            continue
        if not any(name in groups.expand(w) for w in rule.names):
            continue
        sets = arg_sets(rule.args)
        names: list[str] = []
        for written in rule.names:
            if written == name:
                continue
            if not (written.startswith("@") and name in groups.expand(written)):
                names.append(written)
                continue
            expanded.append(written)
            for member in sorted(groups.expand(written) - {name}):
                won = [args for args in sets if winner[(member, arg_key(args), cond)][2] == i]
                if len(won) == len(sets):
                    names.append(member)
                for args in won if len(won) < len(sets) else []:
                    out.append(replace(copy.deepcopy(rule), names=[member], args=list(args)))
        rule.names = list(dict.fromkeys(names))
    rules[:] = [r for r in out if r.names]
    return expanded


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
    map_a, map_b = _written_map(a), _written_map(b)
    for key in sorted(map_a.keys() & map_b.keys(), key=str):
        oa, ob = map_a[key][:2], map_b[key][:2]
        if oa == ob:
            continue
        a_wins = strictness(oa[0]) <= strictness(ob[0])
        expanded = _remove_name(rules_b if a_wins else rules_a, key)
        line = (f"{_describe_key(key)}: {la} has {action_text(*oa)}, {lb} has {action_text(*ob)}; "
                f"{action_text(*(oa if a_wins else ob))} wins")
        if expanded:
            line += f" ({', '.join(sorted(set(expanded)))} written out without it)"
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
