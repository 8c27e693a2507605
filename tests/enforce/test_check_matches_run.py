"""`tinyjail policy check` says "ok" only for policies `tinyjail run` can enforce: it plans and
builds the same filter (enforce mode) and reports what run would refuse with 125 as errors
(exit 2). Both name the policy file."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.root

TWO_ARGS = [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]
TOO_BIG = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
    {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "args": [{**a, "value": i} for a in TWO_ARGS]}
    for i in range(1500)
]}

REFUSED = [
    (TOO_BIG, "the filter has ", "BPF instructions, more than the kernel's limit of 4096"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]},
     "$.flags[0]: ", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported by the installed libseccomp"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "$.defaultAction: ", "SCMP_ACT_NOTIFY needs a supervisor"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_NOTIFY"}]},
     "$.syscalls[0].action (getpid): ", "SCMP_ACT_NOTIFY needs a supervisor"),
]


@pytest.mark.parametrize(("policy", "where", "why"), REFUSED,
                         ids=["too-big", "flag", "notify-default", "notify"])
def test_what_run_refuses_check_reports(policy, where, why, policy_file, run_cli, jail, tmp_path) -> None:
    path = policy_file(policy)
    checked = run_cli("policy", "check", str(path))
    assert checked.returncode == 2
    assert checked.stdout == ""
    (line,) = checked.stderr.splitlines()
    assert line.startswith(f"tinyjail: error: {path}: {where}") and why in line

    marker = tmp_path / "ran"
    ran = jail(path, "/usr/bin/touch", str(marker))
    assert ran.returncode == 125
    assert not marker.exists()
    assert ran.stderr.splitlines() == [line]   # the same words, naming the same file


def test_check_still_says_ok_for_what_run_enforces(policy_file, run_cli, jail) -> None:
    path = policy_file({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "args": [{**a, "value": i} for a in TWO_ARGS]}
        for i in range(50)
    ]})
    checked = run_cli("policy", "check", str(path))
    assert checked.returncode == 0, checked.stderr
    assert f"{path}: ok (50 entries" in checked.stdout
    assert jail(path, "/bin/true").returncode == 0
