"""The Chrome export writes through `tinyjail.newfile`: a symlink at the output name is replaced,
never written through (`tinyjail trace --export-chrome` calls it with force)."""

from __future__ import annotations

import json
from pathlib import Path

from synthtrace import ls_like
from tinyjail.tracer.chrome import export


def test_export_replaces_a_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "t.json"
    out.symlink_to(victim)
    assert export(ls_like(), out) > 0
    assert victim.read_text() == "precious\n"
    assert not out.is_symlink() and json.loads(out.read_text())["traceEvents"]
