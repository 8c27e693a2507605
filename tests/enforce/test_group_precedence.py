"""An explicitly named syscall takes precedence over a @group that contains it, for real: the
explicit entries (argument rules included) alone decide it in the loaded filter, and the clone3
hardening sees clone's argument rules even when a group allows clone."""

from __future__ import annotations

import errno
import os
import re
import socket
import sys

import pytest
from jailtools import call, nr, parse_calls

pytestmark = pytest.mark.root

CLONE_NEWUSER = 0x10000000

SERVICE_UNIX_ONLY = {
    "defaultAction": "SCMP_ACT_KILL_PROCESS",
    "syscalls": [
        {"names": ["@system-service"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": "AF_UNIX", "op": "SCMP_CMP_EQ"}]},
    ],
}


def test_group_allow_does_not_cancel_the_argument_rule_of_a_named_syscall(helpers, policy_file, jail) -> None:
    policy = policy_file(SERVICE_UNIX_ONLY)
    unix = call("socket", socket.AF_UNIX, socket.SOCK_STREAM)
    proc = jail(policy, helpers["sys"], unix, call("getpid"))
    assert proc.returncode == 0, proc.stderr
    (sock_nr, fd, err), (pid_nr, _, pid_err) = parse_calls(proc.stdout)
    assert (sock_nr, err) == (nr("socket"), 0) and fd >= 3   # AF_UNIX passes: a real descriptor
    assert (pid_nr, pid_err) == (nr("getpid"), 0)            # the group still allows its other members

    udp = call("socket", socket.AF_INET, socket.SOCK_DGRAM)
    proc = jail(policy, helpers["sys"], unix, udp, call("getpid"))
    assert proc.returncode == 159, proc.stderr
    assert [n for n, _, _ in parse_calls(proc.stdout)] == [nr("socket")]   # killed at the UDP socket
    assert f"socket (syscall {nr('socket')} on x86_64" in proc.stderr


def test_policy_show_describes_what_is_enforced(policy_file, run_cli) -> None:
    path = policy_file(SERVICE_UNIX_ONLY)
    wide = {**os.environ, "COLUMNS": "200"}
    shown = run_cli("policy", "show", str(path), env=wide)
    assert shown.returncode == 0, shown.stderr
    assert "except socket (named" in shown.stdout
    effective = run_cli("policy", "show", "--effective", str(path), env=wide)
    cells = [line.split("│") for line in effective.stdout.splitlines() if line.count("│") == 5]
    socket_cells = [c for c in cells if re.search(r"\bsocket\b(?!pair)", c[3])]
    assert len(socket_cells) == 1   # no unconditional row lists socket
    assert socket_cells[0][3].strip() == "socket" and socket_cells[0][4].strip() == "a0 == AF_UNIX"


def test_clone3_hardening_applies_when_a_group_allows_clone(helpers, policy_file, jail) -> None:
    """clone's argument rule survives @system-service, so clone3 (whose flags seccomp cannot
    read) answers ENOSYS and glibc falls back to clone: threads still start. (The default is
    not ALLOW, so the group's ALLOW is a rule of the filter and could replace clone's.)"""
    policy = policy_file({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["@system-service"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": "CLONE_NEWUSER", "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        ],
    })
    proc = jail(policy, helpers["sys"], call("clone3", 0, 0), call("clone", CLONE_NEWUSER))
    assert [e for _, _, e in parse_calls(proc.stdout)] == [errno.ENOSYS, errno.EPERM]
    code = ("import threading; out = []; t = threading.Thread(target=out.append, args=('thread ok',)); "
            "t.start(); t.join(); print(out[0])")
    proc = jail(policy, sys.executable, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "thread ok\n"
