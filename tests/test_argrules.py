"""Argument rules, checked by real processes under real filters (tinyjail.enforce.build_filter).

Each test writes an allowlist policy: every x86_64 syscall allowed except the ones under test,
which are allowed only through the argrules helper; the default refuses with EPERM. A Python
child loads the filter, tries calls, and reports each outcome ("ok" or the errno name).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tinyjail import argrules, policy, symbols, syscalls
from tinyjail.policy import Policy, SyscallRule

DRIVER = r'''
import ctypes, errno, json, os, sys
from tinyjail import policy, symbols, syscalls
from tinyjail.enforce import build_filter

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
results = {}

def sysc(name, *args):
    """Raw syscall by name; raises OSError like Python's own wrappers."""
    r = libc.syscall(ctypes.c_long(syscalls.number(name)), *[ctypes.c_ulong(a) for a in args])
    if r == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r

def sym(name, index, text):
    return symbols.parse(name, index, text)

def attempt(label, fn):
    try:
        fn()
        results[label] = "ok"
    except OSError as e:
        results[label] = errno.errorcode.get(e.errno, str(e.errno))

filt = build_filter(policy.load(sys.argv[1]))
filt.load()
exec(compile(sys.argv[2], "<snippet>", "exec"))
print(json.dumps(results))
'''


def _run(tmp_path: Path, rules: list[SyscallRule], restricted: set[str], snippet: str) -> dict[str, str]:
    others = sorted(n for n in syscalls.table("x86_64") if n not in restricted)
    pol = Policy(default_action="SCMP_ACT_ERRNO", default_errno_ret=1, architectures=["SCMP_ARCH_X86_64"],
                 syscalls=[SyscallRule(names=others, action="SCMP_ACT_ALLOW"), *rules])
    path = tmp_path / "policy.json"
    policy.save(pol, path, force=True)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.run([sys.executable, str(driver), str(path), textwrap.dedent(snippet)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_socket_families_and_types(tmp_path: Path) -> None:
    rules = argrules.socket_families(["AF_UNIX", "AF_INET"], types=["SOCK_STREAM"])
    saved = policy.to_dict(Policy(syscalls=rules))["syscalls"][0]["args"][0]
    assert saved["value"] == "AF_UNIX"          # symbolic spelling survives saving
    got = _run(tmp_path, rules, {"socket"}, """
        import socket
        attempt("inet stream", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())
        attempt("inet stream nonblock", lambda: socket.socket(socket.AF_INET,
                socket.SOCK_STREAM | socket.SOCK_NONBLOCK).close())
        attempt("unix stream", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close())
        attempt("inet6 stream", lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close())
        attempt("inet dgram", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close())
        attempt("netlink", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close())
    """)
    assert got == {"inet stream": "ok", "inet stream nonblock": "ok", "unix stream": "ok",
                   "inet6 stream": "EPERM", "inet dgram": "EPERM", "netlink": "EPERM"}


def test_clone_without_namespaces_keeps_threads_and_fork(tmp_path: Path) -> None:
    rules = argrules.clone_without_namespaces()
    assert rules[0].args[0].symbolic is not None and "CLONE_NEWUSER" in rules[0].args[0].symbolic
    got = _run(tmp_path, rules, {"clone", "clone3"}, """
        import threading
        box = []
        t = threading.Thread(target=lambda: box.append(1)); t.start(); t.join()
        results["thread ran"] = "ok" if box == [1] else "no"
        def fork():
            pid = os.fork()
            if pid == 0:
                os._exit(7)
            assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7
        attempt("fork", fork)
        def new_userns():
            pid = sysc("clone", sym("clone", 0, "CLONE_NEWUSER|SIGCHLD"), 0, 0, 0, 0)
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
        attempt("clone CLONE_NEWUSER", new_userns)
        attempt("clone3", lambda: sysc("clone3", 0, 0))
    """)
    assert got == {"thread ran": "ok", "fork": "ok", "clone CLONE_NEWUSER": "EPERM", "clone3": "ENOSYS"}


def test_personality_values(tmp_path: Path) -> None:
    got = _run(tmp_path, argrules.personality(), {"personality"}, """
        attempt("query", lambda: sysc("personality", 0xffffffff))
        attempt("PER_LINUX", lambda: sysc("personality", sym("personality", 0, "PER_LINUX")))
        attempt("READ_IMPLIES_EXEC", lambda: sysc("personality", sym("personality", 0, "READ_IMPLIES_EXEC")))
        attempt("ADDR_NO_RANDOMIZE", lambda: sysc("personality", sym("personality", 0, "ADDR_NO_RANDOMIZE")))
    """)
    assert got == {"query": "ok", "PER_LINUX": "ok", "READ_IMPLIES_EXEC": "EPERM",
                   "ADDR_NO_RANDOMIZE": "EPERM"}


def test_prctl_options(tmp_path: Path) -> None:
    got = _run(tmp_path, argrules.prctl_options(["PR_SET_NAME", "PR_GET_NAME"]), {"prctl"}, """
        buf = ctypes.create_string_buffer(16)
        new = ctypes.create_string_buffer(b"renamed")
        attempt("PR_SET_NAME", lambda: sysc("prctl", sym("prctl", 0, "PR_SET_NAME"), ctypes.addressof(new),
                0, 0, 0))
        attempt("PR_GET_NAME", lambda: sysc("prctl", sym("prctl", 0, "PR_GET_NAME"), ctypes.addressof(buf),
                0, 0, 0))
        results["name"] = buf.value.decode()
        attempt("PR_SET_DUMPABLE", lambda: sysc("prctl", sym("prctl", 0, "PR_SET_DUMPABLE"), 0, 0, 0, 0))
    """)
    assert got == {"PR_SET_NAME": "ok", "PR_GET_NAME": "ok", "name": "renamed", "PR_SET_DUMPABLE": "EPERM"}


def test_ioctl_requests_compare_the_low_32_bits(tmp_path: Path) -> None:
    got = _run(tmp_path, argrules.ioctl_requests(["FIONREAD", "TCGETS"]), {"ioctl"}, """
        r, w = os.pipe()
        os.write(w, b"abc")
        n = ctypes.c_int(0)
        attempt("FIONREAD", lambda: sysc("ioctl", r, sym("ioctl", 1, "FIONREAD"), ctypes.addressof(n)))
        results["bytes"] = str(n.value)
        high = 0xFFFFFFFF00000000 | sym("ioctl", 1, "FIONREAD")
        attempt("FIONREAD upper bits", lambda: sysc("ioctl", r, high, ctypes.addressof(n)))
        buf = ctypes.create_string_buffer(64)
        attempt("TCGETS", lambda: sysc("ioctl", r, sym("ioctl", 1, "TCGETS"), ctypes.addressof(buf)))
        attempt("TIOCGWINSZ", lambda: sysc("ioctl", r, sym("ioctl", 1, "TIOCGWINSZ"), ctypes.addressof(buf)))
    """)
    # TCGETS reaches the kernel (a pipe is no tty: ENOTTY); TIOCGWINSZ is refused by the filter.
    assert got == {"FIONREAD": "ok", "bytes": "3", "FIONREAD upper bits": "ok", "TCGETS": "ENOTTY",
                   "TIOCGWINSZ": "EPERM"}


def test_no_write_exec_mappings(tmp_path: Path) -> None:
    got = _run(tmp_path, argrules.no_write_exec_mappings(), {"mmap", "mprotect", "pkey_mprotect"}, """
        import mmap
        attempt("rw", lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE).close())
        attempt("rx", lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_EXEC).close())
        attempt("wx", lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC).close())
        page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(page))
        attempt("mprotect rx", lambda: sysc("mprotect", addr, 4096, mmap.PROT_READ | mmap.PROT_EXEC))
        attempt("mprotect rwx", lambda: sysc("mprotect", addr, 4096,
                mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC))
    """)
    assert got == {"rw": "ok", "rx": "ok", "wx": "EPERM", "mprotect rx": "ok", "mprotect rwx": "EPERM"}


def test_openat_read_only(tmp_path: Path) -> None:
    existing = tmp_path / "existing.txt"
    existing.write_text("keep me")
    got = _run(tmp_path, argrules.openat_read_only(), {"open", "openat"}, f"""
        attempt("read", lambda: open({str(existing)!r}).read())
        attempt("read cloexec nonblock", lambda: os.close(os.open({str(existing)!r},
                os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)))
        attempt("write", lambda: open({str(existing)!r}, "a").close())
        attempt("rdwr", lambda: os.close(os.open({str(existing)!r}, os.O_RDWR)))
        attempt("rdonly creat", lambda: os.close(os.open("created.txt", os.O_RDONLY | os.O_CREAT)))
        attempt("rdonly trunc", lambda: os.close(os.open({str(existing)!r}, os.O_RDONLY | os.O_TRUNC)))
    """)
    assert got == {"read": "ok", "read cloexec nonblock": "ok", "write": "EPERM", "rdwr": "EPERM",
                   "rdonly creat": "EPERM", "rdonly trunc": "EPERM"}
    assert existing.read_text() == "keep me"
    assert not (tmp_path / "created.txt").exists()


def test_rules_keep_symbolic_values_through_save_and_load(tmp_path: Path) -> None:
    rules = (argrules.socket_families(["AF_UNIX"]) + argrules.openat_read_only()
             + argrules.no_write_exec_mappings(["mmap"]) + argrules.ioctl_requests(["TCGETS"]))
    path = tmp_path / "p.json"
    policy.save(Policy(syscalls=rules), path)
    loaded = policy.load(path)
    assert [r.args for r in loaded.syscalls] == [r.args for r in rules]
    text = path.read_text()
    for spelled in ('"AF_UNIX"', '"O_ACCMODE|O_CREAT|O_TRUNC"', '"O_RDONLY"', '"PROT_WRITE"', '"TCGETS"'):
        assert spelled in text
    read_only = rules[1].args[0]
    assert symbols.render("openat", 2, read_only.value_two, read_only.op) == "O_RDONLY"


def test_empty_family_list_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one family"):
        argrules.socket_families([])
