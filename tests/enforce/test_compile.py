"""`tinyjail compile` and the compiler library: the BPF written is the program run loads, the PFC text
shows the hardened defaults, outputs are never overwritten without --force."""

from __future__ import annotations

import struct

import pytest

from tinyjail import enforce
from tinyjail.errors import EnforceError
from tinyjail.policy import Arg, Policy, SyscallRule, load

BPF_RET = 0x06


def _insns(data: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack_from("=HBBI", data, off) for off in range(0, len(data), 8)]


def test_compile_writes_the_raw_program(policy_file, run_cli, tmp_path) -> None:
    src = policy_file(
        {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}
    )
    out = tmp_path / "f.bpf"
    proc = run_cli("compile", str(src), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data == enforce.bpf_bytes(enforce.build_filter(load(src)))
    insns = _insns(data)
    rets = {k for code, _, _, k in insns if code == BPF_RET}
    assert {0x7FFF0000, 0x00050001, 0x80000000} <= rets  # ALLOW, ERRNO(EPERM), bad-arch KILL_PROCESS
    assert f"{len(insns)} BPF instructions" in proc.stderr
    again = run_cli("compile", str(src), "-o", str(out))
    assert again.returncode == 2 and "--force" in again.stderr
    assert run_cli("compile", str(src), "-o", str(out), "--force").returncode == 0


def test_compile_pfc_shows_hardened_defaults(policy_file, run_cli) -> None:
    src = policy_file(
        {
            "defaultAction": "SCMP_ACT_KILL",
            "syscalls": [
                {"names": ["@aio"], "action": "SCMP_ACT_ALLOW"},
                {
                    "names": ["clone"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": 0x10000000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                },
            ],
        }
    )
    proc = run_cli("compile", str(src), "--pfc")
    assert proc.returncode == 0, proc.stderr
    pfc = proc.stdout
    assert "# default action\n  action KILL_PROCESS;" in pfc
    assert "# invalid architecture action\naction KILL_PROCESS;" in pfc
    assert 'filter for syscall "io_uring_setup"' not in pfc  # refused by the (kill) default
    assert 'filter for syscall "io_submit"' in pfc  # the rest of @aio is allowed
    assert 'filter for syscall "clone3"' in pfc and "ERRNO(38)" in pfc
    assert "clone3: ENOSYS" in proc.stderr and "io_uring_setup" in proc.stderr


def test_pfc_without_output_only_prints(policy_file, run_cli, tmp_path) -> None:
    """--pfc alone (the README's form) writes no POLICY.bpf, so it can be repeated (and needs no write
    access next to the policy); -o still writes the program too."""
    src = policy_file({"defaultAction": "SCMP_ACT_ALLOW"}, name="app.json")
    for _ in range(2):
        proc = run_cli("compile", str(src), "--pfc")
        assert proc.returncode == 0, proc.stderr
        assert "# default action\n  action ALLOW;" in proc.stdout
        assert "written to" not in proc.stderr
    assert {p.name for p in tmp_path.iterdir()} == {"app.json"}
    out = tmp_path / "out.bpf"
    proc = run_cli("compile", str(src), "--pfc", "-o", str(out))
    assert proc.returncode == 0 and "# default action" in proc.stdout
    assert out.read_bytes() == enforce.bpf_bytes(enforce.build_filter(load(src)))


def test_bad_output_path_is_one_line(policy_file, run_cli, tmp_path) -> None:
    src = policy_file({"defaultAction": "SCMP_ACT_ALLOW"})
    for bad, why in (("/nonexist/x.bpf", "/nonexist/x.bpf: directory /nonexist does not exist"),
                     ("/proc/x.bpf", "/proc/x.bpf: cannot create a file in /proc: ")):
        proc = run_cli("compile", str(src), "-o", bad)
        assert proc.returncode == 2
        assert proc.stderr.startswith(f"tinyjail: error: {why}") and len(proc.stderr.splitlines()) == 1


def test_output_never_goes_through_a_symlink(policy_file, run_cli, tmp_path) -> None:
    src = policy_file({"defaultAction": "SCMP_ACT_ALLOW"})
    link = tmp_path / "x.bpf"
    link.symlink_to(tmp_path / "would-be-created")
    proc = run_cli("compile", str(src), "-o", str(link))
    assert proc.returncode == 2 and "already exists; use --force" in proc.stderr
    assert not (tmp_path / "would-be-created").exists()
    proc = run_cli("compile", str(src), "-o", str(link), "--force")
    assert proc.returncode == 0, proc.stderr
    assert not link.is_symlink() and link.stat().st_size > 0
    assert not (tmp_path / "would-be-created").exists()


def test_complain_mode_compiles_denials_to_log(policy_file, run_cli) -> None:
    src = policy_file(
        {
            "defaultAction": "SCMP_ACT_KILL_PROCESS",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}],
        }
    )
    pfc = run_cli("compile", str(src), "--pfc", "--mode", "complain").stdout
    assert "# default action\n  action LOG;" in pfc
    assert "# invalid architecture action\naction LOG;" in pfc


def test_compile_default_output_is_next_to_the_policy(policy_file, run_cli, tmp_path) -> None:
    src = policy_file({"defaultAction": "SCMP_ACT_ALLOW"}, name="app.json")
    proc = run_cli("compile", str(src))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "app.bpf").stat().st_size % 8 == 0 and (tmp_path / "app.bpf").stat().st_size > 0
    assert run_cli("compile", str(src)).returncode == 2  # not overwritten without --force


def test_compile_bad_policy_is_one_line(tmp_path, run_cli) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"defaultAction": "SCMP_ACT_NOPE"}')
    proc = run_cli("compile", str(bad), "--pfc")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "SCMP_ACT_NOPE" in proc.stderr
    assert not (tmp_path / "bad.bpf").exists()


def test_policy_architectures_and_moby_archmap(moby_profile) -> None:
    plan = enforce.plan(load(moby_profile))
    assert plan.arches == ["x86_64", "x86", "x32"]
    assert not any("ABI" in line for line in plan.hardening)
    assert enforce.plan(Policy(default_action="SCMP_ACT_ALLOW")).arches == ["x86_64"]
    listed = Policy(default_action="SCMP_ACT_ALLOW", architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"])
    p = enforce.plan(listed)
    assert p.arches == ["x86_64"] and p.ignored_arches == ["SCMP_ARCH_AARCH64"]


def test_rule_equal_to_default_is_dropped_and_kill_default_upgraded() -> None:
    pol = Policy(
        default_action="SCMP_ACT_KILL",
        syscalls=[SyscallRule(["getpid"], "SCMP_ACT_KILL_PROCESS"), SyscallRule(["read"], "SCMP_ACT_ALLOW")],
    )
    plan = enforce.plan(pol)
    assert plan.default_action == "SCMP_ACT_KILL_PROCESS"
    assert [r.name for r in plan.rules] == ["read"]
    enforce.build_filter(pol)  # libseccomp would refuse a rule equal to the default (EACCES)


def test_same_argument_twice_is_split_or_refused_with_a_reason() -> None:
    """runc's reading (repeated index -> OR of single conditions) comes from tinyjail.policy; a rule that
    still tests one argument twice reaches libseccomp only through the library and is refused clearly."""
    rule = enforce.PlannedRule(
        "read", "SCMP_ACT_ALLOW", None, (Arg(0, 1, "SCMP_CMP_GE"), Arg(0, 9, "SCMP_CMP_LE")), 0x7FFF0000
    )
    p = enforce.plan(Policy(default_action="SCMP_ACT_ERRNO"))
    p.rules.append(rule)
    with pytest.raises(EnforceError, match="same argument twice"):
        enforce._libseccomp.build_from_plan(p)


def test_export_functions_write_files(tmp_path) -> None:
    pol = Policy(default_action="SCMP_ACT_ERRNO", syscalls=[SyscallRule(["write"], "SCMP_ACT_ALLOW")])
    n = enforce.export_bpf(pol, tmp_path / "f.bpf")
    assert n * 8 == (tmp_path / "f.bpf").stat().st_size and n > 4
    text = enforce.export_pfc(pol, tmp_path / "f.pfc")
    assert (tmp_path / "f.pfc").read_text() == text and 'syscall "write"' in text
