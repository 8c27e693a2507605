"""A policy written by tinyjail runs in Debian's runc: allowed syscalls work, denied ones are
refused inside the container (OCI bundle with a busybox-static rootfs, no cgroup mount)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinyjail import argrules, policy, syscalls
from tinyjail.policy import Policy, SyscallRule

pytestmark = [pytest.mark.runc, pytest.mark.root]

APPLETS = ("sh", "echo", "mkdir", "ls", "cat", "nc", "true", "ifconfig")


def _busybox() -> Path:
    found = shutil.which("busybox") or "/bin/busybox"
    return Path(found).resolve()


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """An OCI bundle: busybox-static rootfs and runc's default spec minus the cgroup mount."""
    rootfs = tmp_path / "rootfs"
    for d in ("bin", "tmp", "etc", "proc", "dev", "sys"):
        (rootfs / d).mkdir(parents=True)
    shutil.copy2(_busybox(), rootfs / "bin" / "busybox")
    for applet in APPLETS:
        (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc" / "motd").write_text("hello from the rootfs\n")
    subprocess.run(["runc", "spec"], cwd=tmp_path, check=True)
    config = json.loads((tmp_path / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["env"] = ["PATH=/bin"]
    config["root"]["readonly"] = False
    # No cgroup filesystem in the container: this machine may not delegate one.
    config["mounts"] = [m for m in config["mounts"] if m.get("type") != "cgroup"]
    (tmp_path / "config.json").write_text(json.dumps(config, indent=2))
    return tmp_path


@pytest.fixture
def container_id() -> Iterator[str]:
    cid = f"tinyjail-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield cid
    subprocess.run(["runc", "delete", "-f", cid], capture_output=True)


def _run_in_runc(bundle: Path, cid: str, seccomp_file: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Put the policy file (as tinyjail saved it) into linux.seccomp and run ``sh -c script``."""
    config = json.loads((bundle / "config.json").read_text())
    config["linux"]["seccomp"] = json.loads(seccomp_file.read_text())
    config["process"]["args"] = ["sh", "-c", script]
    (bundle / "config.json").write_text(json.dumps(config, indent=2))
    return subprocess.run(["runc", "run", "--bundle", str(bundle), cid], capture_output=True, text=True,
                          timeout=120)


def _allow_all_but(excluded: set[str]) -> SyscallRule:
    names = sorted(n for n in syscalls.table("x86_64") if n not in excluded)
    return SyscallRule(names=names, action="SCMP_ACT_ALLOW")


def test_denied_mkdir_is_refused_in_runc(bundle: Path, container_id: str, tmp_path: Path) -> None:
    """Deny-by-default policy without mkdir/mkdirat: echo works, mkdir gets EPERM."""
    pol = Policy(default_action="SCMP_ACT_ERRNO", default_errno_ret=1, architectures=["SCMP_ARCH_X86_64"],
                 syscalls=[_allow_all_but({"mkdir", "mkdirat"})])
    path = tmp_path / "policy.json"
    policy.save(pol, path)
    proc = _run_in_runc(bundle, container_id, path,
                        "echo ok; mkdir /tmp/x; echo mkdir=$?; ls -d /tmp/x 2>/dev/null || echo absent")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == ["ok", "mkdir=1", "absent"], proc.stdout
    assert "Operation not permitted" in proc.stderr


def test_same_bundle_without_the_filter_can_mkdir(bundle: Path, container_id: str, tmp_path: Path) -> None:
    """Control: the refusal above comes from the policy, not from the bundle."""
    pol = Policy(default_action="SCMP_ACT_ERRNO", default_errno_ret=1, architectures=["SCMP_ARCH_X86_64"],
                 syscalls=[_allow_all_but(set())])
    path = tmp_path / "policy.json"
    policy.save(pol, path)
    proc = _run_in_runc(bundle, container_id, path, "mkdir /tmp/x && ls -d /tmp/x")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["/tmp/x"]


def test_argument_rules_are_enforced_by_runc(bundle: Path, container_id: str, tmp_path: Path) -> None:
    """argrules in runc: files open read-only, only AF_UNIX sockets. runc 1.1 opens its exec
    fifo O_WRONLY|O_CLOEXEC after loading the filter, so exactly that stays allowed. argrules
    spell values symbolically; the portable form writes the numbers runc reads."""
    restricted = {"open", "openat", "socket"}
    read_only = argrules.openat_read_only(also_exact=[argrules.RUNC_EXEC_FIFO_FLAGS])
    pol = Policy(default_action="SCMP_ACT_ERRNO", default_errno_ret=1, architectures=["SCMP_ARCH_X86_64"],
                 syscalls=[_allow_all_but(restricted), *read_only, *argrules.socket_families(["AF_UNIX"])])
    path = tmp_path / "policy.json"
    policy.save(pol, path, portable=True)
    script = (
        "cat /etc/motd; "
        "echo new > /tmp/f; echo write=$?; "
        "nc 127.0.0.1 9 </dev/null; echo nc=$?"
    )
    proc = _run_in_runc(bundle, container_id, path, script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["hello from the rootfs", "write=1", "nc=1"], proc.stdout
    assert "can't create /tmp/f: Operation not permitted" in proc.stderr
    assert "socket: Operation not permitted" in proc.stderr
    assert not (bundle / "rootfs" / "tmp" / "f").exists()


def test_read_only_policy_without_the_fifo_exception_breaks_runc(
    bundle: Path, container_id: str, tmp_path: Path
) -> None:
    """Why RUNC_EXEC_FIFO_FLAGS exists: without it runc itself cannot start the process."""
    pol = Policy(default_action="SCMP_ACT_ERRNO", default_errno_ret=1, architectures=["SCMP_ARCH_X86_64"],
                 syscalls=[_allow_all_but({"open", "openat"}), *argrules.openat_read_only()])
    path = tmp_path / "policy.json"
    policy.save(pol, path, portable=True)
    proc = _run_in_runc(bundle, container_id, path, "echo started")
    assert proc.returncode != 0
    assert "started" not in proc.stdout
    assert "exec fifo" in proc.stderr and "operation not permitted" in proc.stderr


GROUPS_AND_SYMBOLS = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [
        {"names": ["@default", "@basic-io", "@file-system", "@io-event", "@signal"],
         "action": "SCMP_ACT_ALLOW", "comment": "moby and podman read comments, runc ignores them"},
        {"names": ["execve", "wait4", "ioctl", "fcntl", "uname", "prctl", "getcwd", "umask", "setsid",
                   "connect", "close_range", "capget", "capset", "setgroups", "setresuid", "setresgid"],
         "action": "SCMP_ACT_ALLOW"},
        # explicit names beat the same names reached through @file-system
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 0, "value": "CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWNET|CLONE_NEWPID|CLONE_NEWIPC",
             "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 0, "value": "AF_INET", "op": "SCMP_CMP_EQ"},
            {"index": 1, "value": "0xf", "valueTwo": "SOCK_STREAM", "op": "SCMP_CMP_MASKED_EQ"}]},
    ],
}


def test_policy_with_groups_and_symbols_runs_in_runc_after_export(
    bundle: Path, container_id: str, tmp_path: Path, run_cli
) -> None:
    """A tinyjail policy using @groups and symbolic values: runc refuses the file as written
    (it reads ``value`` as uint64), `tinyjail policy export` makes it plain runtime-spec JSON,
    and runc then enforces it: the groups' syscalls work, the explicit override of a group
    member (mkdir -> EACCES) wins, TCP sockets (AF_INET, SOCK_STREAM) open, UDP ones do not."""
    written = tmp_path / "written.json"
    written.write_text(json.dumps(GROUPS_AND_SYMBOLS, indent=2))
    proc = _run_in_runc(bundle, container_id, written, "echo should-not-run")
    assert proc.returncode != 0 and "should-not-run" not in proc.stdout
    assert "cannot unmarshal string" in proc.stderr, proc.stderr
    subprocess.run(["runc", "delete", "-f", container_id], capture_output=True)

    exported = tmp_path / "exported.json"
    res = run_cli("policy", "export", str(written), "-o", str(exported))
    assert res.returncode == 0, res.stderr
    text = exported.read_text()
    assert "@" not in text and '"AF_INET"' not in text
    assert policy.is_portable(policy.load(exported))
    script = (
        "echo ok; cat /etc/motd; (echo subshell); "
        "mkdir /tmp/x; echo mkdir=$?; "
        "nc 127.0.0.1 9 </dev/null; echo tcp=$?; "
        "ifconfig lo; echo udp=$?"
    )
    proc = _run_in_runc(bundle, container_id, exported, script)
    assert proc.returncode == 0, proc.stderr
    expected = ["ok", "hello from the rootfs", "subshell", "mkdir=1", "tcp=1", "udp=1"]
    assert proc.stdout.splitlines() == expected, proc.stdout
    assert "can't create directory '/tmp/x': Permission denied" in proc.stderr   # errnoRet EACCES
    assert "nc: can't connect" in proc.stderr                    # socket() passed, connect found nobody
    assert "ifconfig: socket: Operation not permitted" in proc.stderr   # SOCK_DGRAM: default EPERM
    assert not (bundle / "rootfs" / "tmp" / "x").exists()
