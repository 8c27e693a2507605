"""Turn raw user stacks into module + function + offset (+ file:line with debug info).

A traced child may be gone long before the trace ends, so /proc/PID/maps is not enough. The
address space of every traced process is rebuilt from the trace itself:

* at the first instant of a new image (the probe's START record) the kernel's initial stack
  holds the auxiliary vector: AT_PHDR locates the executable, AT_BASE the dynamic loader,
  AT_SYSINFO_EHDR the vDSO;
* every later library comes from `openat` (path -> fd) then `mmap(fd, offset)` (-> address),
  all of which are recorded events; fork copies the parent's map;
* an exec of ``/proc/self/exe`` or ``/dev/fd/N`` is an exec of the image or file the trace
  already knows for that process (see `AddressSpaces.exec_target`).

Live snapshots of /proc/PID/maps taken while the process ran are preferred where they exist.
Frames are looked up with pyelftools (.symtab, else .dynsym; .debug_line for file:line). The
frames past a libc wrapper are unwound from the probe's copy of the stack top with .eh_frame
CFI (tracer/unwind.py): libc has no frame pointers for the kernel's walk to follow.
"""

from __future__ import annotations

import bisect
import functools
import os
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tinyjail.tracer.unwind import Rule, StackCopy, cfi_table, join, unwind

AT_PHDR, AT_BASE, AT_ENTRY, AT_SYSINFO_EHDR = 3, 7, 9, 33
UNKNOWN = "[unknown]"
USER_TOP = 1 << 47
"""x86_64 user addresses are below this (4-level paging; 5-level stays below 1 << 56)."""


@dataclass(frozen=True)
class Mapping:
    """``[start, end)`` of a process maps ``path`` from file offset ``offset``."""

    start: int
    end: int
    offset: int
    path: str


@dataclass
class Frame:
    ip: int
    module: str = UNKNOWN
    symbol: str | None = None
    offset: int = 0
    file: str | None = None
    line: int = -1
    via: str | None = None
    """How the frame was found: "ip" (the syscall's), "kernel" (the kernel's frame-pointer walk),
    "sp" (the word at the user sp), "cfi" (unwound with .eh_frame from the stack copy), "fp"
    (a frame pointer followed in the stack copy)."""


@dataclass
class Segment:
    vaddr: int
    memsz: int
    offset: int
    filesz: int


@dataclass
class ElfInfo:
    """What symbolization needs from one ELF file, read once."""

    path: str
    is_dyn: bool
    segments: list[Segment]
    phdr_vaddr: int | None
    interp: str | None
    entry: int
    func_starts: list[int] = field(default_factory=list)
    func_ends: list[int] = field(default_factory=list)
    func_names: list[str] = field(default_factory=list)
    lines: list[tuple[int, str, int]] = field(default_factory=list)   # (address, file, line) sorted
    text: dict[int, bytes] = field(default_factory=dict)   # file page number -> its 4 KiB, once read

    def vaddr_of(self, file_offset: int) -> int | None:
        for s in self.segments:
            if s.offset <= file_offset < s.offset + max(s.filesz, 1):
                return s.vaddr + (file_offset - s.offset)
        return None

    def function(self, vaddr: int) -> tuple[str, int] | None:
        i = bisect.bisect_right(self.func_starts, vaddr) - 1
        if i >= 0 and vaddr < max(self.func_ends[i], self.func_starts[i] + 1):
            return self.func_names[i], vaddr - self.func_starts[i]
        return None

    def line(self, vaddr: int) -> tuple[str, int] | None:
        if not self.lines:
            return None
        i = bisect.bisect_right(self.lines, (vaddr, "\uffff", 1 << 30)) - 1
        if i >= 0:
            addr, file, line = self.lines[i]
            if vaddr - addr < 4096:
                return file, line
        return None

    def looks_like_return_address(self, vaddr: int) -> bool:
        """True when the bytes before ``vaddr`` decode as a call instruction ending at it (direct,
        or indirect through a register or memory: 2 to 7 bytes, with a REX prefix up to 8)."""
        before = self.read(vaddr - 8, 8)
        if len(before) < 8:
            return False
        return any(_call_ending(before[8 - n:]) for n in (5, 2, 3, 6, 4, 7, 8))

    def read(self, vaddr: int, n: int) -> bytes:
        """File bytes at ``vaddr``, through a cache of 4 KiB pages (the unwinder checks every
        return address it finds: an open() per check cost ~70 us, whole segments ~1 ms/MB)."""
        for s in self.segments:
            if s.vaddr <= vaddr and vaddr + n <= s.vaddr + s.filesz:
                start = s.offset + vaddr - s.vaddr
                first, last = start >> 12, (start + n - 1) >> 12
                missing = [p for p in range(first, last + 1) if p not in self.text]
                if missing:
                    try:
                        with open(self.path, "rb") as f:
                            for p in missing:
                                self.text[p] = os.pread(f.fileno(), 4096, p << 12)
                    except OSError:
                        return b""
                data = b"".join(self.text[p] for p in range(first, last + 1))
                return data[start - (first << 12):start - (first << 12) + n]
        return b""


def _call_ending(code: bytes) -> bool:
    """``code`` is exactly one call: e8 rel32, or ff /2 (after an optional notrack and REX
    prefix) with its ModRM, SIB and displacement bytes. (capstone would take 56 ms to import.)"""
    if len(code) == 5 and code[0] == 0xE8:
        return True
    i = 1 if code[:1] == b"\x3e" else 0            # notrack
    if len(code) > i and 0x40 <= code[i] <= 0x4F:  # REX
        i += 1
    if len(code) < i + 2 or code[i] != 0xFF or (code[i + 1] >> 3) & 7 != 2:
        return False
    mod, rm = code[i + 1] >> 6, code[i + 1] & 7
    size = i + 2
    if mod != 3 and rm == 4:                        # SIB byte
        if len(code) < size + 1:
            return False
        if mod == 0 and code[size] & 7 == 5:        # no base: disp32
            size += 4
        size += 1
    if mod == 0 and rm == 5:                        # rip + disp32
        size += 4
    elif mod == 1:
        size += 1
    elif mod == 2:
        size += 4
    return size == len(code)


MAX_DWARF_FILE = 64 << 20


def elf_info(path: str) -> ElfInfo | None:
    """Parse ``path`` with pyelftools; None when it is not a readable ELF file. One parse per
    file, whatever the name it was mapped under (/usr/bin/python3 is python3.11; ld.so has
    two names)."""
    return _elf_info(canonical(path))


@functools.lru_cache(maxsize=4096)
def canonical(path: str) -> str:
    """``path`` with symlinks resolved: the key of the per-file caches (ELF info, CFI)."""
    return os.path.realpath(path)


@functools.lru_cache(maxsize=256)
def _elf_info(path: str) -> ElfInfo | None:
    from elftools.common.exceptions import ELFError
    from elftools.common.utils import struct_parse
    from elftools.elf.elffile import ELFFile

    try:
        f = open(path, "rb")  # noqa: SIM115 - ELFFile reads lazily while we index
    except OSError:
        return None
    with f:
        try:
            elf = ELFFile(f)
            segments = []
            phdr = None
            interp = None
            # raw program headers: iter_segments() builds DynamicSegment & co, ~3 ms for libc
            for i in range(elf["e_phnum"]):
                seg = struct_parse(elf.structs.Elf_Phdr, f, elf["e_phoff"] + i * elf["e_phentsize"])
                if seg["p_type"] == "PT_LOAD":
                    segments.append(Segment(seg["p_vaddr"], seg["p_memsz"], seg["p_offset"], seg["p_filesz"]))
                elif seg["p_type"] == "PT_PHDR":
                    phdr = seg["p_vaddr"]
                elif seg["p_type"] == "PT_INTERP":
                    f.seek(seg["p_offset"])
                    interp = f.read(seg["p_filesz"]).split(b"\0", 1)[0].decode(errors="replace")
            if phdr is None and segments:
                first = min(segments, key=lambda s: s.offset)
                phdr = first.vaddr + elf["e_phoff"] - first.offset
            info = ElfInfo(path, elf["e_type"] == "ET_DYN", segments, phdr, interp, elf["e_entry"])
            _index_functions(elf, info)
            if elf.get_section_by_name(".debug_line") is not None and os.path.getsize(path) < MAX_DWARF_FILE:
                _index_lines(elf, info)
        except (ELFError, ValueError, KeyError, struct.error, OSError, AttributeError, AssertionError):
            return None
    return info


ELF64_SYM = [("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"), ("value", "<u8"),
             ("size", "<u8")]
STT_FUNC, STT_GNU_IFUNC = 2, 10


def _index_functions(elf: Any, info: ElfInfo) -> None:
    """Function symbols from .symtab (else .dynsym), read as one numpy array: pyelftools'
    per-symbol parsing takes ~0.3 s for libc's 3000 symbols, this a few ms."""
    import numpy as np

    for name in (".symtab", ".dynsym"):
        sec = elf.get_section_by_name(name)
        if sec is None or sec["sh_entsize"] != 24 or elf.elfclass != 64:
            continue
        syms = np.frombuffer(sec.data(), dtype=np.dtype(ELF64_SYM))
        kind = syms["info"] & 0xF
        funcs = syms[((kind == STT_FUNC) | (kind == STT_GNU_IFUNC)) & (syms["value"] != 0)]
        if not len(funcs):
            continue
        strtab = elf.get_section(sec["sh_link"]).data()
        found: dict[int, tuple[int, str]] = {}
        for off, addr, size in zip(funcs["name"].tolist(), funcs["value"].tolist(), funcs["size"].tolist(),
                                   strict=True):
            end = strtab.find(b"\0", off)
            sym = strtab[off:end if end >= 0 else None].decode(errors="replace")
            # aliases share an address: prefer the public name (getppid over __getppid)
            if addr not in found or (found[addr][1].startswith("_") and not sym.startswith("_")):
                found[addr] = (size, sym)
        for addr in sorted(found):
            size, sym = found[addr]
            info.func_starts.append(addr)
            info.func_ends.append(addr + size)
            info.func_names.append(sym)
        return   # .symtab is a superset of .dynsym


def _index_lines(elf: Any, info: ElfInfo) -> None:
    dwarf = elf.get_dwarf_info()
    rows: list[tuple[int, str, int]] = []
    for cu in dwarf.iter_CUs():
        prog = dwarf.line_program_for_CU(cu)
        if prog is None:
            continue
        files = prog["file_entry"]
        version = prog["version"]
        for entry in prog.get_entries():
            st = entry.state
            if st is None or st.end_sequence:
                continue
            idx = st.file if version >= 5 else st.file - 1
            name = files[idx].name.decode(errors="replace") if 0 <= idx < len(files) else "?"
            rows.append((st.address, name, st.line))
    rows.sort()
    info.lines = rows


def parse_maps(text: str) -> list[Mapping]:
    """/proc/PID/maps lines -> file-backed Mappings (anonymous ones carry their [name])."""
    out = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        path = parts[5].strip() if len(parts) == 6 else ""
        if not path:
            continue
        out.append(Mapping(lo, hi, int(parts[2], 16), path))
    return out


def snapshot_maps(pid: int) -> list[Mapping] | None:
    """The live map of ``pid``, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return parse_maps(f.read())
    except OSError:
        return None


def parse_initial_stack(words: Iterable[int]) -> dict[int, int]:
    """argc, argv..., 0, envp..., 0, auxv pairs (type, value) ... AT_NULL -> {type: value}."""
    w = list(words)
    if not w:
        return {}
    i = 1 + int(w[0])
    if i >= len(w) or w[i] != 0:
        return {}
    i += 1
    while i < len(w) and w[i] != 0:
        i += 1
    i += 1
    aux: dict[int, int] = {}
    while i + 1 < len(w) and w[i] != 0:
        aux[int(w[i])] = int(w[i + 1])
        i += 2
    return aux


def image_mappings(path: str, base: int) -> list[Mapping]:
    """The PT_LOAD segments of ``path`` loaded with bias ``base``."""
    info = elf_info(path)
    if info is None:
        return []
    return [Mapping(base + s.vaddr, base + s.vaddr + s.memsz, s.offset, path) for s in info.segments]


_PROC_LINK = re.compile(r"/proc/(?P<who>self|thread-self|\d+)/(?:exe|fd/(?P<fd>\d+))|/dev/fd/(?P<devfd>\d+)")
"""Exec file names that are links into the exec'ing process (or another one), not files."""


class AddressSpaces:
    """Per-process maps rebuilt from the trace (see module docstring), plus live snapshots."""

    def __init__(self) -> None:
        self.maps: dict[int, list[Mapping]] = {}
        self.fds: dict[int, dict[int, str]] = {}
        self.live: dict[int, list[Mapping]] = {}
        self.exe: dict[int, str] = {}

    def fork(self, parent: int, child: int) -> None:
        self.maps[child] = list(self.maps.get(parent, []))
        self.fds[child] = dict(self.fds.get(parent, {}))
        if parent in self.exe:
            self.exe[child] = self.exe[parent]

    def exec(self, pid: int, filename: str) -> None:
        self.exe[pid] = self.exec_target(pid, filename)
        self.maps[pid] = []

    def exec_target(self, pid: int, filename: str) -> str:
        """The file ``pid`` really executes when it execs ``filename``.

        ``/proc/self/exe`` (runc, Go, busybox-style re-execs) names the exec'ing process's own
        image, ``/dev/fd/N`` (fexecve) one of its open files: read at symbolization time they
        would name tinyjail's own python, so they are resolved from what the trace knows.
        Anything unknown is kept as it is.
        """
        m = _PROC_LINK.fullmatch(filename)
        if m is None:
            return filename
        who = m.group("who")
        owner = pid if who in (None, "self", "thread-self") else int(who)
        fd = m.group("fd") or m.group("devfd")
        if fd is None:
            return self.exe.get(owner, filename)
        return self.fds.get(owner, {}).get(int(fd), filename)

    def start(self, pid: int, stack_words: Iterable[int]) -> None:
        """The new image's auxv places the executable, its interpreter and the vDSO."""
        aux = parse_initial_stack(stack_words)
        exe = self.exe.get(pid)
        maps = self.maps.setdefault(pid, [])
        info = elf_info(exe) if exe else None
        if exe and info is not None and AT_PHDR in aux and info.phdr_vaddr is not None:
            base = aux[AT_PHDR] - info.phdr_vaddr if info.is_dyn else 0
            maps.extend(image_mappings(exe, base))     # under the name it was exec'd as
            if info.interp and aux.get(AT_BASE):
                maps.extend(image_mappings(info.interp, aux[AT_BASE]))
        if aux.get(AT_SYSINFO_EHDR):
            maps.append(Mapping(aux[AT_SYSINFO_EHDR], aux[AT_SYSINFO_EHDR] + 0x2000, 0, "[vdso]"))

    def opened(self, pid: int, fd: int, path: str) -> None:
        self.fds.setdefault(pid, {})[fd] = path

    def closed(self, pid: int, fd: int) -> None:
        self.fds.get(pid, {}).pop(fd, None)

    def mmapped(self, pid: int, addr: int, length: int, fd: int, offset: int) -> None:
        path = self.fds.get(pid, {}).get(fd)
        if path:
            self.maps.setdefault(pid, []).append(Mapping(addr, addr + length, offset, path))

    def find(self, pid: int, addr: int) -> Mapping | None:
        for source in (self.live.get(pid, []), self.maps.get(pid, [])):
            for m in reversed(source):
                if m.start <= addr < m.end:
                    return m
        return None


def symbolize_frame(spaces: AddressSpaces, pid: int, ip: int) -> Frame:
    m = spaces.find(pid, ip)
    if m is None:
        return Frame(ip)
    frame = Frame(ip, module=m.path, offset=ip - m.start + m.offset)
    if m.path.startswith("["):
        return frame
    info = elf_info(m.path)
    if info is None:
        return frame
    vaddr = info.vaddr_of(ip - m.start + m.offset)
    if vaddr is None:
        return frame
    fn = info.function(vaddr)
    if fn is not None:
        frame.symbol, frame.offset = fn
    where = info.line(vaddr)
    if where is not None:
        frame.file, frame.line = where
    return frame


def caller_frame(spaces: AddressSpaces, pid: int, word: int) -> Frame | None:
    """The word at the user stack pointer, when it is a return address (after a call)."""
    m = spaces.find(pid, word)
    if m is None or m.path.startswith("["):
        return None
    info = elf_info(m.path)
    if info is None:
        return None
    vaddr = info.vaddr_of(word - m.start + m.offset)
    if vaddr is None or not info.looks_like_return_address(vaddr):
        return None
    frame = symbolize_frame(spaces, pid, word)
    if frame.line >= 0 and frame.file is not None:
        # the return address points past the call: its line is the one of the call itself
        before = info.line(vaddr - 1)
        if before is not None:
            frame.file, frame.line = before
    return frame


def symbolize_stack(
    spaces: AddressSpaces, pid: int, ips: list[int], sp_word: int | None = None,
    copy: StackCopy | None = None,
) -> list[Frame]:
    """Frames innermost first, from the kernel's frame-pointer walk ``ips``.

    With ``copy`` (the top of the user stack when the stack was taken) the frames above the
    syscall are unwound with the modules' .eh_frame CFI (tracer/unwind.py): libc has no frame
    pointers, so from a wrapper that is not a leaf the kernel's walk is garbage, and from a leaf
    it skips the direct caller. The kernel's frames are kept where they join the unwound ones.
    Without a copy, or when not even the caller can be unwound, the word at sp (when it is a
    return address) is put back as frame 1 of the kernel's walk."""
    if copy is not None and ips:
        found = unwind(ips[0], copy, functools.partial(_rule_at, spaces, pid),
                       functools.partial(_is_return, spaces, pid))
        if len(found.frames) > 1:
            return _code_frames(spaces, pid, join(found, copy, ips))
        if sp_word is None:
            sp_word = copy.word(copy.sp)
    frames = _code_frames(spaces, pid, [(ip, "kernel" if depth else "ip") for depth, ip in enumerate(ips)])
    if sp_word and frames and (len(frames) < 2 or frames[1].ip != sp_word):
        caller = caller_frame(spaces, pid, sp_word)
        if caller is not None:
            caller.via = "sp"
            frames.insert(1, caller)
    return frames


def _code_frames(spaces: AddressSpaces, pid: int, chain: list[tuple[int, str]]) -> list[Frame]:
    """Symbolized frames up to the first one that is not code (a frame-pointer walk through
    code without frame pointers reads garbage); return addresses get the line of their call."""
    frames: list[Frame] = []
    for depth, (ip, via) in enumerate(chain):
        if depth and (not 0x1000 <= ip < USER_TOP or (via == "kernel" and ip == chain[depth - 1][0])):
            break   # (an unwound frame may repeat its caller's address: recursion)
        frame = symbolize_frame(spaces, pid, ip)
        if depth and (frame.module == UNKNOWN or (frame.module.startswith("[") and frame.module != "[vdso]")):
            break   # not code: the walk left the real stack
        frame.via = via
        frames.append(frame)
    for f in frames[1:]:
        if f.file is not None and f.line >= 0:
            # return addresses: report the call's line
            m = spaces.find(pid, f.ip)
            info = elf_info(m.path) if m else None
            if info is not None and m is not None:
                vaddr = info.vaddr_of(f.ip - m.start + m.offset)
                where = info.line(vaddr - 1) if vaddr else None
                if where:
                    f.file, f.line = where
    return frames


def _module_vaddr(spaces: AddressSpaces, pid: int, addr: int) -> tuple[str, int] | None:
    """(file, link-time address) of a user address in a file-backed mapping."""
    m = spaces.find(pid, addr)
    if m is None or m.path.startswith("["):
        return None
    info = elf_info(m.path)
    vaddr = info.vaddr_of(addr - m.start + m.offset) if info is not None else None
    return None if vaddr is None else (m.path, vaddr)


def _rule_at(spaces: AddressSpaces, pid: int, ip: int, exact: bool) -> Rule | None:
    """The CFI row at the syscall's ip (``exact``), or at the call before a return address."""
    where = _module_vaddr(spaces, pid, ip)
    table = cfi_table(canonical(where[0])) if where else None
    if where is None or table is None:
        return None
    return table.rule(where[1] if exact else where[1] - 1)


def _is_return(spaces: AddressSpaces, pid: int, addr: int) -> bool:
    where = _module_vaddr(spaces, pid, addr)
    return where is not None and _follows_call(*where)


@functools.lru_cache(maxsize=1 << 14)
def _follows_call(path: str, vaddr: int) -> bool:
    info = elf_info(path)
    return info is not None and info.looks_like_return_address(vaddr)
