"""Chrome/Perfetto trace-event export: valid JSON whose events match the trace's tables."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from synthtrace import Call, build, ls_like
from tinyjail.tracer.chrome import export

from tinyjail.errors import TraceError


def _load(path: Path) -> dict:
    data = json.loads(path.read_text())
    assert isinstance(data["traceEvents"], list)
    return data


def test_every_syscall_is_one_complete_event(tmp_path: Path) -> None:
    trace = ls_like()
    out = tmp_path / "t.json"
    written = export(trace, out)
    data = _load(out)
    events = data["traceEvents"]
    assert written == len(events)
    complete = [e for e in events if e["ph"] == "X"]
    assert len(complete) == len(trace.events)
    assert Counter(e["name"] for e in complete) == Counter(trace.events["name"].astype(str))
    # times: µs from the first event, durations 400 ns -> 0.4 µs, errors carried in args
    t0 = data["otherData"]["t0_ns"]
    assert [e["ts"] for e in complete] == [(ts - t0) / 1000 for ts in trace.events["ts"]]
    assert {e["dur"] for e in complete} == {0.4}
    failed = [e for e in complete if "errno" in e["args"]]
    assert len(failed) == int(trace.events["errno"].notna().sum())
    assert {e["args"]["path"] for e in complete if "path" in e["args"]} == set(trace.events["path"].dropna())


def test_names_and_instants(tmp_path: Path) -> None:
    trace = ls_like()
    out = tmp_path / "t.json"
    export(trace, out)
    events = _load(out)["traceEvents"]
    meta = [e for e in events if e["ph"] == "M"]
    pids = set(trace.events["pid"]) | set(trace.processes["pid"])
    assert {e["pid"] for e in meta if e["name"] == "process_name"} == {int(p) for p in pids}
    assert {(e["pid"], e["tid"]) for e in meta if e["name"] == "thread_name"} == {
        (int(p), int(t)) for p, t in zip(trace.events["pid"], trace.events["tid"], strict=True)
    }
    instants = [e for e in events if e["ph"] == "i"]
    assert len(instants) == len(trace.processes) + len(trace.seccomp)
    execs = [e for e in instants if e["name"].startswith("exec ")]
    assert {e["args"]["filename"] for e in execs} == set(trace.processes["filename"].dropna())


def test_seccomp_records_become_instants(tmp_path: Path) -> None:
    trace = build(
        [Call("getpid", ret=4242), Call("ptrace", [0, 0], ret=-1)],
        seccomp=[{"ts": 10_000_001_500, "serial": 77, "pid": 4242, "comm": "ls", "exe": "/usr/bin/ls",
                  "nr": 101, "name": "ptrace", "arch": "x86_64", "action": "log", "ip": 0x1234, "sig": 0}],
    )
    out = tmp_path / "t.json"
    export(trace, out)
    data = _load(out)
    sec = [e for e in data["traceEvents"] if e.get("cat") == "seccomp"]
    assert len(sec) == 1
    assert sec[0]["name"] == "seccomp log ptrace"
    assert sec[0]["args"]["serial"] == 77
    assert data["otherData"]["t0_ns"] == int(trace.processes["ts"].min())  # the exec instant comes first
    assert sec[0]["ts"] == pytest.approx((10_000_001_500 - data["otherData"]["t0_ns"]) / 1000)


def test_joined_seccomp_record_is_on_its_calls_thread(tmp_path: Path) -> None:
    base = {"serial": 77, "pid": 4242, "comm": "ls", "exe": "/usr/bin/ls", "nr": 101, "name": "ptrace",
            "arch": "x86_64", "action": "log", "ip": 0x1234, "sig": 0}
    trace = build([Call("getpid", ret=4242)], seccomp=[
        {**base, "ts": 10_000_001_500, "tid": 4243, "audit_ts": 10_000_000_000},
        {**base, "ts": 10_000_002_000, "serial": 78, "tid": -1, "audit_ts": 10_000_002_000},  # not joined
    ])
    out = tmp_path / "t.json"
    export(trace, out)
    sec = [e for e in _load(out)["traceEvents"] if e.get("cat") == "seccomp"]
    assert [(e["pid"], e["tid"]) for e in sec] == [(4242, 4243), (4242, 4242)]


def test_lossy_trace_is_marked_where_it_is_seen(tmp_path: Path) -> None:
    lossy = build([Call("getpid", ret=4242)], dropped=1234)
    out = tmp_path / "lossy.json"
    export(lossy, out)
    data = _load(out)
    marks = [e for e in data["traceEvents"] if e["name"].startswith("LOSSY TRACE")]
    assert len(marks) == 1
    assert marks[0]["name"] == "LOSSY TRACE: 1,234 events dropped"
    assert (marks[0]["ph"], marks[0]["s"], marks[0]["ts"]) == ("i", "g", 0)
    assert data["otherData"]["dropped"] == 1234
    export(build([Call("getpid", ret=4242)]), tmp_path / "whole.json")
    assert not [e for e in _load(tmp_path / "whole.json")["traceEvents"] if "LOSSY" in e["name"]]


def test_unknown_duration_and_empty_trace(tmp_path: Path) -> None:
    trace = build([Call("read", [0, 0, 1], ret=-4)])
    trace.events.loc[0, "duration_ns"] = -1
    out = tmp_path / "t.json"
    export(trace, out)
    (x,) = [e for e in _load(out)["traceEvents"] if e["ph"] == "X"]
    assert x["dur"] == 0 and "unknown" in x["args"]["duration"]
    empty = build([])
    assert export(empty, tmp_path / "e.json") == 0
    assert _load(tmp_path / "e.json")["traceEvents"] == []


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    out.write_text("precious")
    with pytest.raises(TraceError, match="already exists"):
        export(ls_like(), out, force=False)
    assert out.read_text() == "precious"


@pytest.mark.root
@pytest.mark.bpf
def test_real_trace_export(tmp_path: Path) -> None:
    from tinyjail.tracer import record

    trace = record(["/bin/sh", "-c", "ls / > /dev/null; true"])
    out = tmp_path / "real.json"
    export(trace, out)
    events = _load(out)["traceEvents"]
    complete = [e for e in events if e["ph"] == "X"]
    assert Counter(e["name"] for e in complete) == Counter(trace.events["name"].astype(str))
    named = {e["pid"] for e in events if e["name"] == "process_name"}
    assert named == {int(p) for p in set(trace.events["pid"]) | set(trace.processes["pid"])}
    execs = [e for e in events if e["ph"] == "i" and e["name"].startswith("exec ")]
    assert {e["args"]["filename"] for e in execs} >= {"/bin/sh", "/usr/bin/ls"}
    assert min(e["ts"] for e in events if "ts" in e) == 0
