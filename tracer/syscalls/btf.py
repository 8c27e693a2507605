"""Field offsets of kernel structs from the running kernel's BTF (/sys/kernel/btf/vmlinux).

Why: the sched fork/exec/exit hooks can then be raw tracepoints, which read `task->pid` etc. at
an offset instead of going through perf tracepoints, whose detach waits for RCU grace periods
(~0.15 s at every `tinyjail trace` exit). Parsing kernel headers with clang for the same
offsets would cost more than it saves.

The type section is a stream of variable-length records; walking all ~100k of them in Python
takes ~0.2 s, so the struct's record is located instead: its name offset is searched as a
32-bit word with numpy, and each candidate is accepted only when it parses as a STRUCT whose
members all have valid names and ascending offsets inside the struct.
"""

from __future__ import annotations

import functools
import struct
from pathlib import Path

import numpy as np

VMLINUX = Path("/sys/kernel/btf/vmlinux")
BTF_MAGIC = 0xEB9F
KIND_STRUCT = 4


@functools.cache
def _load(path: Path = VMLINUX) -> tuple[bytes, bytes] | None:
    """(type section, string section) of a BTF file, or None when unreadable."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) < 24:
        return None
    magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        "<HBBIIIII", data, 0)
    if magic != BTF_MAGIC:
        return None
    types = data[hdr_len + type_off:hdr_len + type_off + type_len]
    strings = data[hdr_len + str_off:hdr_len + str_off + str_len]
    return types, strings


def _name(strings: bytes, off: int) -> str | None:
    if off >= len(strings):
        return None
    end = strings.find(b"\0", off)
    return strings[off:end].decode(errors="replace") if end >= 0 else None


def member_offsets(struct_name: str, path: Path = VMLINUX) -> dict[str, int] | None:
    """Byte offsets of the (non-bitfield) members of ``struct struct_name``, or None."""
    loaded = _load(path)
    if loaded is None:
        return None
    types, strings = loaded
    needle = b"\0" + struct_name.encode() + b"\0"
    name_offs = []
    pos = strings.find(needle)
    while pos >= 0:
        name_offs.append(pos + 1)
        pos = strings.find(needle, pos + 1)
    if not name_offs:
        return None
    words = np.frombuffer(types, dtype="<u4", count=len(types) // 4)
    for name_off in name_offs:
        for i in np.flatnonzero(words == name_off).tolist():
            found = _parse_struct(words, i, strings)
            if found is not None:
                return found
    return None


def _parse_struct(words: np.ndarray, i: int, strings: bytes) -> dict[str, int] | None:
    if i + 3 > len(words):
        return None
    info, size = int(words[i + 1]), int(words[i + 2])
    kind, vlen, bitfields = (info >> 24) & 0x1F, info & 0xFFFF, info >> 31
    if kind != KIND_STRUCT or vlen == 0 or i + 3 + 3 * vlen > len(words):
        return None
    out: dict[str, int] = {}
    last = -1
    for m in range(vlen):
        name_off, _type, offset = (int(x) for x in words[i + 3 + 3 * m:i + 6 + 3 * m])
        bit = offset & 0xFFFFFF if bitfields else offset
        if bit < last or bit > size * 8:
            return None
        last = bit
        name = _name(strings, name_off)
        if name is None:
            return None
        if name and bit % 8 == 0:
            out[name] = bit // 8
    return out


def offsets(wanted: dict[str, tuple[str, str]]) -> dict[str, int] | None:
    """{macro: (struct, member)} -> {macro: byte offset}; None if any one is unknown."""
    out = {}
    for macro, (struct_name, member) in wanted.items():
        members = member_offsets(struct_name)
        if members is None or member not in members:
            return None
        out[macro] = members[member]
    return out
