"""Complain mode end to end through `tinyjail run --mode complain`: exact counts from audit
records, children followed, the JSON report, and complain -> allowlist -> enforce."""

from __future__ import annotations

import json

import pytest
from jailtools import nr

pytestmark = pytest.mark.root


def test_ten_thousand_logged_calls_count_exactly(helpers, policy_file, jail, tmp_path) -> None:
    policy = policy_file(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}],
        }
    )
    report = tmp_path / "r.json"
    proc = jail(
        policy,
        helpers["repeat"],
        str(nr("getppid")),
        "10000",
        options=("--mode", "complain", "--report", str(report)),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "made 10000 calls\n"  # KILL became LOG: the command ran to completion
    data = json.loads(report.read_text())
    assert data["lost_records"] == 0
    assert [(v["name"], v["nr"], v["arch"], v["count"]) for v in data["violations"]] == [
        ("getppid", nr("getppid"), "x86_64", 10000)
    ]
    assert data["total"] == 10000
    assert data["violations"][0]["first_ip"] > 0
    assert data["suggestion"] == {"names": ["getppid"], "action": "SCMP_ACT_ALLOW"}
    assert "10000" in proc.stderr and "getppid" in proc.stderr  # the rich table


def test_every_deny_action_becomes_log_and_children_are_followed(
    helpers, policy_file, jail, tmp_path
) -> None:
    policy = policy_file(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"},
                {"names": ["sched_yield"], "action": "SCMP_ACT_TRAP"},
                {"names": ["getsid"], "action": "SCMP_ACT_ERRNO"},
            ],
        }
    )
    target = tmp_path / "made"
    repeat = helpers["repeat"]
    script = f"{repeat} {nr('sched_yield')} 3; {repeat} {nr('getsid')} 2; mkdir {target}; exit 4"
    report = tmp_path / "r.json"
    proc = jail(policy, "/bin/sh", "-c", script, options=("--mode", "complain", "--report", str(report)))
    assert proc.returncode == 4
    assert target.is_dir()  # mkdir was only logged
    data = json.loads(report.read_text())
    counts = {v["name"]: v["count"] for v in data["violations"]}
    assert counts == {"sched_yield": 3, "getsid": 2, "mkdir": 1}  # grandchildren of tinyjail, all counted
    comms = {v["name"]: v["comm"] for v in data["violations"]}
    assert comms["mkdir"] == "mkdir"
    assert data["exit_status"] == 4


def test_complain_then_allowlist_then_enforce(policy_file, jail, tmp_path, run_cli) -> None:
    """Discover what /bin/true needs under a kill-everything policy, allow exactly that, enforce."""
    deny_all = policy_file({"defaultAction": "SCMP_ACT_KILL_PROCESS"})
    report = tmp_path / "r.json"
    proc = jail(deny_all, "/bin/true", options=("--mode", "complain", "--report", str(report)))
    assert proc.returncode == 0, proc.stderr
    rule = json.loads(report.read_text())["suggestion"]
    assert "execve" in rule["names"] and "exit_group" in rule["names"]
    allow = policy_file({"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [rule]})
    assert jail(allow, "/bin/true").returncode == 0
    assert jail(deny_all, "/bin/true").returncode == 159


def test_report_is_never_overwritten_without_force(helpers, policy_file, jail, tmp_path) -> None:
    report = tmp_path / "r.json"
    report.write_text("mine\n")
    marker = tmp_path / "ran"
    policy = policy_file({"defaultAction": "SCMP_ACT_ALLOW"})
    proc = jail(
        policy, "/usr/bin/touch", str(marker), options=("--mode", "complain", "--report", str(report))
    )
    assert proc.returncode == 2
    assert "already exists" in proc.stderr and "--force" in proc.stderr
    assert report.read_text() == "mine\n"
    assert not marker.exists()  # refused before anything ran
    proc = jail(
        policy,
        "/usr/bin/touch",
        str(marker),
        options=("--mode", "complain", "--report", str(report), "--force"),
    )
    assert proc.returncode == 0
    assert json.loads(report.read_text())["total"] == 0
    assert marker.exists()


def test_policy_log_rules_are_not_reported_as_violations(helpers, policy_file, jail, tmp_path) -> None:
    policy = policy_file(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["sched_yield"], "action": "SCMP_ACT_LOG"},
                {"names": ["getsid"], "action": "SCMP_ACT_ERRNO"},
            ],
        }
    )
    report = tmp_path / "r.json"
    script = f"{helpers['repeat']} {nr('sched_yield')} 5; {helpers['repeat']} {nr('getsid')} 6"
    proc = jail(policy, "/bin/sh", "-c", script, options=("--mode", "complain", "--report", str(report)))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(report.read_text())
    assert {v["name"]: v["count"] for v in data["violations"]} == {"getsid": 6}
    assert data["logged_by_policy"] == 5


def test_report_never_writes_through_a_symlink(policy_file, jail, tmp_path) -> None:
    """A symlink planted at the old fixed temporary name (R.tmp) or at R itself redirects nothing."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "r2.json.tmp").symlink_to(victim)
    policy = policy_file({"defaultAction": "SCMP_ACT_ALLOW"})
    report = tmp_path / "r2.json"
    proc = jail(policy, "/bin/true", options=("--mode", "complain", "--report", str(report)))
    assert proc.returncode == 0, proc.stderr
    assert victim.read_text() == "precious\n"
    assert not report.is_symlink() and json.loads(report.read_text())["exit_status"] == 0

    dangling = tmp_path / "r3.json"
    dangling.symlink_to(tmp_path / "would-be-created")
    proc = jail(policy, "/bin/true", options=("--mode", "complain", "--report", str(dangling)))
    assert proc.returncode == 2 and "r3.json: already exists; use --force" in proc.stderr
    assert not (tmp_path / "would-be-created").exists()


def test_unwritable_report_path_is_refused_before_cmd_runs(policy_file, jail, tmp_path) -> None:
    policy = policy_file({"defaultAction": "SCMP_ACT_ALLOW"})
    marker = tmp_path / "ran"
    for bad, why in (("/proc/r.json", "/proc/r.json: cannot create a file in /proc: "),
                     (str(tmp_path / "nonexist" / "r.json"), "does not exist")):
        proc = jail(policy, "/usr/bin/touch", str(marker), options=("--mode", "complain", "--report", bad))
        assert proc.returncode == 2
        assert len(proc.stderr.splitlines()) == 1 and why in proc.stderr, proc.stderr
        assert proc.stderr.startswith("tinyjail: error: ")
        assert not marker.exists()


def test_report_that_cannot_be_written_after_cmd_keeps_cmds_status(policy_file, jail, tmp_path) -> None:
    """CMD itself creates the report's name while it runs: the report is refused (nothing is clobbered),
    said on one line, and tinyjail still exits with CMD's status."""
    policy = policy_file({"defaultAction": "SCMP_ACT_ALLOW"})
    report = tmp_path / "r.json"
    proc = jail(policy, "/bin/sh", "-c", f"echo cmd > {report}; exit 3",
                options=("--mode", "complain", "--report", str(report)))
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert f"tinyjail: error: {report}: already exists" in proc.stderr
    assert "report was not written" in proc.stderr
    assert report.read_text() == "cmd\n"
