"""Syscalls the installed libseccomp does not know (moby lists mseal, statmount, listmount...)
cannot be compiled into the filter; they get its default action. That is only acceptable when
the rule naming them is no stricter than the default: otherwise `tinyjail run` refuses (125,
CMD never runs) and `policy check` reports it (2). Which names are unknown comes from
libseccomp itself (`syscalls.is_known`), never from a list typed here."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from jailtools import call, parse_calls

from tinyjail import groups, syscalls
from tinyjail import policy as pol

pytestmark = pytest.mark.root

NEWER = ["mseal", "statmount", "listmount"]


@pytest.fixture(scope="module", autouse=True)
def _libseccomp_is_older_than_these() -> None:
    known = [n for n in NEWER if syscalls.is_known(n)]
    if known:
        pytest.skip(f"the installed libseccomp knows {known}: nothing is dropped to test")


def test_kill_rule_for_unknown_syscalls_under_allow_default_is_refused(policy_file, jail, tmp_path) -> None:
    path = policy_file({"defaultAction": "SCMP_ACT_ALLOW",
                        "syscalls": [{"names": NEWER, "action": "SCMP_ACT_KILL_PROCESS"}]})
    marker = tmp_path / "ran"
    proc = jail(path, "/usr/bin/touch", str(marker))
    assert proc.returncode == 125, proc.stderr
    assert not marker.exists()
    lines = proc.stderr.splitlines()
    assert len(lines) == 3
    for j, (line, name) in enumerate(zip(lines, NEWER, strict=True)):
        assert line.startswith(f"tinyjail: error: {path}: $.syscalls[0].names[{j}]: ")
        assert f'does not know "{name}"' in line
        assert "cannot give it SCMP_ACT_KILL_PROCESS; the default SCMP_ACT_ALLOW would apply" in line


@pytest.mark.parametrize("action", ["SCMP_ACT_LOG", "SCMP_ACT_ERRNO", "SCMP_ACT_TRAP"])
def test_any_rule_stricter_than_the_default_is_refused(action: str, policy_file, jail, tmp_path) -> None:
    marker = tmp_path / "ran"
    rules = [{"names": ["mseal"], "action": action}]
    path = policy_file({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
    proc = jail(path, "/usr/bin/touch", str(marker))
    assert proc.returncode == 125 and not marker.exists()
    assert f"cannot give it {pol.show_action(action)}" in proc.stderr


def test_rules_no_stricter_than_the_default_still_run(helpers, policy_file, jail) -> None:
    """An ALLOW (or another errno) under an ERRNO default: dropping it only makes the call fail."""
    path = policy_file({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["@system-service"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mseal", "statmount"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["listmount"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
        {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV},
    ]})
    proc = jail(path, helpers["sys"], call("getppid"))
    assert proc.returncode == 0, proc.stderr
    assert parse_calls(proc.stdout)[0][2] == errno.EXDEV   # the filter is really loaded


def test_moby_default_profile_still_runs(moby_profile: Path, jail) -> None:
    assert {n for r in pol.load(moby_profile).syscalls for n in r.names} >= set(NEWER)
    proc = jail(moby_profile, "/bin/sh", "-c", "echo ok")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok\n"
    (note,) = proc.stderr.splitlines()   # what was dropped is said, once
    assert note.startswith(f"tinyjail: note: {moby_profile}: ") and all(n in note for n in NEWER)


def test_policy_check_reports_it(policy_file, run_cli, moby_profile: Path) -> None:
    bad = policy_file({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": ["@known"], "action": "SCMP_ACT_KILL_PROCESS"}]})
    res = run_cli("policy", "check", str(bad), str(moby_profile))
    assert res.returncode == 2
    (line,) = res.stderr.splitlines()
    assert line.startswith(f"tinyjail: error: {bad}: $.syscalls[0].names[0]: ")
    unknown = sorted(n for n in groups.expand("@known") if not syscalls.is_known(n))
    assert f"does not know {len(unknown)} syscalls of @known ({', '.join(unknown[:5])}, ...)" in line
    assert f"{moby_profile}: ok" in res.stdout


def test_an_explicit_name_takes_an_unknown_member_out_of_its_group(policy_file, run_cli) -> None:
    """@known under KILL would be refused; naming its unknown members with a rule that is no
    stricter than the default takes them out of the group, so the policy is enforceable."""
    unknown = sorted(n for n in groups.expand("@known") if not syscalls.is_known(n))
    path = policy_file({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["@known"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": unknown, "action": "SCMP_ACT_ALLOW"},
    ]})
    res = run_cli("policy", "check", str(path))
    assert res.returncode == 0, res.stderr
