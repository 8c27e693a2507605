"""CFI unwinding against real .eh_frame data (this machine's libc, a gcc-built program), no eBPF."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from tinyjail.tracer.symbolize import AddressSpaces, elf_info, image_mappings, symbolize_stack
from tinyjail.tracer.unwind import RBP, RSP, Rule, StackCopy, Unwound, cfi_table, join

DATA = Path(__file__).parent / "data"
LIBC = next((p for p in ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6")
             if Path(p).exists()), None)
LDSO = next((p for p in ("/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
             if Path(p).exists()), None)
needs_glibc = pytest.mark.skipif(LIBC is None or LDSO is None, reason="no glibc at the Debian paths")


@needs_glibc
@pytest.mark.parametrize("which", ["libc", "ld.so"])
def test_every_function_entry_has_the_abi_rule(which: str) -> None:
    """Every FDE of libc / ld.so is found through .eh_frame_hdr and decoded by pyelftools; at the
    first instruction of each exported function the x86_64 ABI holds: CFA = rsp + 8, return
    address at CFA - 8, rbp untouched. (FDEs of .cold parts and PLT stubs start elsewhere.)"""
    from elftools.elf.elffile import ELFFile

    path = LIBC if which == "libc" else LDSO
    assert path is not None
    table = cfi_table(path)
    assert table is not None and len(table.starts) > 20
    with open(path, "rb") as f:
        funcs = {sym["st_value"] for sym in ELFFile(f).get_section_by_name(".dynsym").iter_symbols()
                 if sym["st_info"]["type"] == "STT_FUNC" and sym["st_value"]}
    decoded = entries = 0
    for start in table.starts:
        rule = table.rule(start)
        if rule is None:          # one of libc's FDEs is beyond pyelftools 0.33
            continue
        decoded += 1
        if start in funcs:
            entries += 1
            assert rule == Rule(RSP, 8, -8, None, False), (hex(start), path)
    assert decoded >= len(table.starts) - 2
    assert entries > (500 if which == "libc" else 10)


def _syscall_sites(path: str, symbol: str) -> list[int]:
    """Addresses right after each `syscall` instruction of ``symbol`` (found via .dynsym)."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        sym = ELFFile(f).get_section_by_name(".dynsym").get_symbol_by_name(symbol)[0]
    start, size = sym["st_value"], sym["st_size"]
    info = elf_info(path)
    assert info is not None
    code = info.read(start, size)
    return [start + i + 2 for i in range(len(code) - 1) if code[i:i + 2] == b"\x0f\x05"]


@needs_glibc
def test_open64_keeps_its_return_address_above_sp() -> None:
    """open64 is not a leaf: at its syscall the CFA is sp + N (N > 8, so the return address is
    not the word at sp) and rbp is saved (the kernel's walk from rbp reads the path)."""
    assert LIBC is not None
    table = cfi_table(LIBC)
    assert table is not None
    sites = _syscall_sites(LIBC, "open64")
    assert sites
    for ip in sites:
        rule = table.rule(ip)
        assert rule is not None and rule.cfa_reg == RSP and rule.cfa_offset > 8, hex(ip)
        assert rule.ra == -8 and rule.bp is not None and rule.bp < 0
    getppid = _syscall_sites(LIBC, "getppid")
    assert [table.rule(ip) for ip in getppid] == [Rule(RSP, 8, -8)]    # a leaf: return address at sp


def test_frame_pointer_code_has_rbp_based_cfa(nested: Path) -> None:
    info = elf_info(str(nested))
    table = cfi_table(str(nested))
    assert info is not None and table is not None
    start = info.func_starts[info.func_names.index("middle_open")]
    assert table.rule(start) == Rule(RSP, 8, -8)                       # before push %rbp
    assert table.rule(start + 1) == Rule(RSP, 16, -8, -16)             # after push %rbp
    assert table.rule(start + 4) == Rule(RBP, 16, -8, -16)             # after mov %rsp,%rbp
    assert table.rule(0) is None                                       # no FDE covers it


def _call_after(info: Any, fn: str, target: str | None = None) -> int:
    """The return address of the (first) e8 call in ``fn`` (to ``target`` when given)."""
    i = info.func_names.index(fn)
    lo, hi = info.func_starts[i], info.func_ends[i]
    to = info.func_starts[info.func_names.index(target)] if target else None
    for a in range(lo, hi - 4):
        if info.read(a, 1) == b"\xe8":
            dest = a + 5 + struct.unpack("<i", info.read(a + 1, 4))[0]
            if to is None or dest == to:
                return a + 5
    raise AssertionError(f"no call in {fn}")


@needs_glibc
def test_open64_from_nested_calls_unwound_offline(nested: Path) -> None:
    """The stack open64 -> leaf_open -> middle_open -> main laid out as at the syscall, with the
    real CFI of both files: the kernel's walk (from rbp = the path pointer) found nothing."""
    assert LIBC is not None
    exe, libc = elf_info(str(nested)), elf_info(LIBC)
    table = cfi_table(LIBC)
    assert exe is not None and libc is not None and table is not None
    exe_base, libc_base, sp = 0x5600_0000_0000, 0x7F00_0000_0000, 0x7FFD_0000_1000
    spaces = AddressSpaces()
    spaces.maps[1] = image_mappings(str(nested), exe_base) + image_mappings(LIBC, libc_base)
    ip = _syscall_sites(LIBC, "open64")[0]
    rule = table.rule(ip)
    assert rule is not None and rule.bp is not None
    words: dict[int, int] = {}
    cfa = sp + rule.cfa_offset
    bp_leaf = cfa + 0x10                      # leaf_open: push rbp; mov rsp,rbp; sub $0x10,rsp; call
    bp_middle, bp_main = bp_leaf + 0x20, bp_leaf + 0x60
    words[cfa - 8] = exe_base + _call_after(exe, "leaf_open")
    words[cfa + rule.bp] = bp_leaf
    words[bp_leaf], words[bp_leaf + 8] = bp_middle, exe_base + _call_after(exe, "middle_open", "leaf_open")
    words[bp_middle], words[bp_middle + 8] = bp_main, exe_base + _call_after(exe, "main", "middle_open")
    data = bytearray(512)
    for addr, value in words.items():
        struct.pack_into("<Q", data, addr - sp, value)
    path_pointer = 0x5600_0000_3000
    frames = symbolize_stack(spaces, 1, [libc_base + ip], copy=StackCopy(sp, path_pointer, bytes(data)))
    assert [f.symbol for f in frames] == ["open64", "leaf_open", "middle_open", "main"]
    assert [f.via for f in frames] == ["ip", "cfi", "cfi", "cfi"]
    src = (DATA / "nested.c").read_text().splitlines()
    markers = ("OPEN_CALL", "MIDDLE_OPEN", "MAIN_OPEN")
    lines = [next(i + 1 for i, t in enumerate(src) if m in t) for m in markers]
    assert [(f.file, f.line) for f in frames[1:]] == [("nested.c", n) for n in lines]

    # the copy ends before open64's return address: nothing is made up past the wrapper
    short = symbolize_stack(spaces, 1, [libc_base + ip], copy=StackCopy(sp, path_pointer, bytes(data[:64])))
    assert len(short) == 1 and short[0].via == "ip"


def test_kernel_walk_kept_only_where_it_joins() -> None:
    copy = StackCopy(0x1000, 0x5000, bytes(64))
    ip, a, b, c, d = 0x401000, 0x402000, 0x403000, 0x404000, 0x405000
    # the outermost unwound return address is in the kernel's walk: the rest of that walk follows
    unwound = Unwound([(ip, "ip"), (a, "cfi"), (b, "cfi")], None, False)
    assert join(unwound, copy, [ip, 0x999, b, c, d]) == [(ip, "ip"), (a, "cfi"), (b, "cfi"), (c, "kernel"),
                                                         (d, "kernel")]
    # the outermost unwound frame has a frame pointer equal to the rbp the walk started from
    unwound = Unwound([(ip, "ip"), (a, "cfi")], 0x5000, True)
    assert join(unwound, copy, [ip, c, d]) == [(ip, "ip"), (a, "cfi"), (c, "kernel"), (d, "kernel")]
    # a walk that joins nowhere started from a data register: dropped
    alone = [(ip, "ip"), (a, "cfi")]
    assert join(Unwound(alone, 0x6000, True), copy, [ip, c, d]) == alone
    assert join(Unwound(alone, 0x5000, False), copy, [ip, c, d]) == alone
