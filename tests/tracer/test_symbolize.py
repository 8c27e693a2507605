"""Symbolization pieces against real ELF files (the test workload, this machine's libc)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from tinyjail.tracer.recorder import decode_sockaddr
from tinyjail.tracer.symbolize import (
    AT_BASE,
    AT_PHDR,
    AddressSpaces,
    ElfInfo,
    Mapping,
    Segment,
    elf_info,
    parse_initial_stack,
    parse_maps,
    symbolize_frame,
    symbolize_stack,
)

DATA = Path(__file__).parent / "data"


@pytest.fixture
def binary(workload: Path) -> Path:
    """The test workload binary (tests/tracer/conftest.py)."""
    return workload


def test_initial_stack_yields_auxv() -> None:
    # argc=2, argv[2], NULL, envp[1], NULL, AT_PHDR, AT_BASE, AT_NULL
    words = [2, 0x1000, 0x1008, 0, 0x2000, 0, AT_PHDR, 0x5555_0040, AT_BASE, 0x7F00_0000, 0, 0]
    aux = parse_initial_stack(words)
    assert aux == {AT_PHDR: 0x5555_0040, AT_BASE: 0x7F00_0000}
    assert parse_initial_stack([5, 1]) == {}   # truncated copy: nothing invented


def test_parse_maps_keeps_file_backed_and_named() -> None:
    text = ("55d0c0000000-55d0c0001000 r--p 00000000 08:01 123 /usr/bin/x\n"
            "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]\n"
            "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n")
    maps = parse_maps(text)
    assert maps == [Mapping(0x55D0C0000000, 0x55D0C0001000, 0, "/usr/bin/x"),
                    Mapping(0x7FFD00000000, 0x7FFD00021000, 0, "[stack]")]


def test_main_and_source_line_from_auxv_placement(binary: Path) -> None:
    """Place the PIE binary where AT_PHDR says and resolve an address inside main."""
    info = elf_info(str(binary))
    assert info is not None and info.is_dyn and info.phdr_vaddr is not None
    base = 0x5600_0000_0000
    spaces = AddressSpaces()
    spaces.exec(1, str(binary))
    spaces.start(1, [1, 0x10, 0, 0, AT_PHDR, base + info.phdr_vaddr, 0, 0])
    main_start = info.func_starts[info.func_names.index("main")]
    frame = symbolize_frame(spaces, 1, base + main_start + 8)
    assert frame.module == str(binary)
    assert frame.symbol == "main" and frame.offset == 8
    assert frame.file == "workload.c"
    src = (DATA / "workload.c").read_text().splitlines()
    first = next(i + 1 for i, t in enumerate(src) if t.startswith("int main"))
    last = next(i + 1 for i, t in enumerate(src) if "return 3;" in t)
    assert first <= frame.line <= last


def test_library_from_openat_and_mmap_events() -> None:
    libc = next((p for p in ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6")
                 if Path(p).exists()), None)
    if libc is None:
        pytest.skip("no glibc at the Debian path")
    info = elf_info(libc)
    assert info is not None
    getppid = info.func_starts[info.func_names.index("getppid")]
    spaces = AddressSpaces()
    spaces.opened(7, 3, libc)
    base = 0x7F12_3400_0000
    spaces.mmapped(7, base, 0x200000, 3, 0)           # ld.so's first whole-file mapping
    spaces.closed(7, 3)
    frame = symbolize_frame(spaces, 7, base + getppid + 4)
    assert (frame.module, frame.symbol, frame.offset) == (libc, "getppid", 4)
    spaces.fork(7, 8)                                  # a forked child shares the map
    assert symbolize_frame(spaces, 8, base + getppid).symbol == "getppid"
    assert symbolize_frame(spaces, 9, base + getppid).module == "[unknown]"


def test_caller_from_stack_pointer_only_when_it_follows_a_call(binary: Path) -> None:
    info = elf_info(str(binary))
    assert info is not None
    base = 0x5600_0000_0000
    spaces = AddressSpaces()
    spaces.exec(1, str(binary))
    spaces.start(1, [1, 0x10, 0, 0, AT_PHDR, base + info.phdr_vaddr, 0, 0])
    main_start = info.func_starts[info.func_names.index("main")]
    main_end = info.func_ends[info.func_names.index("main")]
    # find a return address in main: the byte after an e8 call
    after_call = next(v + 5 for v in range(main_start, main_end - 5) if info.read(v, 1) == b"\xe8")
    frames = symbolize_stack(spaces, 1, [base + main_start], sp_word=base + after_call)
    assert [f.symbol for f in frames] == ["main", "main"]
    not_after_call = main_start   # the function's first byte does not follow a call
    assert len(symbolize_stack(spaces, 1, [base + main_start], sp_word=base + not_after_call)) == 1


@pytest.mark.parametrize(("code", "is_call"), [
    ("e8 10 20 00 00", True),                   # call rel32
    ("ff d0", True), ("41 ff d0", True),        # call *%rax, call *%r8
    ("3e ff d2", True),                         # notrack call *%rdx
    ("ff 10", True), ("ff 14 24", True),        # call *(%rax), call *(%rsp)
    ("ff 50 08", True),                         # call *0x8(%rax)
    ("ff 54 24 08", True), ("41 ff 54 24 08", True),   # call *0x8(%rsp), call *0x8(%r12)
    ("ff 90 28 01 00 00", True),                # call *0x128(%rax)
    ("ff 15 f0 0f 00 00", True),                # call *0xff0(%rip)
    ("ff 14 c5 00 10 00 00", True),             # call *0x1000(,%rax,8)
    ("ff 94 24 00 01 00 00", True),             # call *0x100(%rsp)
    ("ff e0", False), ("ff 25 f0 0f 00 00", False),    # jmp *%rax, jmp *0xff0(%rip)
    ("48 89 c7", False), ("90 90", False),
])
def test_return_address_follows_any_call_form(code: str, is_call: bool) -> None:
    """A return address is where a call instruction ends, whatever its encoding (the unwinder
    vets every address it reads from the stack copy this way)."""
    page = bytearray(b"\x90" * 4096)           # nops
    insn = bytes.fromhex(code)
    page[0x800 - len(insn):0x800] = insn
    info = ElfInfo("/nonexistent", True, [Segment(0x1000, 0x1000, 0, 0x1000)], None, None, 0,
                   text={0: bytes(page)})     # the page as if read from the file
    assert info.looks_like_return_address(0x1800) is is_call


def test_exec_of_proc_self_exe_is_the_execing_image(binary: Path) -> None:
    info = elf_info(str(binary))
    assert info is not None and info.phdr_vaddr is not None
    spaces = AddressSpaces()
    spaces.exec(1, str(binary))
    spaces.fork(1, 2)
    spaces.exec(2, "/proc/self/exe")
    assert spaces.exe[2] == str(binary)
    base = 0x5600_0000_0000
    spaces.start(2, [1, 0x10, 0, 0, AT_PHDR, base + info.phdr_vaddr, 0, 0])
    main_start = info.func_starts[info.func_names.index("main")]
    assert symbolize_frame(spaces, 2, base + main_start).symbol == "main"
    spaces.fork(1, 3)
    spaces.exec(3, "/bin/true")
    spaces.exec(3, "/proc/self/exe")            # self is the exec'ing image, now /bin/true
    assert spaces.exe[3] == "/bin/true"
    spaces.fork(1, 4)
    spaces.exec(4, "/proc/3/exe")               # another process's image
    assert spaces.exe[4] == "/bin/true"
    spaces.opened(4, 5, "/usr/bin/env")
    spaces.exec(4, "/dev/fd/5")                 # fexecve
    assert spaces.exe[4] == "/usr/bin/env"
    spaces.exec(4, "/proc/99/exe")              # unknown: kept, never read as our own /proc
    assert spaces.exe[4] == "/proc/99/exe"
    spaces.exec(4, "/proc/self/exec")           # not a link pattern
    assert spaces.exe[4] == "/proc/self/exec"


@pytest.fixture(scope="module")
def reexec(debug_binary: Callable[[str], Path]) -> Path:
    """tests/tracer/data/reexec.c built with -g and frame pointers."""
    return debug_binary("reexec")


@pytest.mark.bpf
def test_child_reexecing_proc_self_exe_has_its_frames(reexec: Path) -> None:
    """A real fork + execv("/proc/self/exe"): the child's call site names its function and line."""
    from tinyjail.tracer import record
    from tinyjail.tracer.explain import explain

    trace = record([str(reexec)])
    procs = trace.processes
    execs = procs[procs["kind"] == "exec"]
    assert "/proc/self/exe" in set(execs["filename"].astype(str))   # what the kernel saw
    expl = explain("getsid", [trace])
    assert expl.count == 3
    assert len(expl.call_sites) == 1
    frames = expl.call_sites[0].frames
    src = (DATA / "reexec.c").read_text().splitlines()
    line = next(i + 1 for i, t in enumerate(src) if "CHILD_CALL" in t)
    work = [f for f in frames if "!child_work+" in f]
    assert work, frames
    assert work[0].startswith("reexec!child_work+") and work[0].endswith(f"reexec.c:{line}")
    assert any(f.startswith("reexec!main+") for f in frames)


def test_garbage_frames_are_cut() -> None:
    spaces = AddressSpaces()
    frames = symbolize_stack(spaces, 1, [0x401000, 0x8007_5116_5376_3915, 0x1234])
    assert len(frames) == 1


def test_decode_sockaddr() -> None:
    inet = struct.pack("<H", 2) + struct.pack(">H", 8080) + bytes([127, 0, 0, 1]) + bytes(8)
    assert decode_sockaddr(inet, 16) == "127.0.0.1:8080"
    unix = struct.pack("<H", 1) + b"/run/x.sock\0"
    assert decode_sockaddr(unix, len(unix)) == "unix:/run/x.sock"
    abstract = struct.pack("<H", 1) + b"\0name"
    assert decode_sockaddr(abstract, len(abstract)) == "unix:@name"
    six = struct.pack("<H", 10) + struct.pack(">H", 443) + bytes(4) + bytes(15) + b"\x01" + bytes(4)
    assert decode_sockaddr(six, 28) == "[::1]:443"
