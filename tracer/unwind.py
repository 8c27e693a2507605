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

DW_EH_PE_udata4, DW_EH_PE_datarel_sdata4, DW_EH_PE_pcrel_sdata4 = 0x03, 0x3B, 0x1B
Table = tuple[int, int, list[int], list[Rule]]
"""One FDE decoded: [lo, hi) and the rule in force from each pc on."""


@dataclass(frozen=True)
class _Cie:
    code_align: int
    data_align: int
    ra_reg: int
    fde_encoding: int
    has_aug_data: bool
    ops: list[tuple[int, list[Any]]]


class CfiTable:
    """One ELF file's .eh_frame, looked up by address: FDE starts sorted once (from
    .eh_frame_hdr when it has the usual encoding, else by parsing every entry), each FDE
    decoded the first time an address falls in it.

    pyelftools parses the CIEs (a handful per file) and any FDE in an unusual form; the FDEs
    themselves are read here. Why: pyelftools takes ~160 us to parse and decode one FDE, and
    a trace of `ls -la /usr` needs ~120 of them — 20-30 ms of a 50 ms budget; read directly they
    cost ~35 us. tests/tracer/test_unwind.py checks that both agree on every FDE of libc."""

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
        self._cies: dict[int, _Cie | None] = {}

    def _index_from_hdr(self, hdr: bytes, hdr_addr: int) -> tuple[list[int], list[int]] | None:
        """.eh_frame_hdr: version, three pointer encodings, eh_frame_ptr, fde_count, then
        (initial location, FDE address) pairs sorted by location — as datarel sdata4 in
        practice (GNU ld, gold, lld, mold)."""
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
        """The FDE at ``offset`` in .eh_frame as a table of rules."""
        from elftools.common.exceptions import DWARFError

        try:
            found = self._read_fde(offset) or self._parse_fde(offset)
        except (DWARFError, ValueError, KeyError, AssertionError, IndexError, struct.error):
            return None
        if found is None:
            return None
        lo, hi, cie, ops = found
        rows = _run(cie, ops, lo)
        if rows is None:
            return None
        return lo, hi, list(rows), list(rows.values())

    def _read_fde(self, offset: int) -> tuple[int, int, _Cie, list[tuple[int, list[Any]]]] | None:
        """An FDE in the form compilers emit (32-bit length, pc-relative sdata4 addresses)."""
        length, cie_ptr = struct.unpack_from("<II", self.data, offset)
        if length in (0, 0xFFFFFFFF) or cie_ptr == 0:
            return None
        cie = self._cie(offset + 4 - cie_ptr)
        if cie is None or cie.fde_encoding != DW_EH_PE_pcrel_sdata4:
            return None
        rel, size = struct.unpack_from("<iI", self.data, offset + 8)
        lo = self.address + offset + 8 + rel
        pos = offset + 16
        if cie.has_aug_data:
            n, pos = _uleb(self.data, pos)
            pos += n
        ops = _ops(self.data, pos, offset + 4 + length)
        return None if ops is None else (lo, lo + size, cie, ops)

    def _parse_fde(self, offset: int) -> tuple[int, int, _Cie, list[tuple[int, list[Any]]]] | None:
        """Any other FDE, parsed by pyelftools (one entry at its offset, not the whole section)."""
        from elftools.dwarf.callframe import FDE

        entry = self._cfi._parse_entry_at(offset)
        if not isinstance(entry, FDE) or entry.cie is None:
            return None
        cie = self._cie(entry.cie.offset)
        if cie is None:
            return None
        lo = entry["initial_location"]
        ops = [(int(x.opcode), list(x.args)) for x in entry.instructions]
        return lo, lo + entry["address_range"], cie, ops

    def _cie(self, offset: int) -> _Cie | None:
        from elftools.dwarf.callframe import CIE

        if offset not in self._cies:
            entry = self._cfi._parse_entry_at(offset)
            self._cies[offset] = None if not isinstance(entry, CIE) else _Cie(
                entry["code_alignment_factor"], entry["data_alignment_factor"],
                entry["return_address_register"], int(entry.augmentation_dict.get("FDE_encoding", 0)),
                entry["augmentation"].startswith(b"z"),
                [(int(x.opcode), list(x.args)) for x in entry.instructions])
        return self._cies[offset]


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def _sleb(data: bytes, pos: int) -> tuple[int, int]:
    value, end = _uleb(data, pos)
    bits = 7 * (end - pos)
    return (value - (1 << bits) if value >> (bits - 1) & 1 else value), end


# DW_CFA_* opcodes, with how their operands are encoded after the opcode byte
ADVANCE_LOC, OFFSET, RESTORE = 0x40, 0x80, 0xC0
NOP, SET_LOC, ADVANCE_LOC1, ADVANCE_LOC2, ADVANCE_LOC4 = 0x00, 0x01, 0x02, 0x03, 0x04
OFFSET_EXTENDED, RESTORE_EXTENDED, UNDEFINED, SAME_VALUE, REGISTER = 0x05, 0x06, 0x07, 0x08, 0x09
REMEMBER_STATE, RESTORE_STATE, DEF_CFA, DEF_CFA_REGISTER, DEF_CFA_OFFSET = 0x0A, 0x0B, 0x0C, 0x0D, 0x0E
DEF_CFA_EXPRESSION, EXPRESSION, OFFSET_EXTENDED_SF, DEF_CFA_SF = 0x0F, 0x10, 0x11, 0x12
DEF_CFA_OFFSET_SF, VAL_OFFSET, VAL_OFFSET_SF, VAL_EXPRESSION, GNU_ARGS_SIZE = 0x13, 0x14, 0x15, 0x16, 0x2E
_OPERANDS = {
    NOP: "", REMEMBER_STATE: "", RESTORE_STATE: "",
    ADVANCE_LOC1: "1", ADVANCE_LOC2: "2", ADVANCE_LOC4: "4",
    RESTORE_EXTENDED: "u", UNDEFINED: "u", SAME_VALUE: "u", DEF_CFA_REGISTER: "u", DEF_CFA_OFFSET: "u",
    GNU_ARGS_SIZE: "u", DEF_CFA_OFFSET_SF: "s",
    OFFSET_EXTENDED: "uu", REGISTER: "uu", DEF_CFA: "uu", VAL_OFFSET: "uu",
    OFFSET_EXTENDED_SF: "us", DEF_CFA_SF: "us", VAL_OFFSET_SF: "us",
    DEF_CFA_EXPRESSION: "b", EXPRESSION: "ub", VAL_EXPRESSION: "ub",
}


def _ops(data: bytes, pos: int, end: int) -> list[tuple[int, list[Any]]] | None:
    """CFA instructions as (opcode, operands), operands as pyelftools gives them; None at an
    opcode not listed (pyelftools then parses the entry)."""
    out: list[tuple[int, list[Any]]] = []
    while pos < end:
        op = data[pos]
        pos += 1
        high = op & 0xC0
        if high in (ADVANCE_LOC, RESTORE):
            out.append((high, [op & 0x3F]))
            continue
        if high == OFFSET:
            off, pos = _uleb(data, pos)
            out.append((OFFSET, [op & 0x3F, off]))
            continue
        kinds = _OPERANDS.get(op)
        if kinds is None:
            return None
        args: list[Any] = []
        for kind in kinds:
            value: Any
            if kind == "u":
                value, pos = _uleb(data, pos)
            elif kind == "s":
                value, pos = _sleb(data, pos)
            elif kind == "b":
                n, pos = _uleb(data, pos)
                value, pos = data[pos:pos + n], pos + n
            else:
                n = int(kind)
                value, pos = int.from_bytes(data[pos:pos + n], "little"), pos + n
            args.append(value)
        out.append((op, args))
    return out


def _run(cie: _Cie, ops: list[tuple[int, list[Any]]], lo: int) -> dict[int, Rule] | None:
    """Execute the CIE's then the FDE's instructions (DWARF 5, 6.4.2): pc -> the rule from that
    pc on. Only the CFA, the return address and rbp are followed; None: an instruction that
    moves the location in a way not followed here (DW_CFA_set_loc)."""
    cfa: tuple[int, int] | None = (RSP, 8)
    regs: dict[int, tuple[str, int]] = {}
    initial: dict[int, tuple[str, int]] = {}
    stack: list[tuple[tuple[int, int] | None, dict[int, tuple[str, int]]]] = []
    rows: dict[int, Rule] = {}
    pc = lo
    da = cie.data_align
    for phase in (cie.ops, ops):
        for op, a in phase:
            if op in (ADVANCE_LOC, ADVANCE_LOC1, ADVANCE_LOC2, ADVANCE_LOC4):
                rows[pc] = _as_rule(cfa, regs, cie.ra_reg)
                pc += a[0] * cie.code_align
            elif op == SET_LOC:
                return None
            elif op == DEF_CFA:
                cfa = (a[0], a[1])
            elif op == DEF_CFA_SF:
                cfa = (a[0], a[1] * da)
            elif op == DEF_CFA_REGISTER:
                cfa = (a[0], cfa[1]) if cfa else None
            elif op == DEF_CFA_OFFSET:
                cfa = (cfa[0], a[0]) if cfa else None
            elif op == DEF_CFA_OFFSET_SF:
                cfa = (cfa[0], a[0] * da) if cfa else None
            elif op == DEF_CFA_EXPRESSION:
                cfa = None
            elif op in (OFFSET, OFFSET_EXTENDED, OFFSET_EXTENDED_SF):
                regs[a[0]] = ("offset", a[1] * da)
            elif op in (RESTORE, RESTORE_EXTENDED):
                if a[0] in initial:
                    regs[a[0]] = initial[a[0]]
                else:
                    regs.pop(a[0], None)
            elif op == UNDEFINED:
                regs[a[0]] = ("undefined", 0)
            elif op == SAME_VALUE:
                regs[a[0]] = ("same", 0)
            elif op in (REGISTER, EXPRESSION, VAL_EXPRESSION, VAL_OFFSET, VAL_OFFSET_SF):
                regs[a[0]] = ("other", 0)
            elif op == REMEMBER_STATE:
                stack.append((cfa, dict(regs)))
            elif op == RESTORE_STATE and stack:
                cfa, regs = stack.pop()
        if phase is cie.ops:
            initial = dict(regs)
    rows[pc] = _as_rule(cfa, regs, cie.ra_reg)
    return rows


def _as_rule(cfa: tuple[int, int] | None, regs: dict[int, tuple[str, int]], ra_reg: int) -> Rule:
    if cfa is None or cfa[0] not in (RSP, RBP):
        return UNSUPPORTED
    kind, off = regs.get(ra_reg, ("offset", -8))
    if kind == "undefined":
        ra = None       # _start, a thread's first frame: nothing called it
    elif kind == "offset":
        ra = off
    else:
        return UNSUPPORTED
    kind, off = regs.get(RBP, ("same", 0))
    return Rule(cfa[0], cfa[1], ra, off if kind == "offset" else None, kind not in ("offset", "same"))


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
