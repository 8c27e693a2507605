"""The OCI runtime-spec ``linux.seccomp`` policy model (the ``db.c`` of tinyjail).

A `Policy` is the JSON object as written, kept faithfully so it saves back unchanged
(``@group`` names stay as written, symbolic argument values stay symbolic, moby's
``includes``/``excludes``/``archMap`` are kept). `effective_rules` is the compiled view:
groups expanded, moby conditions evaluated for this machine, names the architecture lacks
dropped. `evaluate` is a pure simulator of what the compiled filter decides, following
libseccomp's rules (see notes/policy-format.md, "Precedence").

Validation is strict and complete: `from_dict` collects every problem before raising one
`PolicyError` whose ``problems`` are lines ``FILE: $.json.path: message``.
"""

from __future__ import annotations

import copy
import difflib
import errno as errno_mod
import functools
import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tinyjail import bpfsim, groups, syscalls
from tinyjail.errors import PolicyError, UsageError

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

MOBY_ARCHES: tuple[str, ...] = (
    "386", "amd64", "arm", "arm64", "loong64", "mips", "mipsle", "mips64", "mips64le", "mips64n32",
    "mips64len32", "ppc", "ppc64", "ppc64le", "riscv64", "s390", "s390x", "x32", "x86", "sparc64",
)
"""Go architecture names used by moby's ``includes.arches``/``excludes.arches``."""

GO_ARCH: dict[str, tuple[str, ...]] = {"x86_64": ("amd64",), "x86": ("386", "x86"), "x32": ("x32", "amd64")}
"""tinyjail ABI -> the moby arch names that select it."""

MAX_FILE_BYTES = 4 * 1024 * 1024
"""Policies larger than this are refused (moby's default profile is ~13 KiB)."""

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


# --------------------------------------------------------------------------- names


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


def validate(policy: Policy) -> None:
    """Check a Policy built in code with the same rules as a file. Raises PolicyError."""
    from_dict(to_dict(policy), source=policy.source or "<policy>")


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


def _unknown_keys(obj: dict[str, Any], known: Sequence[str], path: str, problems: _Problems,
                  keep: bool) -> dict[str, Any]:
    """Report unknown keys. A near-miss of a known key is an error (a typo would silently drop
    a field); other keys are errors too unless ``keep`` (then they are kept and saved back)."""
    extra: dict[str, Any] = {}
    for dup in getattr(obj, "duplicates", ()):
        problems.add(f"{path}.{dup}", "key written twice (only the last one would count)")
    for key, value in obj.items():
        if key in known:
            continue
        if not isinstance(key, str):
            problems.add(path, f"object key {key!r} is not a string")
            continue
        guess = _close(key, known, cutoff=0.75)
        if guess is not None:
            problems.add(f"{path}.{key}", f'unknown key "{key}" (did you mean "{guess}"?)')
        elif keep:
            extra[key] = value
        else:
            problems.add(f"{path}.{key}", f'unknown key "{key}" (expected one of: {", ".join(known)})')
    return extra


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
    if value in _STRICTNESS:
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
    extra = _unknown_keys(obj, TOP_KEYS, path, problems, keep=True)
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
            for i, entry in enumerate(entries):
                rule = _parse_rule(entry, f"{path}.syscalls[{i}]", problems)
                if rule is not None:
                    policy.syscalls.append(rule)
            if len(policy.syscalls) == len(entries):
                _check_conflicts(policy, path, problems)
    return policy


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
    extra = _unknown_keys(entry, RULE_KEYS, path, problems, keep=True)
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
                       includes=includes, excludes=excludes, extra=extra)


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
    _unknown_keys(raw, ARG_KEYS, path, problems, keep=False)
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
    _unknown_keys(raw, CONDITION_KEYS, path, problems, keep=False)
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


def _condition_key(rule: SyscallRule) -> str:
    return json.dumps([rule.includes, rule.excludes], sort_keys=True)


def _arg_key(args: Iterable[Arg]) -> tuple[tuple[int, str, int, int], ...]:
    return tuple(sorted(a.key() for a in args))


def _check_conflicts(policy: Policy, path: str, problems: _Problems) -> None:
    """One syscall with the same argument conditions (and the same moby conditions) under two
    actions is an error: libseccomp refuses it (EEXIST) and the intent is ambiguous. A name given
    explicitly may override the same name reached through a @group (see effective_rules)."""
    seen: dict[tuple[str, Any, str, bool], tuple[str, int | None, str]] = {}
    for i, rule in enumerate(policy.syscalls):
        outcome = (rule.action, ret_errno(rule.action, rule.errno_ret))
        cond = _condition_key(rule)
        sig = _arg_key(rule.args)
        for j, written in enumerate(rule.names):
            direct = not written.startswith("@")
            for name in sorted(groups.expand(written)):
                key = (name, sig, cond, direct)
                here = f"{path}.syscalls[{i}].names[{j}]"
                prev = seen.get(key)
                if prev is None:
                    seen[key] = (outcome[0], outcome[1], here)
                    continue
                if (prev[0], prev[1]) != outcome:
                    via = f" (from {written})" if not direct else ""
                    what = "same arguments" if sig else "no argument conditions"
                    first = _show_action(prev[0], prev[1])
                    problems.add(here, f'"{name}"{via} is already {first} at {prev[2]} '
                                       f"({what}); it cannot also be {_show_action(*outcome)}")


def _show_action(action: str, errno_ret: int | None) -> str:
    if errno_ret is None:
        return action
    if action != "SCMP_ACT_ERRNO":
        return f"{action}({errno_ret})"
    name = errno_mod.errorcode.get(errno_ret, str(errno_ret))
    return f"{action}({name})"


def show_action(action: str, errno_ret: int | None = None) -> str:
    """``SCMP_ACT_ERRNO(EPERM)`` style text for an action and its errno."""
    return _show_action(action, ret_errno(action, errno_ret))


def notes(policy: Policy) -> list[str]:
    """Non-fatal remarks for `policy check`: unknown keys that are kept as written, names the
    installed libseccomp cannot compile."""
    src = policy.source or "<policy>"
    out = [f"{src}: $.{key}: unknown key kept as written (tinyjail and runc ignore it)"
           for key in policy.extra]
    for i, rule in enumerate(policy.syscalls):
        for key in rule.extra:
            out.append(f"{src}: $.syscalls[{i}].{key}: unknown key kept as written (ignored)")
    newer = sorted({n for rule in policy.syscalls for n in rule.names
                    if not n.startswith("@") and not syscalls.is_known(n)})
    if newer:
        out.append(f"{src}: {len(newer)} syscalls are newer than the installed libseccomp and are skipped "
                   f"when compiling: {', '.join(newer)}")
    return out


# --------------------------------------------------------------------------- writing


def _arg_to_dict(arg: Arg) -> dict[str, Any]:
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
            entry["args"] = [_arg_to_dict(a) for a in rule.args]
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
    ``portable`` writes plain runtime-spec JSON (see `to_portable`). The write is atomic
    (temporary file + rename)."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{p}: is a directory")
    if p.exists() and not force:
        raise UsageError(f"{p} already exists; use --force to overwrite it")
    text = dumps(policy, portable, caps=caps)
    from_dict(json.loads(text), source=str(p))
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, p)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"{p}: cannot write: {err.strerror or err}") from None


# --------------------------------------------------------------------------- portable form


_Winner = tuple[bool, int, int]


def _members(rule: SyscallRule) -> dict[str, bool]:
    """Every syscall a rule names (groups expanded) -> whether it is written explicitly."""
    out: dict[str, bool] = {}
    for written in rule.names:
        for name in groups.expand(written):
            out[name] = out.get(name, False) or not written.startswith("@")
    return out


def _winners(rules: Sequence[SyscallRule], by_conditions: bool) -> dict[tuple[str, Any, str], _Winner]:
    """(syscall, argument set, moby conditions or "") -> (explicit, strictness, index of the rule
    that decides it), with effective_rules' precedence: a name written explicitly beats the same
    name reached through a @group, then the stricter action wins, then the earlier rule. Used
    wherever groups are written out, so that their members do not become explicit rivals of
    the rules that overrode them."""
    winner: dict[tuple[str, Any, str], _Winner] = {}
    for i, rule in enumerate(rules):
        rank = strictness(rule.action)
        cond = _condition_key(rule) if by_conditions else ""
        for name, direct in _members(rule).items():
            for args in _arg_sets(rule.args):
                key = (name, _arg_key(args), cond)
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
    - Where the compiled form lets one entry win over another (a name written explicitly over
      the same name reached through a group; the stricter of overlapping moby rules), only the
      winner keeps the name, because without groups and conditions both would be written
      explicitly under the same conditions (a conflict).
    - ``comment`` stays (moby and podman read it, runc ignores it); other unknown keys are
      dropped.

    ``effective_rules`` of the result equal those of ``policy`` (for the same ``caps`` and
    kernel), and it contains no @group, no symbolic value and no moby key.
    """
    kern = kernel or running_kernel()
    granted = frozenset(caps or ())
    live = [(i, rule) for i, rule in enumerate(policy.syscalls)
            if conditions_hold(rule, syscalls.NATIVE_ARCH, granted, kern)]

    winner = _winners([rule for _, rule in live], by_conditions=False)

    rules: list[SyscallRule] = []
    for i, (_, rule) in enumerate(live):
        sets = _arg_sets(rule.args)
        whole: list[str] = []
        partial: dict[int, list[str]] = {}   # argument set -> names this rule wins only there
        for name in _members(rule):
            won = [k for k, args in enumerate(sets) if winner[(name, _arg_key(args), "")][2] == i]
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


def is_portable(policy: Policy) -> bool:
    """True when `to_dict` already writes plain runtime-spec JSON: no @group, no symbolic value,
    no moby key (``includes``/``excludes``/``archMap``) and no unknown key."""
    return not (policy.arch_map is not None or policy.extra or any(
        rule.includes or rule.excludes or rule.extra
        or any(n.startswith("@") for n in rule.names)
        or any(a.symbolic is not None or a.symbolic_two is not None for a in rule.args)
        for rule in policy.syscalls))


# --------------------------------------------------------------------------- compiling


def running_kernel() -> tuple[int, int]:
    """(major, minor) of the running kernel, for moby's ``minKernel``."""
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _kernel_at_least(version: str, kernel: tuple[int, int]) -> bool:
    parts = tuple(int(x) for x in version.split(".")[:2])
    return kernel >= parts


def conditions_hold(rule: SyscallRule, arch: str = "x86_64", caps: Iterable[str] | None = None,
                    kernel: tuple[int, int] | None = None) -> bool:
    """Whether a moby rule applies: ``includes`` all true (every listed cap granted, arch listed,
    kernel >= minKernel) and no ``excludes`` true (no listed cap granted, arch not listed,
    kernel < minKernel). ``caps`` are the capabilities the container gets (default: none)."""
    granted = set(caps or ())
    kern = kernel or running_kernel()
    go_names = GO_ARCH.get(arch, (arch,))
    inc, exc = rule.includes, rule.excludes
    if inc.get("caps") and not set(inc["caps"]) <= granted:
        return False
    if inc.get("arches") and not set(inc["arches"]) & set(go_names[:1]):
        return False
    if inc.get("minKernel") and not _kernel_at_least(inc["minKernel"], kern):
        return False
    if exc.get("caps") and set(exc["caps"]) & granted:
        return False
    if exc.get("arches") and set(exc["arches"]) & set(go_names[:1]):
        return False
    return not (exc.get("minKernel") and _kernel_at_least(exc["minKernel"], kern))


def _arg_sets(args: list[Arg]) -> list[tuple[Arg, ...]]:
    """runc's reading of ``args``: conditions on distinct arguments are AND-ed; when an argument
    index repeats, every condition becomes a rule of its own (OR-ed)."""
    if not args:
        return [()]
    indexes = [a.index for a in args]
    if len(set(indexes)) == len(indexes):
        return [tuple(sorted(args, key=lambda a: a.index))]
    return [(a,) for a in args]


def effective_architectures(policy: Policy, native: str = "SCMP_ARCH_X86_64") -> list[str]:
    """The OCI architectures a filter covers: ``architectures`` as written, else moby's archMap
    entry for ``native`` plus its sub-architectures, else just ``native``."""
    if policy.architectures:
        return list(policy.architectures)
    for entry in policy.arch_map or []:
        if entry.get("architecture") == native:
            return [native, *entry.get("subArchitectures", [])]
    return [native]


def effective_rules(policy: Policy, arch: str = "x86_64", caps: Iterable[str] | None = None,
                    kernel: tuple[int, int] | None = None) -> list[Rule]:
    """The compiled rules for ``arch``: @groups expanded, moby conditions evaluated, names the
    ABI lacks (or the installed libseccomp does not know) dropped, rules equal to the default
    action dropped (runc skips them, libseccomp refuses them).

    Precedence, in order: a name written explicitly beats the same name reached through a
    @group; for the same name and arguments the stricter action wins; a rule without argument
    conditions replaces every conditional rule of that name (libseccomp does the same).
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
    # (name, argkey) -> (strictness, not-direct, action, errno, args)
    chosen: dict[tuple[str, Any], tuple[bool, str, int | None, tuple[Arg, ...]]] = {}
    for rule in policy.syscalls:
        if not conditions_hold(rule, arch, caps, kernel):
            continue
        errno_ret = ret_errno(rule.action, rule.errno_ret)
        for written in rule.names:
            direct = not written.startswith("@")
            for name in groups.expand(written):
                if name not in table:
                    continue
                for args in _arg_sets(rule.args):
                    key = (name, _arg_key(args))
                    old = chosen.get(key)
                    new = (direct, rule.action, errno_ret, args)
                    if old is None or (direct and not old[0]) or (
                        direct == old[0] and strictness(rule.action) < strictness(old[1])
                    ):
                        chosen[key] = new
    by_name: dict[str, list[Rule]] = {}
    for (name, _), (_, action, errno_ret, args) in chosen.items():
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
            out.extend(sorted(rules, key=lambda r: _arg_key(r.args)))
    return tuple(out)


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



# --------------------------------------------------------------------------- merge / diff

_Key = tuple[str, Any, str]


def _written_map(policy: Policy) -> dict[_Key, tuple[str, int | None, bool]]:
    """(name, args, moby conditions) -> (action, errno, explicit) as written, with the same
    precedence as effective_rules (explicit beats @group, then stricter wins)."""
    out: dict[_Key, tuple[str, int | None, bool]] = {}
    for rule in policy.syscalls:
        outcome = (rule.action, ret_errno(rule.action, rule.errno_ret))
        sig, cond = _arg_key(rule.args), _condition_key(rule)
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
    winner = _winners(rules, by_conditions=True)
    expanded: list[str] = []
    out: list[SyscallRule] = []
    for i, rule in enumerate(rules):
        out.append(rule)
        if _arg_key(rule.args) != sig or _condition_key(rule) != cond:
            continue
        if not any(name in groups.expand(w) for w in rule.names):
            continue
        sets = _arg_sets(rule.args)
        names: list[str] = []
        for written in rule.names:
            if written == name:
                continue
            if not (written.startswith("@") and name in groups.expand(written)):
                names.append(written)
                continue
            expanded.append(written)
            for member in sorted(groups.expand(written) - {name}):
                won = [args for args in sets if winner[(member, _arg_key(args), cond)][2] == i]
                if len(won) == len(sets):
                    names.append(member)
                for args in won if len(won) < len(sets) else []:
                    out.append(replace(copy.deepcopy(rule), names=[member], args=list(args)))
        rule.names = list(dict.fromkeys(names))
    rules[:] = [r for r in out if r.names]
    return expanded


def _rule_identity(rule: SyscallRule) -> str:
    return json.dumps([rule.action, rule.errno_ret, [_arg_to_dict(a) for a in rule.args], rule.comment,
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
        report.append(f"defaultAction: {la} has {_show_action(*da)}, {lb} has {_show_action(*db)}; "
                      f"the stricter {_show_action(*(da if win is a else db))} is used")
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
        line = (f"{_describe_key(key)}: {la} has {_show_action(*oa)}, {lb} has {_show_action(*ob)}; "
                f"{_show_action(*(oa if a_wins else ob))} wins")
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
        key_a = sorted((r.action, r.errno_ret, _arg_key(r.args)) for r in ra[name])
        key_b = sorted((r.action, r.errno_ret, _arg_key(r.args)) for r in rb[name])
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


__all__ = [
    "ACTIONS",
    "DENY_ACTIONS",
    "FLAGS",
    "OPS",
    "PERMIT_ACTIONS",
    "Arg",
    "Policy",
    "PolicyDiff",
    "Rule",
    "SyscallRule",
    "allowed",
    "conditions_hold",
    "diff",
    "dumps",
    "effective_architectures",
    "effective_rules",
    "evaluate",
    "from_dict",
    "is_portable",
    "load",
    "loads",
    "merge",
    "notes",
    "save",
    "show_action",
    "stricter",
    "strictness",
    "to_dict",
    "to_portable",
    "treatment",
    "validate",
]
