"""`tinyjail.policy.save` writes through `tinyjail.newfile`: nothing is written through a symlink,
at the old predictable temporary name or at the policy's own name."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tinyjail import policy
from tinyjail.errors import UsageError

POLICY = policy.Policy(default_action="SCMP_ACT_ERRNO")


def test_save_ignores_a_symlink_at_the_old_temporary_name(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / f".p.json.tmp{os.getpid()}").symlink_to(victim)
    policy.save(POLICY, tmp_path / "p.json")
    assert victim.read_text() == "precious\n"
    assert json.loads((tmp_path / "p.json").read_text())["defaultAction"] == "SCMP_ACT_ERRNO"


def test_save_refuses_a_dangling_symlink_without_force(tmp_path: Path) -> None:
    link = tmp_path / "p.json"
    link.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(UsageError, match="already exists; use --force"):
        policy.save(POLICY, link)
    assert not (tmp_path / "elsewhere.json").exists()
    policy.save(POLICY, link, force=True)
    assert not link.is_symlink() and not (tmp_path / "elsewhere.json").exists()
    assert policy.load(link).default_action == "SCMP_ACT_ERRNO"
