"""Symbolic syscall argument values: ``"AF_UNIX"``, ``"SOCK_STREAM|SOCK_CLOEXEC"`` <-> numbers.

A policy that says ``{"index": 0, "value": "AF_UNIX"}`` reads better than ``1`` and is checked
against the right constant table for that syscall argument, so a typo or a constant from the
wrong family (``O_RDONLY`` for a socket type) is caught when the policy is loaded.

Values come from Python's own modules where they exist (socket, os, mmap, fcntl, termios,
signal) and otherwise from ``tinyjail/data/kernel_constants.json``, generated from the Linux
UAPI headers by ``tools/gen_kernel_constants.py`` — never typed by hand.
"""

from __future__ import annotations

import difflib
import fcntl
import functools
import json
import mmap
import os
import signal
import socket
import termios
from dataclasses import dataclass, field
from pathlib import Path

_DATA = Path(__file__).resolve().parent / "data" / "kernel_constants.json"

# Names that share a value with a better-known name: accepted by parse(), never chosen by render().
_ALIASES = frozenset({
    "AF_LOCAL", "AF_FILE", "AF_ROUTE", "O_NDELAY", "O_RSYNC", "O_FSYNC", "O_LARGEFILE", "MAP_ANON",
    "MAP_FILE", "F_GETLK64", "F_SETLK64", "F_SETLKW64", "PER_LINUX_32BIT", "PER_LINUX_FDPIC",
    "IPPROTO_HOPOPTS", "SIGIOT", "SIGPOLL", "SIGCLD", "TCGETA", "TCSETA", "TCSETAW", "TCSETAF",
})
# Masks: the best name for a MASKED_EQ mask, otherwise never used when rendering a value.
_MASKS = frozenset({"O_ACCMODE", "MAP_TYPE", "PER_MASK", "CSIGNAL"})
# Zero-valued enumerations shown even when the value is zero, as strace does (O_RDONLY|O_CLOEXEC).
_ZERO_BASES = frozenset({"O_RDONLY", "PER_LINUX"})


@dataclass(frozen=True)
class SymbolSet:
    """The constants one syscall argument takes. ``base_mask`` selects low bits that hold an
    enumerated value (socket type, O_ACCMODE, MAP_TYPE, PER_MASK, clone's exit signal); the
    other bits are independent flags. ``flags=False`` means the whole value is an enumeration."""

    title: str
    values: dict[str, int]
    flags: bool = False
    base_mask: int = 0
    base_last: bool = False
    by_value: dict[int, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        best: dict[int, str] = {}
        for nm, v in sorted(self.values.items(), key=lambda kv: (len(kv[0]), kv[0])):
            if nm in _ALIASES or nm in _MASKS:
                continue
            best.setdefault(v, nm)
        self.by_value.update(best)


@functools.cache
def _kernel() -> dict[str, dict[str, int]]:
    groups: dict[str, dict[str, int]] = json.loads(_DATA.read_text())["groups"]
    return groups


def _module_ints(module: object, prefixes: tuple[str, ...], exclude: tuple[str, ...] = ()) -> dict[str, int]:
    return {
        nm: int(getattr(module, nm))
        for nm in dir(module)
        if nm.startswith(prefixes) and not nm.startswith(exclude) and isinstance(getattr(module, nm), int)
    }


def _merge(python: dict[str, int], kernel: dict[str, int]) -> dict[str, int]:
    """Python's value wins; the header-generated table fills in what Python lacks."""
    return {**kernel, **python}


@functools.cache
def _sets() -> dict[tuple[str, int], SymbolSet]:
    k = _kernel()
    af = _module_ints(socket, ("AF_",))
    sock_types = _module_ints(socket, ("SOCK_",))
    ipproto = _module_ints(socket, ("IPPROTO_",))
    o_flags = _module_ints(os, ("O_",))
    prot = _merge(_module_ints(mmap, ("PROT_",)), k["prot"])
    maps = _merge(_module_ints(mmap, ("MAP_",)), k["map"])
    madv = _merge(_module_ints(mmap, ("MADV_",)), k["madvise"])
    not_commands = ("F_RDLCK", "F_WRLCK", "F_UNLCK", "F_EXLCK", "F_SHLCK", "F_SEAL_", "F_OK", "F_OWNER_")
    fcntl_cmds = _module_ints(fcntl, ("F_",), not_commands)
    tty = {nm: v for nm, v in _module_ints(termios, ("TC", "TIOC", "FIO")).items() if v >= 0x5400}
    ioctls = {nm: v for nm, v in _merge(tty, k["ioctl"]).items() if v >= 0x5400}  # not TIOCPKT_* bits
    signals = {s.name: int(s.value) for s in signal.Signals if not s.name.startswith("SIGRT")}
    clone_all = {nm: v for nm, v in k["clone"].items() if nm != "CSIGNAL"}
    clone_legacy = {nm: v for nm, v in clone_all.items() if v & 0xFF == 0 and v <= 0xFFFFFFFF}
    csignal = k["clone"]["CSIGNAL"]
    namespaces = {nm: v for nm, v in clone_all.items() if nm.startswith("CLONE_NEW")}

    sock_type = SymbolSet("socket type (SOCK_*)", sock_types, flags=True, base_mask=0xF)
    domain = SymbolSet("address family (AF_*)", af)
    proto = SymbolSet("protocol (IPPROTO_*)", ipproto)
    clone = SymbolSet("clone flags (CLONE_*, exit signal)", {**clone_legacy, **signals, "CSIGNAL": csignal},
                      flags=True, base_mask=csignal, base_last=True)
    unshare = SymbolSet("unshare flags (CLONE_*)", clone_all, flags=True)
    setns = SymbolSet("namespace type (CLONE_NEW*)", namespaces, flags=True)
    open_flags = SymbolSet("open flags (O_*)", o_flags, flags=True, base_mask=o_flags["O_ACCMODE"])
    prot_set = SymbolSet("memory protection (PROT_*)", prot, flags=True)
    map_set = SymbolSet("mmap flags (MAP_*)", maps, flags=True, base_mask=maps["MAP_TYPE"])
    personality = SymbolSet("personality (PER_*, ADDR_*)", k["personality"], flags=True,
                            base_mask=k["personality"]["PER_MASK"])
    return {
        ("socket", 0): domain,
        ("socket", 1): sock_type,
        ("socket", 2): proto,
        ("socketpair", 0): domain,
        ("socketpair", 1): sock_type,
        ("socketpair", 2): proto,
        ("accept4", 3): SymbolSet("accept4 flags (SOCK_*)", {n: sock_types[n] for n in ("SOCK_NONBLOCK",
                                                                                        "SOCK_CLOEXEC")},
                                  flags=True),
        ("clone", 0): clone,
        ("unshare", 0): unshare,
        ("setns", 1): setns,
        ("personality", 0): personality,
        ("prctl", 0): SymbolSet("prctl option (PR_*)", k["prctl"]),
        ("ioctl", 1): SymbolSet("ioctl request", ioctls),
        ("mmap", 2): prot_set,
        ("mmap", 3): map_set,
        ("mprotect", 2): prot_set,
        ("pkey_mprotect", 2): prot_set,
        ("madvise", 2): SymbolSet("madvise advice (MADV_*)", madv),
        ("open", 1): open_flags,
        ("openat", 2): open_flags,
        ("fcntl", 1): SymbolSet("fcntl command (F_*)", fcntl_cmds),
        ("kill", 1): SymbolSet("signal", signals),
        ("tkill", 1): SymbolSet("signal", signals),
        ("tgkill", 2): SymbolSet("signal", signals),
    }


@functools.cache
def _everything() -> dict[str, int]:
    out: dict[str, int] = {}
    for s in _sets().values():
        out.update(s.values)
    return out


def _canonical(syscall: str) -> str:
    for prefix in ("SYS_", "__NR_"):
        if syscall.startswith(prefix):
            return syscall[len(prefix):]
    return syscall


def symbol_set(syscall: str, index: int) -> SymbolSet | None:
    """The constants argument ``index`` of ``syscall`` takes, or None when it has none."""
    return _sets().get((_canonical(syscall), index))


def value_of(name: str) -> int:
    """The value of a constant known to any argument table (e.g. ``value_of("CLONE_NEWUSER")``)."""
    try:
        return _everything()[name]
    except KeyError:
        raise ValueError(_unknown(name, None, "", 0)) from None


def _unknown(token: str, table: SymbolSet | None, syscall: str, index: int) -> str:
    pool = table.values if table is not None else _everything()
    where = (f" for {syscall} arg {index} ({table.title})" if table is not None
             else f" (no constants table for {syscall} arg {index}; write a number)" if syscall else "")
    msg = f'unknown symbol "{token}"{where}'
    hint = difflib.get_close_matches(token.upper(), sorted(pool), n=1, cutoff=0.6)
    if hint:
        msg += f'; did you mean "{hint[0]}"?'
    elif table is not None and token in _everything():
        msg += f"; {token} belongs to another argument"
    return msg


def parse(syscall: str, index: int, text: str) -> int:
    """Resolve ``"A|B|0x10"`` (names of this argument's table, decimal/hex/octal ints) to an int.

    Raises ValueError naming the unknown symbol with a did-you-mean suggestion.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty argument value for {syscall} arg {index}")
    table = symbol_set(syscall, index)
    pool = table.values if table is not None else _everything()
    tokens = [raw.strip() for raw in text.split("|")]
    if not all(tokens):
        raise ValueError(f'malformed value "{text}" for {syscall} arg {index} (empty term around "|")')
    total = 0
    for token in tokens:
        try:
            number = int(token, 0)
        except ValueError:
            if token not in pool:
                raise ValueError(_unknown(token, table, syscall, index)) from None
            number = pool[token]
        if number < 0:
            number &= 0xFFFFFFFFFFFFFFFF
        total |= number
    return total


def _decompose(table: SymbolSet, value: int, mask: bool = False) -> str | None:
    head: list[str] = []
    base = value & table.base_mask
    rest = value & ~table.base_mask
    if table.base_mask:
        base_name = table.by_value.get(base)
        if mask and base == table.base_mask:   # O_ACCMODE|O_CREAT, not 0x3|O_CREAT
            base_name = next((n for n in _MASKS if table.values.get(n) == base), base_name)
        if base_name is None:
            if base:
                head.append(hex(base))
        elif base or base_name in _ZERO_BASES:
            head.append(base_name)
    flags = sorted(
        ((v, nm) for v, nm in table.by_value.items() if v and not v & table.base_mask),
        key=lambda vn: (-bin(vn[0]).count("1"), vn[0]),
    )
    chosen: list[tuple[int, str]] = []
    for v, nm in flags:
        if rest & v == v:
            chosen.append((v, nm))
            rest &= ~v
    parts = [nm for _, nm in sorted(chosen)]
    if rest:
        parts.append(hex(rest))
    parts = [*parts, *head] if table.base_last else [*head, *parts]
    if not any(p[0].isalpha() for p in parts):
        return None
    return "|".join(parts)


def render(syscall: str, index: int, value: int, op: str) -> str | None:
    """The most readable symbolic form of ``value`` (flags as ``A|B``, enums by name, a
    MASKED_EQ mask by its mask name such as ``O_ACCMODE``); None when no symbols apply."""
    table = symbol_set(syscall, index)
    if table is None:
        return None
    if op == "SCMP_CMP_MASKED_EQ":
        for nm in _MASKS:
            if table.values.get(nm) == value:
                return nm
    if not table.flags:
        return table.by_value.get(value)
    mixed = value & table.base_mask and value & ~table.base_mask
    if mixed and value in table.by_value:   # a compound name such as PER_SVR4
        return table.by_value[value]
    return _decompose(table, value, mask=op == "SCMP_CMP_MASKED_EQ")


__all__ = ["SymbolSet", "parse", "render", "symbol_set", "value_of"]
