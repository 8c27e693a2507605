"""`explain`: description, groups, risk, and what the traces and a policy say about one syscall."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from synthtrace import OPEN_STACK, Call, build, ls_like
from tinyjail.tracer.explain import Explanation, explain, renderable
from tinyjail.tracer.profile import generate

from tinyjail import policy as P
from tinyjail.errors import UsageError
from tinyjail.groups import groups_of
from tinyjail.symbols import render
from tinyjail.timeline import load, save

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"


def _text(expl: Explanation) -> str:
    console = Console(record=True, width=220, color_system=None)
    console.print(renderable(expl))
    return console.export_text()


@pytest.mark.parametrize("alias", ["openat", "SYS_openat", "__NR_openat", "257", 257])
def test_aliases(alias: str | int) -> None:
    assert explain(alias).name == "openat"


def test_unknown_syscall_suggests() -> None:
    with pytest.raises(UsageError, match='did you mean "openat"'):
        explain("opneat")


def test_without_trace_still_describes() -> None:
    expl = explain("ptrace")
    assert expl.description and "trace" in expl.description.lower()
    assert expl.groups == groups_of("ptrace") and "@debug" in expl.groups
    assert expl.dangerous and expl.risk
    text = _text(expl)
    assert expl.description in text and "@debug" in text and "risk:" in text
    assert "calls in" not in text  # no trace given: nothing claimed about one


def test_counts_processes_sites_paths_and_flags() -> None:
    trace = ls_like()
    expl = explain("openat", [trace])
    mine = trace.events[trace.events["name"].astype(str) == "openat"]
    assert expl.count == len(mine)
    assert {(p.pid, p.comm, p.count) for p in expl.processes} == {
        (int(pid), str(comm), int(n))
        for (pid, comm), n in mine.astype({"comm": str}).groupby(["pid", "comm"]).size().items()
    }
    assert dict(expl.failed) == {"ENOENT": 1}
    assert {p for p, _ in expl.paths} == set(mine["path"].dropna())
    top = expl.call_sites[0]
    assert top.count == 2 and top.frames[0] == f"libc.so.6!{OPEN_STACK[0][1]}+{OPEN_STACK[0][2]:#x}"
    assert top.first_ts == int(mine[mine["stack_id"] >= 0]["ts"].min())
    assert top.first_offset_ns == top.first_ts - int(trace.processes["ts"].min())
    assert any("no stack taken" in f for s in expl.call_sites for f in s.frames)
    flags = next(a for a in expl.args if a.index == 2)
    expected = {render("openat", 2, int(v), "SCMP_CMP_EQ") for v in mine["arg2"]}
    assert {t for t, _ in flags.values} == expected
    text = _text(expl)
    assert f"{expl.count} calls in" in text and "ENOENT 1" in text and "/etc/nonexistent" in text
    assert "__open64_nocancel" in text and "O_DIRECTORY" in text


def test_not_called_names_relatives() -> None:
    expl = explain("SYS_open", [ls_like()])
    assert not expl.seen and expl.count == 0
    assert expl.relatives[0].name == "openat" and expl.relatives[0].why == "same job"
    text = _text(expl)
    assert "not called in" in text and "openat (3x, same job)" in text
    # relatives through a shared group when no family member was called
    stat = explain("statfs", [ls_like()])
    assert any(r.why.startswith("also in @") for r in stat.relatives)


def test_relatives_order_is_the_same_in_every_run() -> None:
    """Ties (same count) are ordered by name, whatever the interpreter's hash seed."""
    import os
    import subprocess
    import sys

    code = ("from tinyjail.timeline import load\n"
            "from tinyjail.tracer.explain import relatives_seen\n"
            f"for r in relatives_seen('open', [load({str(SAMPLES / 'ls')!r})]):\n"
            "    print(r.name, r.count, r.why)\n")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in range(4)}
    assert len(runs) == 1
    rows = [line.split(" ", 2) for line in runs.pop().splitlines()]
    assert rows[0][:2] == ["openat", "44"]
    mates = [(-int(n), name) for name, n, why in rows[1:] if why == "also in @file-system"]
    assert len(mates) == 5 and mates == sorted(mates)
    assert len({n for n, _ in mates}) < len(mates)   # the sample has ties to order


def test_policy_verdicts() -> None:
    trace = ls_like()
    pol = generate([trace])
    pol.source = "ls.json"
    ok = explain("socket", [trace], pol)
    assert ok.verdict is not None and ok.verdict.conditional
    assert ok.verdict.recorded_allowed == ok.count and ok.verdict.recorded_denied == 0
    assert "allows all 2 recorded calls" in _text(ok)
    # a policy made from another program's trace denies this one's sockets
    other = generate([build([Call("socket", ["AF_INET6", "SOCK_STREAM", 0], ret=3)])])
    bad = explain("socket", [trace], other)
    assert bad.verdict is not None and bad.verdict.recorded_denied == 2
    assert "denies 2 of 2 recorded calls" in _text(bad)
    never = explain("ptrace", [trace], pol)
    assert never.verdict is not None and never.verdict.action == "SCMP_ACT_ERRNO" and never.verdict.errno == 1
    assert "denies it: SCMP_ACT_ERRNO (errno 1)" in _text(never)


def test_fallback_of_an_argument_rule_is_the_default_not_what_zero_args_match() -> None:
    """tar.json allows clone only without CLONE_NEW* flags: all-zero args match that rule, yet a
    call outside it gets the default action, and that is what the verdict must say."""
    tar = P.load(SAMPLES / "tar.json")
    expl = explain("clone", [load(SAMPLES / "tar")], tar)
    v = expl.verdict
    assert v is not None and v.conditional and v.conditional_actions == ["SCMP_ACT_ALLOW"]
    assert (v.action, v.errno) == ("SCMP_ACT_ERRNO", 1)
    assert P.evaluate(tar, "clone", [0x10000000, 0, 0, 0, 0, 0]) == (v.action, v.errno)  # CLONE_NEWUSER
    assert v.recorded_allowed == expl.count > 0 and v.recorded_denied == 0
    assert "allowed only for some argument values (otherwise SCMP_ACT_ERRNO (errno 1))" in _text(expl)
    # the same trace's profile written with --default kill
    kill = generate([load(SAMPLES / "tar")], default="kill")
    kv = explain("clone", [], kill).verdict
    assert kv is not None and kv.conditional and (kv.action, kv.errno) == ("SCMP_ACT_KILL_PROCESS", None)
    assert P.evaluate(kill, "clone", [0x10000000, 0, 0, 0, 0, 0])[0] == "SCMP_ACT_KILL_PROCESS"


@pytest.mark.parametrize("sample", ["curl", "ls", "python-imports", "sqlite3", "tar"])
def test_fallback_agrees_with_the_filter_on_every_sample_profile(sample: str) -> None:
    """For each argument-rule syscall of each committed profile, a call matching none of its rules
    (every checked argument set to a value no rule of the sample accepts) gets the stated fallback."""
    from tinyjail.tracer.explain import otherwise_action

    pol = P.load(SAMPLES / f"{sample}.json")
    conditional = {r.name for r in P.effective_rules(pol) if r.args}
    assert conditional
    for name in sorted(conditional):
        expected = (pol.default_action, P.ret_errno(pol.default_action, pol.default_errno_ret))
        assert otherwise_action(pol, name) == expected
        outside = [0x7EAD_BEEF_7EAD_BEEF] * 6   # no flag set, request, domain or type of the samples
        assert P.evaluate(pol, name, outside) == expected


def test_fallback_with_a_deny_rule_over_an_allowing_default_and_an_unconditional_rule() -> None:
    pol = P.from_dict({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 0, "value": 0x10000000, "valueTwo": 0x10000000, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["ptrace"], "action": "SCMP_ACT_KILL_PROCESS"},
        ],
    })
    pol.source = "deny.json"
    v = explain("unshare", [], pol).verdict
    assert v is not None and v.conditional and (v.action, v.errno) == ("SCMP_ACT_ALLOW", None)
    assert v.conditional_actions == ["SCMP_ACT_ERRNO"]
    text = _text(explain("unshare", [], pol))
    assert "SCMP_ACT_ERRNO for some argument values (otherwise SCMP_ACT_ALLOW)" in text
    assert P.evaluate(pol, "unshare", [0x10000000, 0, 0, 0, 0, 0]) == ("SCMP_ACT_ERRNO", 13)
    plain = explain("ptrace", [], pol).verdict
    assert plain is not None and not plain.conditional and plain.action == "SCMP_ACT_KILL_PROCESS"


def test_cli_json_names_the_fallback(run_cli: Callable) -> None:
    import json

    done = run_cli("explain", "clone", "--policy", str(SAMPLES / "tar.json"), "--json")
    assert done.returncode == 0, done.stderr
    verdict = json.loads(done.stdout)["verdict"]
    assert verdict["action"] == "SCMP_ACT_ERRNO" and verdict["errno"] == 1 and verdict["conditional"]


def test_cli(tmp_path: Path, run_cli: Callable) -> None:
    tdir = save(ls_like(), tmp_path / "ls.trace")
    pol = generate([ls_like()])
    P.save(pol, tmp_path / "p.json")
    done = run_cli("explain", "__NR_open", "--trace", str(tdir), "--policy", str(tmp_path / "p.json"))
    assert done.returncode == 0, done.stderr
    assert "not called in ls.trace" in done.stdout and "openat" in done.stdout and "denies it" in done.stdout
    seen = run_cli("explain", "257", "-t", str(tdir))
    assert seen.returncode == 0 and "3 calls in ls.trace" in seen.stdout and "/etc/ld.so.cache" in seen.stdout
    bad = run_cli("explain", "opneat")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and 'did you mean "openat"' in bad.stderr
    plain = run_cli("explain", "mount")
    assert plain.returncode == 0 and "@mount" in plain.stdout


@pytest.mark.root
@pytest.mark.bpf
def test_real_trace_call_sites_and_paths(tmp_path: Path) -> None:
    from tinyjail.tracer import record

    target = tmp_path / "hello.txt"
    target.write_text("hello\n")
    trace = record(["/bin/cat", str(target), str(tmp_path / "missing")])
    ev = trace.events
    opens = ev[ev["name"].astype(str) == "openat"]
    expl = explain("SYS_openat", [trace], generate([trace]))
    assert expl.count == len(opens) > 0
    assert (str(target), 1) in expl.paths and (str(tmp_path / "missing"), 1) in expl.paths
    assert dict(expl.failed).get("ENOENT", 0) >= 1
    assert {p.comm for p in expl.processes} == {"cat"}
    assert sum(s.count for s in expl.call_sites) <= expl.count and expl.call_sites
    assert any("libc.so.6" in f or "ld-linux" in f for s in expl.call_sites for f in s.frames)
    assert all(s.first_offset_ns >= 0 for s in expl.call_sites)
    assert expl.verdict is not None and expl.verdict.recorded_denied == 0
    assert expl.verdict.recorded_allowed == expl.count
    text = _text(expl)
    assert str(target) in text and "O_RDONLY" in text


def test_lossy_trace_is_flagged() -> None:
    lossy = build([Call("getpid", ret=4242)], dropped=5)
    expl = explain("getpid", [lossy])
    assert expl.lossy and "5 dropped" in expl.lossy[0]
    assert "warning: lossy trace" in _text(expl)
