"""The command line frame: help, version, `python -m tinyjail`, errors without tracebacks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinyjail import __version__
from tinyjail.cli import COMMANDS


def test_help_lists_every_available_command_with_one_line(run_cli) -> None:
    res = run_cli("--help")
    assert res.returncode == 0, res.stderr
    for name, (_module, _, help_line) in COMMANDS.items():
        assert any(line.split() and line.split()[0] == name for line in res.stdout.splitlines()), name
        assert help_line in res.stdout, f"{name}: summary not on one line"


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


def test_every_registered_command_loads_and_has_its_help() -> None:
    """The lazy registry and the command modules agree: each entry imports to a click command whose
    own help starts like the one-line summary `tinyjail --help` shows without importing it."""
    import click

    from tinyjail.cli import COMMANDS, cli

    ctx = click.Context(cli)
    for name, (_module, _attr, summary) in COMMANDS.items():
        cmd = cli.get_command(ctx, name)
        assert isinstance(cmd, click.Command), name
        assert cmd.name == name
        assert summary.endswith(".") and len(summary) <= 66, summary


def test_an_unwrapped_oserror_is_one_line_and_exit_2(tinyjail_cmd) -> None:
    """The last resort of main(): stdout on a full device is an OSError no command wraps."""
    env = {k: v for k, v in os.environ.items() if k != "TINYJAIL_DEBUG"}
    with open("/dev/full", "w") as full:
        res = subprocess.run([*tinyjail_cmd, "groups", "--of", "openat"], stdout=full, stderr=subprocess.PIPE,
                             text=True, timeout=60, env=env)
    assert res.returncode == 2
    assert res.stderr == "tinyjail: error: No space left on device\n"
    with open("/dev/full", "w") as full:
        res = subprocess.run([*tinyjail_cmd, "groups", "--of", "openat"], stdout=full, stderr=subprocess.PIPE,
                             text=True, timeout=60, env={**env, "TINYJAIL_DEBUG": "1"})
    assert res.returncode == 1  # the traceback, for whoever debugs tinyjail itself
    assert "Traceback" in res.stderr and "OSError: [Errno 28] No space left on device" in res.stderr


def test_oserror_line_names_the_reason_and_the_path(tmp_path: Path) -> None:
    from tinyjail.errors import describe_os_error

    missing = tmp_path / "nonexist"
    with pytest.raises(OSError) as opened:
        (missing / "x.bpf").read_bytes()
    assert describe_os_error(opened.value) == f"No such file or directory: {missing / 'x.bpf'}"
    with pytest.raises(OSError) as renamed:
        os.rename(missing / "a", missing / "b")
    expected = f"No such file or directory: {missing / 'a'} -> {missing / 'b'}"
    assert describe_os_error(renamed.value) == expected
