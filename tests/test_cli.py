"""The command line frame: help, version, `python -m tinyjail`, errors without tracebacks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tinyjail import __version__
from tinyjail.cli import COMMANDS, _module_exists


def test_help_lists_every_available_command_with_one_line(run_cli) -> None:
    res = run_cli("--help")
    assert res.returncode == 0, res.stderr
    for name, (module, _, help_line) in COMMANDS.items():
        if _module_exists(module):
            assert any(line.split() and line.split()[0] == name for line in res.stdout.splitlines()), name
            assert help_line.split(".")[0][:30] in " ".join(res.stdout.split())


def test_version(run_cli) -> None:
    res = run_cli("--version")
    assert res.returncode == 0
    assert res.stdout.strip() == f"tinyjail, version {__version__}"


def test_console_script_is_the_same_cli() -> None:
    script = Path(sys.executable).with_name("tinyjail")
    exe = str(script) if script.exists() else shutil.which("tinyjail")
    assert exe, "the tinyjail console script is not installed"
    res = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and __version__ in res.stdout


def test_unknown_command_and_bad_option_exit_2(run_cli) -> None:
    res = run_cli("no-such-command")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    res = run_cli("groups", "--no-such-option")
    assert res.returncode == 2 and "Traceback" not in res.stderr
