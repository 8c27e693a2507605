"""Reading a policy: files, JSON text and parsed objects (OCI ``linux.seccomp``, a whole runc
``config.json``, moby profiles), validated strictly and completely.

`from_dict` collects every problem before raising one `PolicyError` whose ``problems`` are lines
``FILE: $.json.path: message`` with a did-you-mean suggestion where one exists.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tinyjail import groups, syscalls
from tinyjail.errors import PolicyError
from tinyjail.policy_moby import MOBY_ARCHES
from tinyjail.policy_model import (
    ACTIONS,
    ARG_KEYS,
    CONDITION_KEYS,
    FLAGS,
    KNOWN_ARCHES,
    MAX_ERRNO,
    NO_CONDITIONS,
    OPS,
    RET_DATA_ACTIONS,
    RULE_KEYS,
    TOP_KEYS,
    UINT64_MAX,
    Arg,
    Policy,
    SyscallRule,
    action_text,
    arg_key,
    condition_key,
    explicit_names,
    group_applies,
    ret_errno,
)

MAX_FILE_BYTES = 4 * 1024 * 1024
"""Policies larger than this are refused (moby's default profile is ~13 KiB)."""

@functools.cache
def _upstream_names() -> frozenset[str]:
    path = Path(__file__).resolve().parent / "data" / "libseccomp_upstream_names.txt"
    lines = path.read_text().splitlines()
    return frozenset(ln.strip() for ln in lines if ln.strip() and not ln.startswith("#"))


@functools.cache
def _all_names() -> tuple[str, ...]:
    return tuple(sorted(syscalls.known_names() | _upstream_names() | groups.expand("@known")))


def is_valid_name(name: str) -> bool:
    """A real syscall name: known to the installed libseccomp, to upstream libseccomp's table,
    or to systemd's ``@known`` list (newer syscalls are accepted but compiled only when the
    installed libseccomp knows them)."""
    return name in _upstream_names() or syscalls.is_known(name) or name in groups.expand("@known")


def _suggest_name(name: str) -> str | None:
    for prefix in ("SYS_", "__NR_", "__x64_sys_", "sys_"):
        if name.startswith(prefix) and is_valid_name(name[len(prefix):]):
            return name[len(prefix):]
    if is_valid_name(name.lower()):
        return name.lower()
    found = difflib.get_close_matches(name, _all_names(), n=1, cutoff=0.6)
    return found[0] if found else None


def _hint(found: str | None) -> str:
    return f' (did you mean "{found}"?)' if found else ""


def _close(text: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    options = list(choices)
    upper = {c.upper(): c for c in options}
    if text.upper() in upper:
        return upper[text.upper()]
    found = difflib.get_close_matches(text, options, n=1, cutoff=cutoff)
    if not found:
        found = difflib.get_close_matches(text.upper(), list(upper), n=1, cutoff=cutoff)
        found = [upper[f] for f in found]
    return found[0] if found else None


# --------------------------------------------------------------------------- reading


class _Problems:
    """Collects ``FILE: $.path: message`` lines so every problem is reported at once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.lines.append(f"{self.source}: {path}: {message}")

    def raise_if_any(self) -> None:
        if self.lines:
            raise PolicyError(self.lines)


class _JsonObject(dict[str, Any]):
    """A parsed JSON object that remembers keys written twice (the last one wins in Go and Python)."""

    duplicates: tuple[str, ...] = ()


def _object_pairs(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject()
    dups = []
    for key, value in pairs:
        if key in obj:
            dups.append(key)
        obj[key] = value
    if dups:
        obj.duplicates = tuple(dups)
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load(path: str | os.PathLike[str]) -> Policy:
    """Read a policy file: an OCI ``linux.seccomp`` object, a whole runc ``config.json`` or a
    moby profile. ``-`` reads standard input. Raises PolicyError listing every problem."""
    source = str(path)
    if source == "-":
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        return loads(data, source="<stdin>")
    p = Path(path)
    try:
        if p.is_dir():
            raise PolicyError(f"{source}: is a directory, not a policy file")
        with open(p, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise PolicyError(f"{source}: no such file") from None
    except PermissionError:
        raise PolicyError(f"{source}: permission denied") from None
    except IsADirectoryError:
        raise PolicyError(f"{source}: is a directory, not a policy file") from None
    except OSError as err:
        raise PolicyError(f"{source}: cannot read: {err.strerror or err}") from None
    return loads(data, source=source)


def loads(text: str | bytes, source: str = "<string>") -> Policy:
    """Parse policy JSON text (or bytes). Raises PolicyError listing every problem."""
    if isinstance(text, bytes):
        text = _decode(text, source)
    elif len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise PolicyError(f"{source}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; refusing to read it")
    if not text.strip():
        raise PolicyError(f"{source}: empty file, expected a JSON object")
    if "\x00" in text:
        raise PolicyError(f"{source}: binary data (NUL character at offset {text.index(chr(0))}), not JSON")
    try:
        obj = json.loads(text, object_pairs_hook=_object_pairs, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise PolicyError(f"{source}:{err.lineno}:{err.colno}: not valid JSON: {err.msg}") from None
    except ValueError as err:
        raise PolicyError(f"{source}: not valid JSON: {err}") from None
    except RecursionError:
        raise PolicyError(f"{source}: JSON nested too deeply") from None
    return from_dict(obj, source=source)


def _decode(data: bytes, source: str) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise PolicyError(f"{source}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; refusing to read it")
    if not data.strip():
        raise PolicyError(f"{source}: empty file, expected a JSON object")
    if b"\x00" in data:
        raise PolicyError(f"{source}: binary file (NUL byte at offset {data.index(0)}), not JSON")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise PolicyError(
            f"{source}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}), not JSON"
        ) from None


def from_dict(obj: Any, source: str = "<policy>") -> Policy:
    """Validate a parsed JSON value and build a Policy. A runc ``config.json`` contributes its
    ``linux.seccomp``. Raises PolicyError listing every problem."""
    problems = _Problems(source)
    path = "$"
    if isinstance(obj, dict) and "linux" in obj and "defaultAction" not in obj:
        linux = obj["linux"]
        if not isinstance(linux, dict):
            problems.add("$.linux", f"expected an object, got {_type(linux)}")
            problems.raise_if_any()
        if "seccomp" not in linux:
            problems.add("$.linux", "this config.json has no seccomp object (linux.seccomp)")
            problems.raise_if_any()
        obj, path = linux["seccomp"], "$.linux.seccomp"
    policy = _parse_policy(obj, path, problems)
    problems.raise_if_any()
    assert policy is not None
    policy.source = source
    return policy


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


_TOP_SYNONYMS = {
    "rules": "syscalls", "filters": "syscalls", "entries": "syscalls", "names": "syscalls",
    "default": "defaultAction", "action": "defaultAction", "defaultErrno": "defaultErrnoRet",
    "errnoRet": "defaultErrnoRet", "arches": "architectures", "arch": "architectures",
    "architecture": "architectures", "flag": "flags", "listener": "listenerPath",
}
_RULE_SYNONYMS = {
    "arguments": "args", "argument": "args", "arg": "args", "conditions": "args",
    "condition": "args", "argRules": "args", "syscalls": "names", "syscall": "names",
    "calls": "names", "errno": "errnoRet", "ret": "errnoRet", "return": "errnoRet",
    "include": "includes", "exclude": "excludes", "comments": "comment", "description": "comment",
    "note": "comment", "defaultAction": "action",
    "index": "args", "value": "args", "valueTwo": "args", "op": "args",
}
_ARG_SYNONYMS = {
    "arg": "index", "argument": "index", "idx": "index", "position": "index", "operator": "op",
    "cmp": "op", "compare": "op", "comparison": "op", "val": "value", "value1": "value",
    "value2": "valueTwo", "value_two": "valueTwo", "mask": "value",
}
_CONDITION_SYNONYMS = {
    "capabilities": "caps", "cap": "caps", "arch": "arches", "architectures": "arches",
    "kernel": "minKernel", "kernelVersion": "minKernel", "minimumKernel": "minKernel",
}


def _unknown_keys(obj: dict[str, Any], known: Sequence[str], path: str, problems: _Problems,
                  keep: bool, synonyms: dict[str, str] | None = None, advice: str = "") -> dict[str, Any]:
    """Report unknown keys. A near-miss or a usual synonym of a known key is an error with a
    suggestion (a typo would silently drop a field: a conditional rule would become
    unconditional); other keys are errors too unless ``keep`` (then they are kept and saved
    back, and `notes` mentions them)."""
    extra: dict[str, Any] = {}
    for dup in getattr(obj, "duplicates", ()):
        problems.add(f"{path}.{dup}", "key written twice (only the last one would count)")
    for key, value in obj.items():
        if key in known:
            continue
        if not isinstance(key, str):
            problems.add(path, f"object key {key!r} is not a string")
            continue
        guess = _synonym(key, synonyms or {}) or _close(key, known, cutoff=0.75)
        if guess is not None:
            problems.add(f"{path}.{key}", f'unknown key "{key}" (did you mean "{guess}"?)')
        elif keep:
            extra[key] = value
        else:
            expected = ", ".join(known)
            problems.add(f"{path}.{key}", f'unknown key "{key}" (expected one of: {expected}{advice})')
    return extra


def _synonym(key: str, synonyms: dict[str, str]) -> str | None:
    folded = {k.lower().replace("_", ""): v for k, v in synonyms.items()}
    return folded.get(key.lower().replace("_", "").replace("-", ""))


def _str(obj: dict[str, Any], key: str, path: str, problems: _Problems) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add(f"{path}.{key}", f"expected a string, got {_type(value)}")
        return None
    return value


def _int(value: Any, path: str, problems: _Problems, lo: int, hi: int, what: str) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            problems.add(path, f"{what} must be an integer, got {_type(value)}")
            return None
    if not lo <= value <= hi:
        hint = ""
        if value < 0 and lo == 0 and hi == UINT64_MAX:
            hint = f" (arguments compare as uint64: write {value & UINT64_MAX} for {value})"
        problems.add(path, f"{what} {value} is out of range {lo}..{hi}{hint}")
        return None
    return value


def _action(value: Any, path: str, problems: _Problems) -> str | None:
    if not isinstance(value, str):
        problems.add(path, f"expected an action string, got {_type(value)}")
        return None
    if value in ACTIONS:
        return value
    guess = _close(value, ACTIONS) or _close(f"SCMP_ACT_{value}", ACTIONS)
    problems.add(path, f'unknown action "{value}"{_hint(guess)}')
    return None


def _arch(value: Any, path: str, problems: _Problems) -> str | None:
    if not isinstance(value, str):
        problems.add(path, f"expected an architecture string, got {_type(value)}")
        return None
    if value in KNOWN_ARCHES:
        return value
    guess = _close(value, KNOWN_ARCHES) or _close(f"SCMP_ARCH_{value}", KNOWN_ARCHES)
    problems.add(path, f'unknown architecture "{value}"{_hint(guess)}')
    return None


def _str_list(value: Any, path: str, problems: _Problems) -> list[str] | None:
    if not isinstance(value, list):
        problems.add(path, f"expected an array of strings, got {_type(value)}")
        return None
    ok = True
    for i, item in enumerate(value):
        if not isinstance(item, str):
            problems.add(f"{path}[{i}]", f"expected a string, got {_type(item)}")
            ok = False
    return list(value) if ok else None


def _parse_policy(obj: Any, path: str, problems: _Problems) -> Policy | None:
    if not isinstance(obj, dict):
        problems.add(path, f"expected a JSON object (a seccomp policy), got {_type(obj)}")
        return None
    extra = _unknown_keys(obj, TOP_KEYS, path, problems, keep=True, synonyms=_TOP_SYNONYMS)
    policy = Policy(extra=extra)

    if "defaultAction" not in obj:
        problems.add(path, 'missing "defaultAction" (e.g. "SCMP_ACT_ERRNO")')
    else:
        act = _action(obj["defaultAction"], f"{path}.defaultAction", problems)
        if act:
            policy.default_action = act
    if obj.get("defaultErrnoRet") is not None:
        policy.default_errno_ret = _errno_ret(obj["defaultErrnoRet"], policy.default_action,
                                              f"{path}.defaultErrnoRet", problems, "defaultAction")

    if obj.get("architectures") is not None:
        names = _str_list(obj["architectures"], f"{path}.architectures", problems) or []
        for i, arch in enumerate(names):
            if _arch(arch, f"{path}.architectures[{i}]", problems):
                policy.architectures.append(arch)
    if obj.get("archMap") is not None:
        policy.arch_map = _parse_arch_map(obj["archMap"], f"{path}.archMap", problems)
    if obj.get("flags") is not None:
        for i, flag in enumerate(_str_list(obj["flags"], f"{path}.flags", problems) or []):
            if flag in FLAGS:
                policy.flags.append(flag)
            else:
                problems.add(f"{path}.flags[{i}]", f'unknown flag "{flag}"{_hint(_close(flag, FLAGS))}')
    policy.listener_path = _str(obj, "listenerPath", path, problems)
    policy.listener_metadata = _str(obj, "listenerMetadata", path, problems)

    entries = obj.get("syscalls")
    if entries is not None:
        if not isinstance(entries, list):
            problems.add(f"{path}.syscalls", f"expected an array, got {_type(entries)}")
        else:
            valid: list[tuple[int, SyscallRule]] = []
            for i, entry in enumerate(entries):
                rule = _parse_rule(entry, f"{path}.syscalls[{i}]", problems)
                if rule is not None:
                    valid.append((i, rule))
            policy.syscalls = [rule for _, rule in valid]
            # over the valid entries even when others are broken, so every problem shows at once
            _check_conflicts(valid, _literal_names(entries), path, problems)
    return policy


def _literal_names(entries: list[Any]) -> set[tuple[str, str]]:
    """Names written explicitly in entries that may not parse: they still take their syscalls
    out of the groups (so a broken entry does not add group conflicts of its own)."""
    out: set[tuple[str, str]] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        names = entry.get("names", [entry.get("name")])
        for name in names if isinstance(names, list) else []:
            if isinstance(name, str) and not name.startswith("@"):
                out.add((name, NO_CONDITIONS))
    return out


def _errno_ret(value: Any, action: str, path: str, problems: _Problems, what: str) -> int | None:
    if action not in RET_DATA_ACTIONS:
        problems.add(path, f"errnoRet only applies to SCMP_ACT_ERRNO (or SCMP_ACT_TRACE); "
                           f"the {what} is {action}")
        return None
    hi = MAX_ERRNO if action == "SCMP_ACT_ERRNO" else 0xFFFF
    return _int(value, path, problems, 0, hi, "errnoRet")


def _parse_arch_map(value: Any, path: str, problems: _Problems) -> list[dict[str, Any]] | None:
    if not isinstance(value, list):
        problems.add(path, f"expected an array, got {_type(value)}")
        return None
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        here = f"{path}[{i}]"
        if not isinstance(item, dict):
            problems.add(here, f"expected an object, got {_type(item)}")
            continue
        _unknown_keys(item, ("architecture", "subArchitectures"), here, problems, keep=False)
        if "architecture" not in item:
            problems.add(here, 'missing "architecture"')
        else:
            _arch(item["architecture"], f"{here}.architecture", problems)
        subs = item.get("subArchitectures") or []
        for j, sub in enumerate(_str_list(subs, f"{here}.subArchitectures", problems) or []):
            _arch(sub, f"{here}.subArchitectures[{j}]", problems)
        out.append(copy.deepcopy(dict(item)))
    return out


def _parse_rule(entry: Any, path: str, problems: _Problems) -> SyscallRule | None:
    if not isinstance(entry, dict):
        problems.add(path, f"expected an object, got {_type(entry)}")
        return None
    before = len(problems.lines)
    _unknown_keys(entry, RULE_KEYS, path, problems, keep=False, synonyms=_RULE_SYNONYMS,
                  advice='; put remarks in "comment"')
    names: list[str] = []
    if "names" in entry and "name" in entry:
        problems.add(path, 'both "name" and "names" given; use "names" only')
    if "names" in entry:
        raw = entry["names"]
        if not isinstance(raw, list):
            problems.add(f"{path}.names", f"expected an array of syscall names, got {_type(raw)}")
        elif not raw:
            problems.add(f"{path}.names", "empty; list at least one syscall or @group")
        else:
            for j, name in enumerate(raw):
                if _check_name(name, f"{path}.names[{j}]", problems):
                    names.append(name)
    elif "name" in entry:   # moby's older single-name form
        if _check_name(entry["name"], f"{path}.name", problems):
            names.append(entry["name"])
    else:
        problems.add(path, 'missing "names" (the syscalls this rule applies to)')

    action = None
    if "action" not in entry:
        problems.add(path, 'missing "action" (e.g. "SCMP_ACT_ALLOW")')
    else:
        action = _action(entry["action"], f"{path}.action", problems)
    errno_ret = None
    if entry.get("errnoRet") is not None and action is not None:
        errno_ret = _errno_ret(entry["errnoRet"], action, f"{path}.errnoRet", problems, "action")

    args: list[Arg] = []
    raw_args = entry.get("args")
    if raw_args is not None:
        if not isinstance(raw_args, list):
            problems.add(f"{path}.args", f"expected an array, got {_type(raw_args)}")
        else:
            plain = [n for n in names if not n.startswith("@")]
            for k, raw_arg in enumerate(raw_args):
                arg = _parse_arg(raw_arg, f"{path}.args[{k}]", plain, problems)
                if arg is not None:
                    args.append(arg)
    comment = _str(entry, "comment", path, problems)
    includes = _parse_condition(entry.get("includes"), f"{path}.includes", problems)
    excludes = _parse_condition(entry.get("excludes"), f"{path}.excludes", problems)
    if len(problems.lines) != before or action is None:
        return None
    return SyscallRule(names=names, action=action, errno_ret=errno_ret, args=args, comment=comment,
                       includes=includes, excludes=excludes)


def _check_name(name: Any, path: str, problems: _Problems) -> bool:
    if not isinstance(name, str):
        problems.add(path, f"expected a syscall name, got {_type(name)}")
        return False
    if name.startswith("@"):
        if groups.is_group(name):
            return True
        problems.add(path, f'unknown syscall group "{name}"{_hint(groups.suggest_group(name))}')
        return False
    if is_valid_name(name):
        return True
    problems.add(path, f'unknown syscall "{name}"{_hint(_suggest_name(name))}')
    return False


def _parse_arg(raw: Any, path: str, names: list[str], problems: _Problems) -> Arg | None:
    if not isinstance(raw, dict):
        problems.add(path, f"expected an object {{index, value, valueTwo, op}}, got {_type(raw)}")
        return None
    before = len(problems.lines)
    _unknown_keys(raw, ARG_KEYS, path, problems, keep=False, synonyms=_ARG_SYNONYMS)
    index = None
    if "index" not in raw:
        problems.add(path, 'missing "index" (argument number 0..5)')
    else:
        index = _int(raw["index"], f"{path}.index", problems, 0, 5, "index")
    op = None
    if "op" not in raw:
        problems.add(path, 'missing "op" (e.g. "SCMP_CMP_EQ")')
    elif not isinstance(raw["op"], str):
        problems.add(f"{path}.op", f"expected an operator string, got {_type(raw['op'])}")
    elif raw["op"] not in OPS:
        guess = _close(raw["op"], OPS) or _close(f"SCMP_CMP_{raw['op']}", OPS)
        problems.add(f"{path}.op", f'unknown operator "{raw["op"]}"{_hint(guess)}')
    else:
        op = raw["op"]
    if "value" not in raw:
        problems.add(path, 'missing "value"')
    value, symbolic = _arg_value(raw.get("value", 0), f"{path}.value", names, index, problems)
    value_two, symbolic_two = _arg_value(raw.get("valueTwo", 0), f"{path}.valueTwo", names, index, problems)
    if len(problems.lines) != before or index is None or op is None or value is None or value_two is None:
        return None
    return Arg(index=index, value=value, op=op, value_two=value_two, symbolic=symbolic,
               symbolic_two=symbolic_two)


def _arg_value(raw: Any, path: str, names: list[str], index: int | None,
               problems: _Problems) -> tuple[int | None, str | None]:
    """A numeric value, or a symbolic string resolved by tinyjail.symbols (kept as written)."""
    if raw is None:
        problems.add(path, "expected an integer or a symbolic string, got null")
        return None, None
    if not isinstance(raw, str):
        return _int(raw, path, problems, 0, UINT64_MAX, "value"), None
    if index is None:
        return None, None
    try:
        from tinyjail import symbols
    except ImportError as err:
        problems.add(path, f'symbolic value "{raw}" needs tinyjail.symbols, which cannot be imported ({err})')
        return None, None
    resolved: int | None = None
    for name in names or ["syscall"]:
        try:
            number = symbols.parse(name, index, raw)
        except ValueError as err:
            problems.add(path, str(err))
            return None, None
        if resolved is not None and number != resolved:
            problems.add(path, f'"{raw}" means {resolved} for {names[0]} but {number} for {name}; '
                               "split the rule per syscall")
            return None, None
        resolved = number
    assert resolved is not None
    if not 0 <= resolved <= UINT64_MAX:
        problems.add(path, f'"{raw}" is {resolved}, out of range 0..{UINT64_MAX}')
        return None, None
    return resolved, raw


def _parse_condition(raw: Any, path: str, problems: _Problems) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add(path, f"expected an object {{caps, arches, minKernel}}, got {_type(raw)}")
        return {}
    _unknown_keys(raw, CONDITION_KEYS, path, problems, keep=False, synonyms=_CONDITION_SYNONYMS)
    out: dict[str, Any] = {}
    if raw.get("caps") is not None:
        caps = _str_list(raw["caps"], f"{path}.caps", problems)
        for i, cap in enumerate(caps or []):
            if not re.fullmatch(r"CAP_[A-Z0-9_]+", cap):
                problems.add(f"{path}.caps[{i}]", f'"{cap}" is not a capability name (like "CAP_SYS_ADMIN")')
        out["caps"] = caps or []
    if raw.get("arches") is not None:
        arches = _str_list(raw["arches"], f"{path}.arches", problems)
        out["arches"] = arches or []
        for i, arch in enumerate(arches or []):
            if arch not in MOBY_ARCHES:
                hint = _hint(_close(arch, MOBY_ARCHES))
                problems.add(f"{path}.arches[{i}]", f'unknown architecture "{arch}"{hint} (Go names)')
    if raw.get("minKernel") is not None:
        mk = raw["minKernel"]
        if not isinstance(mk, str) or not re.fullmatch(r"\d+\.\d+(\.\d+)?", mk):
            got = json.dumps(mk)
            problems.add(f"{path}.minKernel", f'expected a kernel version string like "4.8", got {got}')
        out["minKernel"] = mk
    return out


def _check_conflicts(rules: list[tuple[int, SyscallRule]], literal: set[tuple[str, str]], path: str,
                     problems: _Problems) -> None:
    """One syscall with the same argument conditions (and the same moby conditions) under two
    actions is an error: libseccomp refuses it (EEXIST) and the intent is ambiguous. A name given
    explicitly overrides every @group that contains it (see effective_rules), so neither is a
    conflict with the other. Two groups that disagree are reported once per pair of entries
    (how many syscalls, a few of them), not once per shared member.

    ``rules`` are (index in ``syscalls``, rule) of the valid entries; ``literal`` adds the
    names written in entries that did not parse."""
    seen: dict[tuple[str, Any, str, bool], tuple[str, int | None, str, str]] = {}
    explicit = explicit_names((rule for _, rule in rules), by_conditions=True) | literal
    shared: dict[tuple[str, str, str, str, str, str], list[str]] = {}   # group pair -> members
    for i, rule in rules:
        outcome = (rule.action, ret_errno(rule.action, rule.errno_ret))
        cond = condition_key(rule)
        sig = arg_key(rule.args)
        what = "same arguments" if sig else "no argument conditions"
        for j, written in enumerate(rule.names):
            direct = not written.startswith("@")
            here = f"{path}.syscalls[{i}].names[{j}]"
            for name in sorted(groups.expand(written)):
                if not (direct or group_applies(explicit, name, cond)):
                    continue   # named explicitly elsewhere: this group does not decide it
                key = (name, sig, cond, direct)
                prev = seen.get(key)
                if prev is None:
                    seen[key] = (outcome[0], outcome[1], here, written)
                    continue
                if (prev[0], prev[1]) == outcome:
                    continue
                first = action_text(prev[0], prev[1])
                if direct:
                    problems.add(here, f'"{name}" is already {first} at {prev[2]} '
                                       f"({what}); it cannot also be {action_text(*outcome)}")
                else:
                    pair = (here, written, prev[2], prev[3], first, what)
                    shared.setdefault(pair, []).append(name)
        for (here, written, there, other, first, what), names in shared.items():
            examples = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
            count = f"{len(names)} syscall{'s' if len(names) > 1 else ''}"
            mine = action_text(rule.action, ret_errno(rule.action, rule.errno_ret))
            problems.add(here, f"{written} and {other} (at {there}) share {count} ({examples}) with "
                               f"different actions: {first} there, {mine} here ({what}); name the ones "
                               "you mean explicitly (an explicit name overrides its groups)")
        shared.clear()


def notes(policy: Policy) -> list[str]:
    """Non-fatal remarks for `policy check` and `tinyjail run`: unknown top-level keys that are
    kept as written, names the installed libseccomp cannot compile."""
    src = policy.source or "<policy>"
    out = [f"{src}: $.{key}: unknown key kept as written (tinyjail and runc ignore it)"
           for key in policy.extra]
    newer = sorted({n for rule in policy.syscalls for n in rule.names
                    if not n.startswith("@") and not syscalls.is_known(n)})
    if newer:
        out.append(f"{src}: {len(newer)} syscalls are newer than the installed libseccomp and are skipped "
                   f"when compiling (the filter gives them its default action): {', '.join(newer)}")
    return out
