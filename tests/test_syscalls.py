"""The syscall table: libseccomp's numbers, checked against scmp_sys_resolver and the kernel."""

from __future__ import annotations

import ctypes
import os
import random
import shutil
import subprocess

import pytest

from tinyjail import syscalls
from tinyjail.errors import UsageError

RESOLVER = shutil.which("scmp_sys_resolver")


@pytest.mark.skipif(RESOLVER is None, reason="scmp_sys_resolver (Debian 'seccomp') is not installed")
@pytest.mark.parametrize("arch", ["x86_64", "x86", "x32"])
def test_numbers_agree_with_scmp_sys_resolver(arch: str) -> None:
    assert RESOLVER is not None
    table = syscalls.table(arch)
    sample = [*random.Random(arch).sample(sorted(table), 25), "read", "openat", "execve", "shmdt"]
    for name in sample:
        if name not in table:
            continue
        back = subprocess.run(
            [RESOLVER, "-a", arch, str(table[name])], capture_output=True, text=True, check=True
        )
        assert back.stdout.strip() == name
        forth = subprocess.run([RESOLVER, "-a", arch, name], capture_output=True, text=True, check=True)
        # negative: libseccomp's pseudo number for a socketcall/ipc-multiplexed call on x86
        assert int(forth.stdout) in (table[name], *range(-300, 0)), name


def test_numbers_reach_the_right_kernel_syscall() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    assert libc.syscall(syscalls.number("getpid")) == os.getpid()
    assert libc.syscall(syscalls.number("getppid")) == os.getppid()
    assert libc.syscall(syscalls.number("getuid")) == os.getuid()


def test_round_trip_name_number() -> None:
    for arch in syscalls.ARCHES:
        for name, nr in syscalls.table(arch).items():
            assert syscalls.name(nr, arch) == name


def test_abis_differ_where_the_kernel_says() -> None:
    # i386 numbers are their own table; x32 numbers are the x86_64 ones with the x32 bit
    assert syscalls.number("open", "x86") != syscalls.number("open", "x86_64")
    assert syscalls.number("read", "x32") == syscalls.number("read", "x86_64") | syscalls.X32_SYSCALL_BIT
    assert syscalls.number("socketcall", "x86") is not None and syscalls.number("socketcall") is None
    assert syscalls.ARCHES["x86"].oci == "SCMP_ARCH_X86"
    assert "SCMP_ARCH_AARCH64" in syscalls.OCI_ARCHES


@pytest.mark.parametrize("alias", ["open", "SYS_open", "__NR_open", " open ", str(syscalls.number("open"))])
def test_aliases_are_accepted(alias: str) -> None:
    assert syscalls.canonical_name(alias) == "open"
    assert syscalls.resolve(alias).number == syscalls.number("open")


def test_unknown_names_suggest() -> None:
    with pytest.raises(UsageError, match='unknown syscall "opne" \\(did you mean "open"\\?\\)'):
        syscalls.canonical_name("opne")
    with pytest.raises(UsageError, match='unknown syscall "SYS_opne" \\(did you mean "open"\\?\\)'):
        syscalls.canonical_name("SYS_opne")
    with pytest.raises(UsageError, match="no x86_64 syscall has number 100000"):
        syscalls.canonical_name("100000")
    with pytest.raises(UsageError, match='"socketcall" does not exist on x86_64'):
        syscalls.resolve("socketcall")
    assert syscalls.name(100000) == "syscall_100000"
