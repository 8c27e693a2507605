"""Symbolic argument values: parse/render round trips, and the numbers agree with the system's."""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import socket
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyjail import symbols

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("syscall", "index", "text", "expected"),
    [
        ("socket", 0, "AF_UNIX", socket.AF_UNIX),
        ("socket", 1, "SOCK_STREAM|SOCK_CLOEXEC", socket.SOCK_STREAM | socket.SOCK_CLOEXEC),
        ("socket", 1, " SOCK_DGRAM | SOCK_NONBLOCK ", socket.SOCK_DGRAM | socket.SOCK_NONBLOCK),
        ("openat", 2, "O_ACCMODE", os.O_ACCMODE),
        ("openat", 2, "O_RDONLY", os.O_RDONLY),
        ("openat", 2, "O_WRONLY|O_CREAT|O_TRUNC", os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        ("mmap", 2, "PROT_WRITE|PROT_EXEC", mmap.PROT_WRITE | mmap.PROT_EXEC),
        ("mprotect", 2, "PROT_READ", mmap.PROT_READ),
        ("mmap", 3, "MAP_PRIVATE|MAP_ANONYMOUS", mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS),
        ("ioctl", 1, "TCGETS", termios.TCGETS),
        ("ioctl", 1, "TIOCGWINSZ", termios.TIOCGWINSZ),
        ("ioctl", 1, "FIONREAD", termios.FIONREAD),
        ("ioctl", 1, "0x10", 16),
        ("prctl", 0, "42", 42),
        ("SYS_socket", 0, "AF_INET", socket.AF_INET),
    ],
)
def test_parse_matches_python(syscall: str, index: int, text: str, expected: int) -> None:
    assert symbols.parse(syscall, index, text) == expected


def _libc_prctl_get_name_value() -> int:
    """PR_GET_NAME probed for real: prctl(PR_GET_NAME) fills a buffer with our comm."""
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(32)
    option = symbols.parse("prctl", 0, "PR_GET_NAME")
    assert libc.prctl(option, buf, 0, 0, 0) == 0
    return len(buf.value)


def test_header_constants_behave_like_the_kernel() -> None:
    """CLONE_*/PR_* come from headers; the kernel must agree with what they mean."""
    # PR_GET_NAME returns the process name.
    assert _libc_prctl_get_name_value() > 0
    # PR_SET_NAME then PR_GET_NAME round-trips, in a child so our own name is untouched.
    code = (
        "import ctypes, sys\n"
        "from tinyjail import symbols\n"
        "libc = ctypes.CDLL(None)\n"
        "libc.prctl(symbols.parse('prctl', 0, 'PR_SET_NAME'), b'tj-probe', 0, 0, 0)\n"
        "print(open('/proc/self/comm').read().strip())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "tj-probe"
    # personality(0xffffffff) queries; ADDR_NO_RANDOMIZE set in a child shows in /proc/self/personality.
    code = (
        "import ctypes\n"
        "from tinyjail import symbols\n"
        "libc = ctypes.CDLL(None)\n"
        "libc.personality(symbols.parse('personality', 0, 'PER_LINUX|ADDR_NO_RANDOMIZE'))\n"
        "print(open('/proc/self/personality').read().strip())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out, 16) == symbols.parse("personality", 0, "ADDR_NO_RANDOMIZE")


def test_clone_namespace_flags_match_proc() -> None:
    """unshare(CLONE_NEWUTS) as root gives a new uts namespace inode."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    code = (
        "import ctypes, os\n"
        "from tinyjail import symbols\n"
        "before = os.readlink('/proc/self/ns/uts')\n"
        "assert ctypes.CDLL(None).unshare(symbols.parse('unshare', 0, 'CLONE_NEWUTS')) == 0\n"
        "print(before != os.readlink('/proc/self/ns/uts'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_python_and_header_values_agree() -> None:
    """Where both Python and the generated header table know a name, the numbers are equal."""
    data = json.loads((REPO / "tinyjail" / "data" / "kernel_constants.json").read_text())["groups"]
    checked = 0
    for group, module in (("prot", mmap), ("map", mmap), ("madvise", mmap), ("ioctl", termios)):
        for name, value in data[group].items():
            if hasattr(module, name):
                assert getattr(module, name) == value, name
                checked += 1
    assert checked > 30


def test_generator_reproduces_committed_data(tmp_path: Path) -> None:
    out = tmp_path / "k.json"
    subprocess.run([sys.executable, str(REPO / "tools" / "gen_kernel_constants.py"), "-o", str(out)],
                   check=True, capture_output=True)
    fresh = json.loads(out.read_text())["groups"]
    committed = json.loads((REPO / "tinyjail" / "data" / "kernel_constants.json").read_text())["groups"]
    for group, values in committed.items():
        for name, value in values.items():
            assert fresh[group].get(name, value) == value, (group, name)


@pytest.mark.parametrize(
    ("syscall", "index", "value", "op", "expected"),
    [
        ("socket", 0, socket.AF_INET6, "SCMP_CMP_EQ", "AF_INET6"),
        ("socket", 1, socket.SOCK_STREAM | socket.SOCK_CLOEXEC, "SCMP_CMP_EQ", "SOCK_STREAM|SOCK_CLOEXEC"),
        ("openat", 2, os.O_ACCMODE, "SCMP_CMP_MASKED_EQ", "O_ACCMODE"),
        ("openat", 2, 0, "SCMP_CMP_MASKED_EQ", "O_RDONLY"),
        ("openat", 2, os.O_ACCMODE | os.O_CREAT | os.O_TRUNC, "SCMP_CMP_MASKED_EQ",
         "O_ACCMODE|O_CREAT|O_TRUNC"),
        ("mmap", 3, mmap.MAP_SHARED | mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, "SCMP_CMP_MASKED_EQ",
         "MAP_SHARED_VALIDATE|MAP_ANONYMOUS"),
        ("openat", 2, os.O_CLOEXEC | os.O_DIRECTORY, "SCMP_CMP_EQ", "O_RDONLY|O_DIRECTORY|O_CLOEXEC"),
        ("openat", 2, os.O_NONBLOCK, "SCMP_CMP_EQ", "O_RDONLY|O_NONBLOCK"),
        ("mmap", 2, mmap.PROT_WRITE | mmap.PROT_EXEC, "SCMP_CMP_MASKED_EQ", "PROT_WRITE|PROT_EXEC"),
        ("mmap", 3, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, "SCMP_CMP_EQ", "MAP_PRIVATE|MAP_ANONYMOUS"),
        ("ioctl", 1, termios.TCGETS, "SCMP_CMP_EQ", "TCGETS"),
        ("prctl", 0, 9999, "SCMP_CMP_EQ", None),
        ("write", 0, 1, "SCMP_CMP_EQ", None),
        ("socket", 1, socket.SOCK_STREAM | 0x4000000, "SCMP_CMP_EQ", "SOCK_STREAM|0x4000000"),
    ],
)
def test_render(syscall: str, index: int, value: int, op: str, expected: str | None) -> None:
    assert symbols.render(syscall, index, value, op) == expected


def test_render_clone_puts_exit_signal_last() -> None:
    value = symbols.parse("clone", 0, "CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD")
    expected = "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD"
    assert symbols.render("clone", 0, value, "SCMP_CMP_EQ") == expected


@pytest.mark.parametrize(
    ("syscall", "index", "text", "message"),
    [
        ("socket", 0, "AF_INTE", 'did you mean "AF_INET"'),
        ("socket", 1, "O_RDONLY", "belongs to another argument"),
        ("openat", 2, "O_RDONLY||O_CLOEXEC", "empty term"),
        ("prctl", 0, "PR_SET_NAMEE", 'did you mean "PR_SET_NAME"'),
        ("bind", 0, "FOOBAR", "no constants table for bind arg 0"),
        ("socket", 0, "", "empty"),
    ],
)
def test_parse_errors(syscall: str, index: int, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        symbols.parse(syscall, index, text)


FLAG_ARGS = [("socket", 1), ("clone", 0), ("openat", 2), ("mmap", 2), ("mmap", 3), ("unshare", 0),
             ("personality", 0)]


@given(st.sampled_from(FLAG_ARGS), st.data())
def test_render_then_parse_round_trips(where: tuple[str, int], data: st.DataObject) -> None:
    """Any combination of a table's names renders to text that parses back to the same number."""
    syscall, index = where
    table = symbols.symbol_set(syscall, index)
    assert table is not None
    shown = set(table.by_value.values())   # masks (CSIGNAL, O_ACCMODE) and aliases are never shown
    flags = sorted(n for n, v in table.values.items() if not v & table.base_mask)
    bases = sorted(n for n, v in table.values.items() if v and v & table.base_mask == v and n in shown)
    names = data.draw(st.lists(st.sampled_from(flags), max_size=4))
    if bases:
        names += data.draw(st.lists(st.sampled_from(bases), max_size=1))
    value = 0
    for n in names:
        value |= table.values[n]
    text = symbols.render(syscall, index, value, "SCMP_CMP_EQ")
    if text is None:
        assert value == 0
        return
    assert symbols.parse(syscall, index, text) == value
