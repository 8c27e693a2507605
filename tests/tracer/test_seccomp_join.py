"""Seccomp audit records placed at the calls they logged: small frames, then real eBPF + audit."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from tinyjail.tracer.seccomp_join import SKEW_NS, join

from tinyjail import policy as P
from tinyjail import syscalls, timeline

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"
MS = 1_000_000
T0 = 5_000 * MS
NR = {n: syscalls.number(n) for n in ("getuid", "socket", "exit_group", "mkdir", "rt_sigreturn")}


def _records(*rows: tuple[int, int, str, int, str], start_serial: int = 100) -> pd.DataFrame:
    """(audit ts, pid, syscall, ip, action) -> a seccomp frame as the recorder builds it."""
    df = pd.DataFrame([
        {"ts": ts, "audit_ts": ts, "serial": start_serial + i, "pid": pid, "comm": "w", "exe": "/w",
         "nr": NR[name], "name": name, "arch": "x86_64", "action": action, "ip": ip, "sig": 0}
        for i, (ts, pid, name, ip, action) in enumerate(rows)
    ])
    return timeline.conform(df, timeline.SECCOMP_COLUMNS)


def _events(*rows: tuple[int, int, int, str, int], args0: list[int] | None = None) -> pd.DataFrame:
    """(ts, pid, tid, syscall, ip) -> an events frame."""
    df = pd.DataFrame([{"ts": ts, "pid": pid, "tid": tid, "nr": NR[name], "name": name, "ip": ip}
                       for ts, pid, tid, name, ip in rows])
    if args0 is not None:
        df["arg0"] = args0
    return timeline.conform(df, timeline.EVENT_COLUMNS)


NO_PROCS = timeline.empty_frame(timeline.PROCESS_COLUMNS)


def test_records_sharing_one_coarse_stamp_take_their_calls_in_order() -> None:
    # the coarse clock stamped all three 4 ms before the first call
    sec = _records(*[(T0, 7, "getuid", 0x40, "log")] * 3)
    ev = _events((T0 + 4 * MS, 7, 8, "getuid", 0x40), (T0 + 5 * MS, 7, 7, "getuid", 0x40),
                 (T0 + 6 * MS, 7, 8, "getuid", 0x40))
    out = join(sec, ev, NO_PROCS)
    assert out["ts"].tolist() == [T0 + 4 * MS, T0 + 5 * MS, T0 + 6 * MS]
    assert out["tid"].tolist() == [8, 7, 8]
    assert out["audit_ts"].tolist() == [T0] * 3
    assert out["serial"].tolist() == [100, 101, 102]
    assert sec["ts"].tolist() == [T0] * 3 and (sec["tid"] == -1).all()   # input untouched
    assert join(out, ev, NO_PROCS).equals(out)                           # joining again changes nothing


def test_ip_picks_the_call_site_and_each_call_is_used_once() -> None:
    sec = _records((T0, 7, "getuid", 0xB0, "log"), (T0, 7, "getuid", 0xA0, "log"),
                   (T0, 7, "getuid", 0xA0, "log"))
    ev = _events((T0 + 1 * MS, 7, 7, "getuid", 0xA0), (T0 + 2 * MS, 7, 7, "getuid", 0xB0))
    out = join(sec, ev, NO_PROCS)
    assert out["ts"].tolist() == [T0 + 2 * MS, T0 + 1 * MS, T0]      # the third has no call left
    assert out["tid"].tolist() == [7, 7, -1]


def test_only_same_pid_and_nr_at_or_after_the_stamp_less_the_skew() -> None:
    sec = _records((T0, 7, "getuid", 0, "log"))
    early = T0 - SKEW_NS - 1
    ev = _events((early, 7, 7, "getuid", 0x40), (T0 + MS, 9, 9, "getuid", 0x40),
                 (T0 + MS, 7, 7, "mkdir", 0x40), (T0 + 2 * MS, 7, 11, "getuid", 0x40))
    out = join(sec, ev, NO_PROCS)
    assert out["ts"].tolist() == [T0 + 2 * MS] and out["tid"].tolist() == [11]
    # a call just inside the skew allowance (the coarse clock ran late) is taken
    inside = _events((T0 - SKEW_NS + MS, 7, 7, "getuid", 0x40))
    assert join(sec, inside, NO_PROCS)["ts"].tolist() == [T0 - SKEW_NS + MS]


def test_sigreturn_is_matched_without_its_ip() -> None:
    """rt_sigreturn's recorded ip is the restored context's, not the trampoline's."""
    sec = _records((T0, 7, "rt_sigreturn", 0x7F00, "log"))
    ev = _events((T0 + MS, 7, 7, "rt_sigreturn", 0x5555))
    assert join(sec, ev, NO_PROCS)["ts"].tolist() == [T0 + MS]


def test_kill_goes_to_the_killed_call_else_the_task_end() -> None:
    procs = timeline.conform(pd.DataFrame([
        {"ts": T0 + 9 * MS, "kind": "exit", "pid": 7, "tid": 7, "ppid": -1, "comm": "w", "exit_code": -1},
    ]), timeline.PROCESS_COLUMNS)
    sec = _records((T0, 7, "mkdir", 0x40, "kill_process"))
    recorded = _events((T0 + 3 * MS, 7, 7, "mkdir", 0x40))          # exit-only: recorded at the task's exit
    assert join(sec, recorded, procs)["ts"].tolist() == [T0 + 3 * MS]
    group = _events((T0 + 5 * MS, 7, 12, "exit_group", 0x99))
    out = join(sec, group, procs)
    assert out["ts"].tolist() == [T0 + 5 * MS] and out["tid"].tolist() == [12]
    out = join(sec, _events((T0 + MS, 7, 7, "getuid", 0x40)), procs)
    assert out["ts"].tolist() == [T0 + 9 * MS] and out["tid"].tolist() == [7]
    # a log record never goes to the exit: no call, no placement
    logged = _records((T0, 7, "mkdir", 0x40, "log"))
    assert join(logged, group, procs)["ts"].tolist() == [T0]


def test_a_call_the_policy_allows_does_not_take_the_record() -> None:
    """socket(AF_UNIX) is allowed (never logged), socket(AF_INET) is not: the record is the second
    call's even though the first is nearer and has the same ip."""
    unix_only = [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]
    pol = P.from_dict({"defaultAction": "SCMP_ACT_ERRNO",
                       "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": unix_only}]})
    sec = _records((T0, 7, "socket", 0x40, "log"))
    ev = _events((T0 + MS, 7, 7, "socket", 0x40), (T0 + 2 * MS, 7, 7, "socket", 0x40), args0=[1, 2])
    assert join(sec, ev, NO_PROCS, pol)["ts"].tolist() == [T0 + 2 * MS]
    assert join(sec, ev, NO_PROCS)["ts"].tolist() == [T0 + MS]        # without the policy: nearest
    # a policy that would allow every such call (the filter had rules it does not show): all calls
    allow_all = P.from_dict({"defaultAction": "SCMP_ACT_ALLOW"})
    assert join(sec, ev, NO_PROCS, allow_all)["ts"].tolist() == [T0 + MS]


def test_traces_written_before_the_join_still_load(tmp_path: Path) -> None:
    for sample in sorted(p for p in SAMPLES.iterdir() if (p / "meta.json").exists()):
        trace = timeline.load(sample)
        assert list(trace.seccomp.columns) == list(timeline.SECCOMP_COLUMNS)
    old = tmp_path / "old"
    timeline.save(timeline.load(SAMPLES / "ls"), old)
    legacy = _records((T0, 7, "getuid", 0x40, "log")).drop(columns=["audit_ts", "tid"])
    legacy.to_parquet(old / "seccomp.parquet", index=False)
    sec = timeline.load(old).seccomp
    assert sec["audit_ts"].tolist() == [T0] and sec["ts"].tolist() == [T0] and sec["tid"].tolist() == [-1]


# --- real eBPF + audit ---------------------------------------------------------------------------


def _assert_each_record_on_its_own_call(trace: timeline.Trace) -> None:
    sec, ev = trace.seccomp, trace.events
    assert len(sec) > 0
    keys = ["ts", "pid", "tid", "nr"]
    hits = sec.merge(ev[[*keys, "ip"]].rename(columns={"ip": "ev_ip"}), on=keys, how="left", indicator=True)
    assert (hits["_merge"] == "both").all(), sec[hits["_merge"] != "both"]
    same_ip = (hits["ip"] == hits["ev_ip"]) | hits["name"].astype(str).isin(["rt_sigreturn", "execve"])
    assert same_ip.all()
    assert not sec.duplicated(keys).any()                                  # one record per call
    assert (sec["ts"] >= sec["audit_ts"] - SKEW_NS).all()
    for _, group in sec.groupby(["pid", "nr"]):                           # serial order = call order
        assert group.sort_values("serial")["ts"].is_monotonic_increasing


@pytest.mark.bpf
def test_complain_records_sit_on_their_calls(tmp_path: Path) -> None:
    """The audit's example: ls's profile under a shell that also runs mkdir."""
    from tinyjail.tracer import record

    pol = P.load(SAMPLES / "ls.json")
    target = tmp_path / "d2"
    trace = record(["/bin/sh", "-c", f"mkdir -p {target}; ls {tmp_path} >/dev/null"],
                   output=tmp_path / "t", policy=pol, mode="complain")
    sec = trace.seccomp
    assert "mkdir" in set(sec["name"].astype(str))
    _assert_each_record_on_its_own_call(trace)
    assert sec["ts"].nunique() == len(sec) > sec["audit_ts"].nunique()
    first, last = int(trace.events["ts"].min()), int(trace.events["ts"].max())
    assert sec["ts"].between(first, last).all()
    # mkdir -p makes one mkdir per path component, each logged: record k sits on call k
    mkdir = sec[sec["name"].astype(str) == "mkdir"].sort_values("serial")
    calls = trace.events[(trace.events["name"].astype(str) == "mkdir")].sort_values("ts")
    assert mkdir["ts"].tolist() == calls["ts"].tolist()
    assert str(calls["path"].iloc[-1]).endswith("d2")   # mkdir -p walks down relative to each parent


@pytest.mark.bpf
@pytest.mark.parametrize("durations", [False, True], ids=["exit-only", "durations"])
def test_a_kill_sits_at_the_end_of_the_killed_process(tmp_path: Path, durations: bool) -> None:
    from tinyjail.tracer import record

    pol = P.from_dict({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL_PROCESS"}]})
    trace = record(["/bin/sh", "-c", f"exec mkdir {tmp_path / 'x'}"], output=tmp_path / "t", policy=pol,
                   mode="enforce", durations=durations)
    sec = trace.seccomp
    assert sec["action"].astype(str).tolist() == ["kill_process"]
    pid = int(sec["pid"].iloc[0])
    exits = trace.processes[(trace.processes["kind"].astype(str) == "exit") & (trace.processes["pid"] == pid)]
    mkdir = trace.events[(trace.events["name"].astype(str) == "mkdir") & (trace.events["pid"] == pid)]
    placed = int(sec["ts"].iloc[0])
    assert placed in set(mkdir["ts"].tolist()) | set(exits["ts"].tolist())
    assert int(sec["tid"].iloc[0]) == pid
    assert placed <= int(exits["ts"].max())
    assert placed >= int(sec["audit_ts"].iloc[0])
