"""Writing a policy: the OCI JSON object as written (groups, symbolic values and moby keys kept)
or, with ``portable=True``, plain runtime-spec JSON (`tinyjail.policy_portable`); saving never
overwrites without ``force`` and is atomic."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tinyjail.newfile import check_new, write_new
from tinyjail.policy_model import Arg, Policy
from tinyjail.policy_portable import to_portable
from tinyjail.policy_read import from_dict


def arg_to_dict(arg: Arg) -> dict[str, Any]:
    """One ``args[]`` entry, symbolic spellings kept."""
    value: int | str = arg.symbolic if arg.symbolic is not None else arg.value
    out: dict[str, Any] = {"index": arg.index, "value": value}
    if arg.symbolic_two is not None:
        out["valueTwo"] = arg.symbolic_two
    elif arg.value_two or arg.op == "SCMP_CMP_MASKED_EQ":
        out["valueTwo"] = arg.value_two
    out["op"] = arg.op
    return out


def to_dict(policy: Policy, portable: bool = False, *, caps: Iterable[str] | None = None) -> dict[str, Any]:
    """The OCI JSON object (camelCase). As written by default: @groups, symbolic values and
    moby keys kept. ``portable``: plain runtime-spec JSON that runc, crun, podman and Docker
    take as-is (see `to_portable`; ``caps`` are the capabilities moby conditions assume)."""
    if portable:
        policy = to_portable(policy, caps=caps)
    out: dict[str, Any] = {"defaultAction": policy.default_action}
    if policy.default_errno_ret is not None:
        out["defaultErrnoRet"] = policy.default_errno_ret
    if policy.architectures:
        out["architectures"] = list(policy.architectures)
    if policy.arch_map is not None:
        out["archMap"] = copy.deepcopy(policy.arch_map)
    if policy.flags:
        out["flags"] = list(policy.flags)
    if policy.listener_path is not None:
        out["listenerPath"] = policy.listener_path
    if policy.listener_metadata is not None:
        out["listenerMetadata"] = policy.listener_metadata
    entries = []
    for rule in policy.syscalls:
        entry: dict[str, Any] = {"names": list(rule.names), "action": rule.action}
        if rule.errno_ret is not None:
            entry["errnoRet"] = rule.errno_ret
        if rule.args:
            entry["args"] = [arg_to_dict(a) for a in rule.args]
        if rule.comment is not None:
            entry["comment"] = rule.comment
        if rule.includes:
            entry["includes"] = copy.deepcopy(rule.includes)
        if rule.excludes:
            entry["excludes"] = copy.deepcopy(rule.excludes)
        for key, value in rule.extra.items():
            entry.setdefault(key, copy.deepcopy(value))
        entries.append(entry)
    out["syscalls"] = entries
    for key, value in policy.extra.items():
        out.setdefault(key, copy.deepcopy(value))
    return out


def dumps(policy: Policy, portable: bool = False, *, caps: Iterable[str] | None = None) -> str:
    """The policy as indented JSON text (ends with a newline); ``portable`` as in `to_dict`."""
    return json.dumps(to_dict(policy, portable, caps=caps), indent=2) + "\n"


def save(policy: Policy, path: str | os.PathLike[str], force: bool = False, portable: bool = False, *,
         caps: Iterable[str] | None = None) -> None:
    """Validate and write ``policy`` to ``path``; an existing file is kept unless ``force``.
    ``portable`` writes plain runtime-spec JSON (see `to_portable`). The write is atomic and
    never follows a symlink (`tinyjail.newfile`). Raises PolicyError, UsageError."""
    p = Path(path)
    check_new(p, force)                   # the usual refusals come before the policy is checked
    text = dumps(policy, portable, caps=caps)
    from_dict(json.loads(text), source=str(p))
    write_new(p, text, force=force)


def validate(policy: Policy) -> None:
    """Check a Policy built in code with the same rules as a file. Raises PolicyError."""
    from_dict(to_dict(policy), source=policy.source or "<policy>")
