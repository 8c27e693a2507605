"""Hardened defaults, for real: foreign ABIs killed, io_uring refused, clone3 -> ENOSYS when clone
has argument rules (threads still work), and fail-closed paths that never run CMD."""

from __future__ import annotations

import errno
import sys

import pytest
from jailtools import call, nr, parse_calls

from tinyjail import syscalls

pytestmark = pytest.mark.root

ALLOW_ALL = {"defaultAction": "SCMP_ACT_ALLOW"}
CLONE_NEWUSER = 0x10000000


def test_int80_i386_call_is_killed_unless_x86_is_listed(helpers, policy_file, jail) -> None:
    i386_getpid = str(nr("getpid", "x86"))
    proc = jail(policy_file(ALLOW_ALL), helpers["foreign"], "int80", i386_getpid)
    assert proc.returncode == 159
    assert "survived" not in proc.stdout
    assert "x86 ABI" in proc.stderr and "SCMP_ARCH_X86" in proc.stderr
    listed = policy_file({**ALLOW_ALL, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]})
    proc = jail(listed, helpers["foreign"], "int80", i386_getpid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("survived ret=") and int(proc.stdout.split("=")[1]) > 0


def test_x32_call_is_killed_unless_x32_is_listed(helpers, policy_file, jail) -> None:
    x32_getpid = str(syscalls.X32_SYSCALL_BIT | nr("getpid"))
    proc = jail(policy_file(ALLOW_ALL), helpers["foreign"], "x32", x32_getpid)
    assert proc.returncode == 159
    assert "survived" not in proc.stdout
    assert "x32 ABI" in proc.stderr and "SCMP_ARCH_X32" in proc.stderr
    listed = policy_file({**ALLOW_ALL, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]})
    proc = jail(listed, helpers["foreign"], "x32", x32_getpid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("survived")  # the kernel answers (ENOSYS without CONFIG_X86_X32_ABI)


def test_io_uring_refused_even_through_a_group(helpers, policy_file, jail) -> None:
    calls = [call("io_uring_setup", 1, 0), call("io_uring_enter", 99), call("io_uring_register", 99)]
    free = parse_calls(
        __import__("subprocess").run([helpers["sys"], *calls], capture_output=True, text=True).stdout
    )
    assert all(e not in (0, errno.EPERM) for _, _, e in free)  # the kernel itself says EFAULT/EBADF
    for policy in (
        ALLOW_ALL,
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["@aio"], "action": "SCMP_ACT_ALLOW"}]},
    ):
        proc = jail(policy_file(policy), helpers["sys"], *calls)
        assert [e for _, _, e in parse_calls(proc.stdout)] == [errno.EPERM] * 3, policy


def test_io_uring_named_explicitly_is_an_opt_out(helpers, policy_file, jail) -> None:
    policy = policy_file(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {
                    "names": ["io_uring_setup", "io_uring_enter", "io_uring_register"],
                    "action": "SCMP_ACT_ALLOW",
                }
            ],
        }
    )
    proc = jail(policy, helpers["sys"], call("io_uring_setup", 1, 0))
    assert parse_calls(proc.stdout)[0][2] == errno.EFAULT  # reached the kernel: params pointer is NULL


CLONE_RULES = [
    {
        "names": ["clone"],
        "action": "SCMP_ACT_ERRNO",
        "args": [{"index": 0, "value": CLONE_NEWUSER, "valueTwo": CLONE_NEWUSER, "op": "SCMP_CMP_MASKED_EQ"}],
    }
]


def test_clone3_is_enosys_when_clone_has_argument_rules(helpers, policy_file, jail) -> None:
    plain = jail(policy_file(ALLOW_ALL), helpers["sys"], call("clone3", 0, 0))
    assert parse_calls(plain.stdout)[0][2] == errno.EINVAL  # the kernel's own answer
    ruled = jail(
        policy_file({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": CLONE_RULES}),
        helpers["sys"],
        call("clone3", 0, 0),
        call("clone", CLONE_NEWUSER),
    )
    assert [e for _, _, e in parse_calls(ruled.stdout)] == [errno.ENOSYS, errno.EPERM]


def test_threads_work_under_clone_rules(policy_file, jail) -> None:
    """glibc tries clone3 first for pthread_create and falls back to clone on ENOSYS."""
    code = (
        "import threading; out = []; t = threading.Thread(target=out.append, args=('thread ok',)); "
        "t.start(); t.join(); print(out[0])"
    )
    proc = jail(
        policy_file({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": CLONE_RULES}), sys.executable, "-c", code
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "thread ok\n"


def test_clone3_named_explicitly_is_an_opt_out(helpers, policy_file, jail) -> None:
    policy = policy_file(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [*CLONE_RULES, {"names": ["clone3"], "action": "SCMP_ACT_LOG"}],
        }
    )
    proc = jail(policy, helpers["sys"], call("clone3", 0, 0))
    assert parse_calls(proc.stdout)[0][2] == errno.EINVAL


def test_filter_too_big_fails_closed(policy_file, jail, tmp_path) -> None:
    two_args = [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]
    rules = [
        {
            "names": ["getpid"],
            "action": "SCMP_ACT_ERRNO",
            "args": [{**a, "value": i} for a in two_args],
        }
        for i in range(1500)
    ]
    marker = tmp_path / "ran"
    proc = jail(
        policy_file({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}), "/usr/bin/touch", str(marker)
    )
    assert proc.returncode == 125
    assert "limit of 4096" in proc.stderr
    assert not marker.exists()


def test_filter_the_kernel_refuses_to_load_fails_closed(policy_file, tinyjail_cmd, jail, tmp_path) -> None:
    """An outer tinyjail forbids seccomp() and prctl(PR_SET_SECCOMP): the inner tinyjail builds its
    filter fine, but the kernel refuses to load it in the child, which must then never exec CMD."""
    outer = policy_file(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {
                    "names": ["seccomp"],
                    "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}],  # SECCOMP_SET_MODE_FILTER
                },
                {
                    "names": ["prctl"],
                    "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 0, "value": 22, "op": "SCMP_CMP_EQ"}],
                },
            ],
        }
    )
    marker = tmp_path / "ran"
    inner = policy_file(ALLOW_ALL)
    proc = jail(
        outer,
        *tinyjail_cmd,
        "run",
        "--policy",
        str(inner),
        "--",
        "/usr/bin/touch",
        str(marker),
    )
    assert proc.returncode == 125, proc.stderr
    assert f"{inner}: the kernel refused to load the filter" in proc.stderr and "not run" in proc.stderr
    assert not marker.exists()


def test_unsupported_flag_fails_closed(policy_file, jail, tmp_path) -> None:
    marker = tmp_path / "ran"
    policy = policy_file({**ALLOW_ALL, "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]})
    proc = jail(policy, "/usr/bin/touch", str(marker))
    assert proc.returncode == 125
    assert "WAIT_KILLABLE_RECV" in proc.stderr
    assert not marker.exists()
