"""`tinyjail run` and the keys of a policy: a misspelt key (a conditional rule that would
silently become unconditional) is an error before anything runs; a foreign top-level key is
kept and shown as a `tinyjail: note:` line."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.root

UNIX_ONLY = [{"index": 0, "value": "AF_UNIX", "op": "SCMP_CMP_EQ"}]


@pytest.mark.parametrize(("policy", "where", "hint"), [
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_KILL_PROCESS", "conditions": UNIX_ONLY}]},
     "$.syscalls[0].conditions", '"args"'),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "rules": [{"names": ["touch"], "action": "SCMP_ACT_KILL_PROCESS"}]},
     "$.rules", '"syscalls"'),
])
def test_misspelt_keys_stop_run_before_anything_runs(policy, where, hint, policy_file, jail,
                                                     tmp_path) -> None:
    path = policy_file(policy)
    marker = tmp_path / "ran"
    proc = jail(path, "/usr/bin/touch", str(marker))
    assert proc.returncode == 2
    assert not marker.exists()
    assert proc.stderr.splitlines() == [
        f'tinyjail: error: {path}: {where}: unknown key "{where.rsplit(".", 1)[1]}" (did you mean {hint}?)'
    ]


def test_foreign_top_level_key_is_a_note_on_stderr(policy_file, jail) -> None:
    path = policy_file({"defaultAction": "SCMP_ACT_ALLOW", "x-owner": "team-a"})
    proc = jail(path, "/bin/echo", "ran")
    assert proc.returncode == 0
    assert proc.stdout == "ran\n"
    assert proc.stderr.splitlines() == [
        f"tinyjail: note: {path}: $.x-owner: unknown key kept as written (tinyjail and runc ignore it)"
    ]


def test_notes_come_before_the_command_runs(policy_file, jail) -> None:
    path = policy_file({"defaultAction": "SCMP_ACT_ALLOW", "x-owner": "team-a"})
    proc = jail(path, "/bin/sh", "-c", "echo from-cmd >&2")
    assert proc.returncode == 0
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(f"tinyjail: note: {path}: $.x-owner") and lines[1] == "from-cmd"
