"""Unwind the first user frames offline, from .eh_frame CFI and a copy of the top of the stack.

Why: Debian's libc and ld.so are built without frame pointers. From a syscall wrapper that is
not a leaf (open64 pushes rbp, keeps the path in it and its return address at sp+0x78), the
kernel's frame-pointer walk starts from a data register and reads garbage; from a leaf wrapper
it skips the direct caller. With each taken stack the probe copies the first bytes above the
user sp and rbp (``StackCopy``); the module's .eh_frame — the table C++ exceptions unwind with,
present in every module — says at each instruction where the return address and the saved rbp
are relative to the CFA (the caller's sp). Frames are unwound while the addresses they need lie
inside the copy; beyond it the kernel's own walk is kept only where it joins the unwound frames.

The FDE for an address is found through .eh_frame_hdr's sorted table (libc has ~3700 FDEs:
parsing them all with pyelftools takes ~0.5 s) and read when first needed (see `CfiTable`).
"""

from __future__ import annotations

import bisect
import functools
import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

RBP, RSP, RA = 6, 7, 16
"""x86_64 DWARF register numbers: rbp, rsp and the return-address column."""
MAX_FRAMES = 64


@dataclass(frozen=True)
class StackCopy:
    """``data`` is user memory from ``sp`` on, copied at the syscall with rbp's value ``bp``."""

    sp: int
    bp: int
    data: bytes

    def word(self, addr: int) -> int | None:
        """The 8 bytes at ``addr``, or None outside the copy."""
        off = addr - self.sp
        if 0 <= off <= len(self.data) - 8:
            return int.from_bytes(self.data[off:off + 8], "little")
        return None


@dataclass(frozen=True)
class Rule:
    """Where the caller's frame is, at one instruction: CFA = ``cfa_reg`` + ``cfa_offset``; the
    return address at CFA + ``ra`` (None: the outermost frame); rbp saved at CFA + ``bp`` (None:
    rbp still holds the caller's value; ``bp_lost``: the CFI says where but not in a form
    followed here)."""

    cfa_reg: int
    cfa_offset: int
    ra: int | None = -8
    bp: int | None = None
    bp_lost: bool = False


FRAME_POINTER = Rule(RBP, 16, -8, -16)
"""push rbp; mov rsp, rbp: what a frame-pointer walk assumes when a module has no CFI."""
UNSUPPORTED = Rule(-1, 0, None)
"""The CFI covers the address in a form not followed here (a CFA expression: PLT entries, signal
trampolines): the unwinding stops rather than guess with frame pointers."""


@dataclass(frozen=True)
class Unwound:
    """Frames found, innermost first: (return address or the syscall's ip, how). ``how`` is "cfi"
    or "fp" (frame pointer, no CFI for that code). ``bp``: rbp in the outermost frame found
    (None when unknown); ``fp_frame``: that frame's caller is at [bp + 8]."""

    frames: list[tuple[int, str]]
    bp: int | None
    fp_frame: bool


def unwind(ip: int, copy: StackCopy, rule_at: Callable[[int, bool], Rule | None],
           is_return: Callable[[int], bool]) -> Unwound:
    """Walk up from the syscall at ``ip``. ``rule_at(ip, exact)`` gives the CFI row at ``ip``
    (``exact``: the instruction about to run, for the syscall's frame) or for the call before
    a return address; ``is_return`` vets each return address (code right after a call).
    Without a rule for the syscall's own frame nothing is unwound."""
    frames = [(ip, "ip")]
    sp = copy.sp
    bp: int | None = copy.bp
    fp_frame = False
    while len(frames) < MAX_FRAMES:
        exact = len(frames) == 1
        rule = rule_at(ip, exact)
        how = "cfi"
        if rule is None:
            if exact:
                break
            rule, how = FRAME_POINTER, "fp"
        fp_frame = rule.cfa_reg == RBP and rule.cfa_offset == 16 and rule.ra == -8
        base = sp if rule.cfa_reg == RSP else bp if rule.cfa_reg == RBP else None
        if base is None or rule.ra is None:
            break
        cfa = base + rule.cfa_offset
        ret = copy.word(cfa + rule.ra)
        if cfa <= sp or ret is None or not is_return(ret):
            break
        if rule.bp_lost:
            bp = None
        elif rule.bp is not None:
            bp = copy.word(cfa + rule.bp)
        frames.append((ret, how))
        ip, sp = ret, cfa
        fp_frame = False
    return Unwound(frames, bp, fp_frame)


def join(unwound: Unwound, copy: StackCopy, kernel: list[int]) -> list[tuple[int, str]]:
    """The unwound frames, continued with the kernel's frame-pointer walk (``kernel[0]`` is the
    syscall's ip) where that walk provably goes on from them: the outermost unwound return
    address is one of its frames, or the outermost unwound frame keeps a frame pointer equal to
    the rbp the walk started from (its caller, out of the copy, is then the walk's first
    return address). A walk that joins nowhere started from a data register: dropped."""
    frames = list(unwound.frames)
    last = frames[-1][0]
    if len(frames) > 1 and last in kernel[1:]:
        tail = kernel[kernel.index(last, 1) + 1:]
    elif unwound.fp_frame and unwound.bp == copy.bp:
        tail = kernel[1:]
    else:
        tail = []
    return frames + [(a, "kernel") for a in tail]


# --- .eh_frame ------------------------------------------------------------------------------

DW_EH_PE_udata4, DW_EH_PE_datarel_sdata4 = 0x03, 0x3B
Table = tuple[int, int, list[int], list[Rule]]
"""One FDE decoded: [lo, hi) and the rule in force from each pc on."""


class CfiTable:
    """One ELF file's .eh_frame, looked up by address: FDE starts sorted once (from
    .eh_frame_hdr when it has the usual encoding, else by parsing every entry), each FDE parsed
    and decoded by pyelftools the first time an address falls in it (~160 us each; a trace of
    `ls -la /usr` needs ~120)."""

    def __init__(self, path: str) -> None:
        from elftools.dwarf.callframe import CallFrameInfo
        from elftools.dwarf.structs import DWARFStructs
        from elftools.elf.elffile import ELFFile

        with open(path, "rb") as f:
            elf = ELFFile(f)
            if elf.elfclass != 64 or not elf.little_endian:
                raise ValueError(f"{path}: not a 64-bit little-endian ELF file")
            found = _from_segments(f, elf) or _from_sections(elf)
        if found is None:
            raise ValueError(f"{path}: no .eh_frame")
        self.address, self.data, hdr_data, hdr_addr = found
        self._cfi = CallFrameInfo(io.BytesIO(self.data), len(self.data), self.address,
                                  DWARFStructs(little_endian=True, dwarf_format=32, address_size=8),
                                  for_eh_frame=True)
        self.starts, self.offsets = self._index_from_hdr(hdr_data, hdr_addr) or self._index_all()
        self._tables: dict[int, Table | None] = {}

    def _index_from_hdr(self, hdr: bytes, hdr_addr: int) -> tuple[list[int], list[int]] | None:
        """.eh_frame_hdr: version, three pointer encodings, eh_frame_ptr, fde_count, then
        (initial location, FDE address) pairs sorted by location — as datarel sdata4 in
        practice (GNU ld, gold, lld, mold). Parsing all of libc's ~3700 FDEs to sort them
        instead takes ~0.5 s."""
        import numpy as np

        if len(hdr) < 12 or hdr[0] != 1 or hdr[2] != DW_EH_PE_udata4 or hdr[3] != DW_EH_PE_datarel_sdata4:
            return None
        (count,) = struct.unpack_from("<I", hdr, 8)
        if 12 + 8 * count > len(hdr):
            return None
        pairs = np.frombuffer(hdr, dtype="<i4", count=2 * count, offset=12).reshape(count, 2).astype(np.int64)
        starts = (pairs[:, 0] + hdr_addr).tolist()
        offsets = (pairs[:, 1] + hdr_addr - self.address).tolist()
        return starts, offsets

    def _index_all(self) -> tuple[list[int], list[int]]:
        from elftools.dwarf.callframe import FDE

        entries = self._cfi.get_entries()
        fdes = sorted((e["initial_location"], e.offset) for e in entries if isinstance(e, FDE))
        return [s for s, _ in fdes], [o for _, o in fdes]

    def rule(self, vaddr: int) -> Rule | None:
        """The CFI row in force at ``vaddr`` (a link-time address): None when no FDE covers it,
        `UNSUPPORTED` when its CFA is not register + offset."""
        i = bisect.bisect_right(self.starts, vaddr) - 1
        if i < 0:
            return None
        if i not in self._tables:
            self._tables[i] = self.decode(self.offsets[i])
        table = self._tables[i]
        if table is None:
            return None
        lo, hi, pcs, rules = table
        if not lo <= vaddr < hi:
            return None
        return rules[bisect.bisect_right(pcs, vaddr) - 1]

    def decode(self, offset: int) -> Table | None:
        """The FDE at ``offset`` in .eh_frame as a table of rules (None: not an FDE, or one
        pyelftools cannot decode — one of libc's 3713 with pyelftools 0.33)."""
        from elftools.dwarf.callframe import FDE

        try:
            entry = self._cfi._parse_entry_at(offset)     # one entry, not the whole section
            if not isinstance(entry, FDE):
                return None
            rows = entry.get_decoded().table
        except Exception:   # pyelftools raises assorted errors on entries it cannot read
            return None
        lo = entry["initial_location"]
        return lo, lo + entry["address_range"], [r["pc"] for r in rows], [rule_of(r) for r in rows]


def rule_of(row: dict[Any, Any]) -> Rule:
    """A row of pyelftools' decoded CFI table in the unwinder's terms: only the CFA, the return
    address and rbp are followed."""
    cfa = row["cfa"]
    if cfa.expr is not None or cfa.reg not in (RSP, RBP):
        return UNSUPPORTED
    ra: int | None = -8
    if RA in row:
        if row[RA].type == "OFFSET":
            ra = row[RA].arg
        elif row[RA].type == "UNDEFINED":
            ra = None       # _start, a thread's first frame: nothing called it
        else:
            return UNSUPPORTED
    bp, lost = None, False
    if RBP in row:
        if row[RBP].type == "OFFSET":
            bp = row[RBP].arg
        elif row[RBP].type != "SAME_VALUE":
            lost = True
    return Rule(cfa.reg, cfa.offset, ra, bp, lost)


def _from_segments(f: Any, elf: Any) -> tuple[int, bytes, bytes, int] | None:
    """(.eh_frame address, its bytes up to the end of its segment, .eh_frame_hdr, its address)
    from the program headers: PT_GNU_EH_FRAME is .eh_frame_hdr, whose eh_frame_ptr locates
    .eh_frame. Reading libc's 70 section headers with pyelftools instead costs ~3 ms."""
    from elftools.common.utils import struct_parse

    loads, hdr = [], None
    # raw program headers: iter_segments() builds DynamicSegment & co, ~3 ms for libc
    for i in range(elf["e_phnum"]):
        seg = struct_parse(elf.structs.Elf_Phdr, f, elf["e_phoff"] + i * elf["e_phentsize"])
        if seg["p_type"] == "PT_LOAD":
            loads.append((seg["p_vaddr"], seg["p_offset"], seg["p_filesz"]))
        elif seg["p_type"] == "PT_GNU_EH_FRAME":
            hdr = (seg["p_vaddr"], seg["p_offset"], seg["p_filesz"])
    if hdr is None:
        return None
    hdr_addr, hdr_off, hdr_size = hdr
    f.seek(hdr_off)
    hdr_data = f.read(hdr_size)
    if len(hdr_data) < 8 or hdr_data[0] != 1 or hdr_data[1] & 0x0F not in (0x03, 0x0B):
        return None
    value = struct.unpack_from("<i" if hdr_data[1] & 0x0F == 0x0B else "<I", hdr_data, 4)[0]
    application = hdr_data[1] & 0x70
    eh_addr = {0x00: value, 0x10: hdr_addr + 4 + value, 0x30: hdr_addr + value}.get(application)
    for vaddr, offset, filesz in loads:
        if eh_addr is not None and vaddr <= eh_addr < vaddr + filesz:
            f.seek(offset + eh_addr - vaddr)
            return eh_addr, f.read(vaddr + filesz - eh_addr), hdr_data, hdr_addr
    return None


def _from_sections(elf: Any) -> tuple[int, bytes, bytes, int] | None:
    """The same from the section headers (a file without PT_GNU_EH_FRAME)."""
    eh = elf.get_section_by_name(".eh_frame")
    if eh is None:
        return None
    hdr = elf.get_section_by_name(".eh_frame_hdr")
    return eh["sh_addr"], eh.data(), (hdr.data() if hdr is not None else b""), (hdr["sh_addr"] if hdr else 0)


@functools.lru_cache(maxsize=64)
def cfi_table(path: str) -> CfiTable | None:
    """The CFI of ``path``, read once per process; None when it has none usable."""
    from elftools.common.exceptions import ELFError

    try:
        return CfiTable(path)
    except (OSError, ELFError, ValueError, KeyError, struct.error):
        return None
