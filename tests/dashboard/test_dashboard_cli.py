"""`tinyjail dashboard` as a real subprocess: loopback by default, a loud warning otherwise,
one-line errors for bad input, the bundled samples when no TRACE is given."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import SAMPLE_DIRS, SAMPLES

RunCli = Callable[..., subprocess.CompletedProcess[str]]


@contextmanager
def dashboard(*args: str) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """Start the dashboard; yield (process, URL it printed, stderr so far); stop it after."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinyjail", "dashboard", "--no-browser", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        assert " at http://" in line, line + proc.stderr.read()
        url = line.split(" at ")[1].split()[0]
        # The warning (if any) is written before the URL line: take what stderr holds now.
        fd = proc.stderr.fileno()
        os.set_blocking(fd, False)
        time.sleep(0.2)
        try:
            err = os.read(fd, 1 << 16).decode()
        except BlockingIOError:
            err = ""
        yield proc, url, err
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def listening_address(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        ip_hex, port_hex = local.split(":")
        if int(port_hex, 16) == port and state == "0A":  # LISTEN
            found.add(".".join(str(int(ip_hex[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


@pytest.mark.skipif(not SAMPLE_DIRS, reason="no sample traces")
def test_binds_loopback_and_serves_the_named_trace() -> None:
    with dashboard(str(SAMPLES / "curl")) as (_proc, url, err):
        assert url.startswith("http://127.0.0.1:")
        assert "WARNING" not in err
        port = int(url.rsplit(":", 1)[1].strip("/"))
        assert listening_address(port) == {"127.0.0.1"}
        page = urllib.request.urlopen(url, timeout=10).read().decode()
        assert "tinyjail dashboard" in page
        layout = urllib.request.urlopen(url + "_dash-layout", timeout=30).read().decode()
        assert "curl -sS" in layout  # the Overview is rendered into the layout
        assert str(SAMPLES) not in layout  # and no file path reaches the browser


@pytest.mark.skipif(not SAMPLE_DIRS, reason="no sample traces")
def test_warns_loudly_off_loopback() -> None:
    with dashboard(str(SAMPLES / "ls"), "--host", "0.0.0.0") as (_proc, url, err):
        assert url.startswith("http://0.0.0.0:")
        assert "WARNING: listening on 0.0.0.0, not loopback" in err
        assert "no authentication" in err


@pytest.mark.skipif(not SAMPLE_DIRS, reason="no sample traces")
def test_no_trace_opens_the_samples() -> None:
    with dashboard() as (_proc, url, _err):
        layout = urllib.request.urlopen(url + "_dash-layout", timeout=30).read().decode()
        for d in SAMPLE_DIRS:
            assert f": {d.name}" in layout  # each sample is in the trace picker


def test_bad_trace_is_one_line(run_cli: RunCli, tmp_path: Path) -> None:
    r = run_cli("dashboard", "--no-browser", str(tmp_path / "nope"))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"tinyjail: error: {tmp_path / 'nope'}: not a trace directory (expected a folder made by "
        "'tinyjail trace -o')"
    ]


@pytest.mark.skipif(not SAMPLE_DIRS, reason="no sample traces")
def test_bad_static_is_one_line(run_cli: RunCli, tmp_path: Path) -> None:
    static = tmp_path / "static.json"
    static.write_text(json.dumps(["read", "opne"]))
    r = run_cli("dashboard", "--no-browser", "--static", str(static), str(SAMPLES / "ls"))
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert line == f'tinyjail: error: {static}: $[1]: unknown syscall "opne" (did you mean "open"?)'


@pytest.mark.skipif(not SAMPLE_DIRS, reason="no sample traces")
def test_port_in_use_is_one_line(run_cli: RunCli) -> None:
    with dashboard(str(SAMPLES / "ls")) as (_proc, url, _err):
        port = url.rsplit(":", 1)[1].strip("/")
        r = run_cli("dashboard", "--no-browser", "--port", port, str(SAMPLES / "ls"))
        assert r.returncode == 2
        assert r.stderr.startswith(f"tinyjail: error: cannot listen on 127.0.0.1:{port}: ")
        assert "choose another --port" in r.stderr and "Traceback" not in r.stderr
