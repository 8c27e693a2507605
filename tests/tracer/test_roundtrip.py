"""Acceptance: trace a real workload, make its profile, run it enforced with that profile: zero kills,
same output. And: the committed sample traces' profiles allow every recorded event."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tinyjail.tracer.profile import generate

from tinyjail import policy as P
from tinyjail.timeline import load

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_traces"

PYTHON_SCRIPT = (
    "import json, sqlite3, hashlib, threading\n"
    "db = sqlite3.connect(':memory:')\n"
    "db.execute('create table t(x)')\n"
    "db.executemany('insert into t values (?)', [(i,) for i in range(1000)])\n"
    "out = []\n"
    "t = threading.Thread(target=lambda: out.append(hashlib.sha256(b'tinyjail').hexdigest()))\n"
    "t.start(); t.join()\n"
    # join() returns before the OS thread has run its last calls (glibc frees its stack with
    # madvise, then exit); if exit_group came first they would not happen at all in one run and
    # happen in the other. Wait for the thread to be gone, always sleeping once, so both runs
    # make the same calls.
    "import os, time\n"
    "time.sleep(0.001)\n"
    "while len(os.listdir('/proc/self/task')) > 1: time.sleep(0.001)\n"
    "print(json.dumps({'sum': db.execute('select sum(x) from t').fetchone()[0], 'sha': out[0]}))\n"
)


def _workload(kind: str, tmp: Path, out_name: str) -> list[str]:
    if kind == "tar-ls":
        src = tmp / "src"
        if not src.exists():
            (src / "sub").mkdir(parents=True)
            for i in range(20):
                (src / "sub" / f"f{i}.txt").write_text(f"file {i}\n" * (i + 1))
            (src / "README").write_text("tinyjail round trip\n")
        out = tmp / out_name
        # tar forks gzip (fork + exec + pipe); sh forks tar, sort, ls
        return ["/bin/sh", "-c", f"tar czf {out} -C {src} . && tar tzf {out} | sort && ls -la {src}/sub"]
    return ["/usr/bin/python3", "-I", "-c", PYTHON_SCRIPT]


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["tar-ls", "python"])
def test_trace_profile_enforce_round_trip(kind: str, tmp_path: Path, run_cli: Callable) -> None:
    trace_dir, profile = tmp_path / "trace", tmp_path / "profile.json"
    traced = run_cli("trace", "-o", str(trace_dir), "--", *_workload(kind, tmp_path, "a.tgz"), timeout=300)
    assert traced.returncode == 0, traced.stderr
    assert traced.stdout.strip(), "the workload printed nothing: nothing to compare"
    trace = load(trace_dir)
    assert trace.dropped == 0 and len(trace.events) > 100
    made = run_cli("profile", str(trace_dir), "-o", str(profile), "--default", "kill")
    assert made.returncode == 0, made.stderr
    pol = P.load(profile)
    assert pol.default_action == "SCMP_ACT_KILL_PROCESS"
    names = {n for r in pol.syscalls for n in r.names}
    assert "execve" in names and len(names) < 150  # the workload's set, not everything

    enforced = run_cli(
        "run",
        "--mode",
        "enforce",
        "--policy",
        str(profile),
        "--",
        *_workload(kind, tmp_path, "b.tgz"),
        timeout=300,
    )
    assert enforced.returncode == 0, f"killed or failed under its own profile: {enforced.stderr}"
    assert enforced.stdout == traced.stdout

    # the profile really is deny-by-default: a syscall the workload never made kills the process
    # (mkdir's own mkdir call; everything before it, the loader's calls, is in the profile)
    denied = run_cli(
        "run", "--mode", "enforce", "--policy", str(profile), "--", "/bin/mkdir", str(tmp_path / "new")
    )
    assert "mkdir" not in names
    assert denied.returncode == 159, denied.stderr  # 128 + SIGSYS: killed by the filter
    assert "killed by seccomp" in denied.stderr and not (tmp_path / "new").exists()


def _samples() -> list[Path]:
    return sorted(p.parent for p in SAMPLES.glob("*/meta.json"))


def test_sample_traces_exist() -> None:
    names = [p.name for p in _samples()]
    assert len(names) >= 5, f"expected at least five recorded sample traces in {SAMPLES}, found {names}"
    for sample in _samples():
        size = sum(f.stat().st_size for f in sample.rglob("*") if f.is_file())
        assert size < 5 * 1024 * 1024, f"{sample}: {size} bytes (limit 5 MB)"
        assert (SAMPLES / f"{sample.name}.json").is_file(), f"{sample.name}: no generated profile committed"
        assert load(sample).dropped == 0


@pytest.mark.parametrize("sample", _samples(), ids=lambda p: p.name)
def test_sample_profiles_allow_every_recorded_event(sample: Path) -> None:
    trace = load(sample)
    committed = P.load(SAMPLES / f"{sample.name}.json")
    regenerated = generate([trace])
    ev = trace.events
    cols = [f"arg{i}" for i in range(6)]
    for pol in (committed, regenerated):
        for name, *args in zip(ev["name"].astype(str), *(ev[c] for c in cols), strict=True):
            action, _ = P.evaluate(pol, name, tuple(int(a) for a in args))
            assert action not in P.DENY_ACTIONS, (
                f"{sample.name}: {name} denied by {pol.source or 'regenerated'}"
            )
    assert _without_comments(json.loads(P.dumps(regenerated))) == _without_comments(
        json.loads((SAMPLES / f"{sample.name}.json").read_text())
    ), f"{sample.name}.json is stale: re-run tools/record_samples.sh"


def _without_comments(obj: dict) -> dict:
    """Rules as the filter sees them (comments name the trace, which differs by how it was loaded)."""
    return {**obj, "syscalls": [{k: v for k, v in r.items() if k != "comment"} for r in obj["syscalls"]]}
