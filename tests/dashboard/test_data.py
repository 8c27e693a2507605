"""The dashboard's numbers: aggregations and timeline downsampling checked against the raw trace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_DIRS, sample_trace
from tinyjail.dashboard import data
from tinyjail.dashboard.downsample import build_index, window_from_relayout
from tinyjail.dashboard.state import DashboardState

from tinyjail import groups, policy, syscalls
from tinyjail.errors import UsageError
from tinyjail.timeline import Trace, load

# -- overview ---------------------------------------------------------------------------------


def test_summary_counts_tasks_and_events(synth: Trace) -> None:
    s = data.summary(synth, "w")
    assert s.events == len(synth.events)
    assert s.processes == 5 and s.threads == 9  # parent + 4 workers, each worker with 2 threads
    assert s.syscalls == synth.events["name"].nunique()
    assert s.errors == int((synth.events["ret"] < 0).sum()) > 0
    assert s.seccomp == len(synth.seccomp) > 0
    assert s.dropped == 0 and s.duration_ns == synth.meta["duration_ns"]


def test_syscall_counts_match_the_events(synth: Trace) -> None:
    counts = data.syscall_counts(synth.events)
    assert counts["count"].sum() == len(synth.events)
    assert counts["count"].is_monotonic_decreasing
    ev = synth.events.astype({"name": "string"})
    for name in ("openat", "read", "connect"):
        row = counts[counts["name"] == name].iloc[0]
        mine = ev[ev["name"] == name]
        assert row["count"] == len(mine)
        assert row["errors"] == int((mine["ret"] < 0).sum())
        assert row["pids"] == mine["pid"].nunique()


def test_group_counts_sum_their_members(synth: Trace) -> None:
    counts = data.syscall_counts(synth.events)
    by_name = dict(zip(counts["name"], counts["count"], strict=True))
    g = data.group_counts(counts)
    assert "@known" not in set(g["group"]) and "@system-service" not in set(g["group"])
    for row in g.itertuples():
        if row.group == data.OTHER:
            continue
        members = groups.expand(row.group) & by_name.keys()
        assert row.calls == sum(by_name[m] for m in members)
        assert row.syscalls == len(members)
    assert data.colour_group("read") == "@basic-io"
    assert data.colour_group("openat") == "@file-system"
    assert data.colour_group("clone") == "@process"


# -- seen vs missed ---------------------------------------------------------------------------


@pytest.fixture
def strict_policy() -> policy.Policy:
    return policy.from_dict(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read", "write", "close", "execve"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["futex"], "action": "SCMP_ACT_LOG"},
                {
                    "names": ["ioctl"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 1, "value": 0x5401, "op": "SCMP_CMP_EQ"}],
                },
            ],
        },
        source="strict.json",
    )


def test_seen_vs_missed_statuses(synth: Trace, strict_policy: policy.Policy) -> None:
    static = frozenset({"socket", "bind"})
    df = data.seen_vs_missed(synth.events, strict_policy, static).set_index("name")
    ev = synth.events.astype({"name": "string"})
    assert df.loc["read", "status"] == data.STATUS_ALLOWED and df.loc["read", "refused"] == 0
    assert df.loc["openat", "status"] == data.STATUS_DENIED
    assert df.loc["openat", "refused"] == (ev["name"] == "openat").sum()
    assert df.loc["futex", "status"] == data.STATUS_LOGGED
    assert df.loc["execve", "status"] == data.STATUS_UNUSED and df.loc["execve", "calls"] == 0
    assert df.loc["bind", "status"] == data.STATUS_STATIC and bool(df.loc["bind", "static"])
    assert df.loc["socket", "status"] == data.STATUS_DENIED and bool(df.loc["socket", "static"])
    assert not bool(df.loc["read", "static"])
    # ioctl is allowed for TCGETS only: the other recorded requests are refused, call by call.
    ioctl = ev[ev["name"] == "ioctl"]
    assert df.loc["ioctl", "status"] == data.STATUS_DENIED
    assert df.loc["ioctl", "refused"] == int((ioctl["arg1"] != 0x5401).sum()) > 0
    # Most urgent first.
    order = [data.STATUS_ORDER.index(s) for s in df["status"]]
    assert order == sorted(order)


def test_never_seen_syscall_with_argument_rules_shows_both_actions() -> None:
    """ls never calls clone; tar's profile allows clone only without CLONE_NEW* flags. The row
    must not show the verdict for all-zero arguments (which happen to pass the rule)."""
    ls = sample_trace("ls")
    tar = policy.load(next(p for p in SAMPLE_DIRS if p.name == "tar").with_suffix(".json"))
    df = data.seen_vs_missed(ls.events, tar).set_index("name")
    assert df.loc["clone", "calls"] == 0
    assert df.loc["clone", "action"] == "SCMP_ACT_ALLOW for some arguments, else SCMP_ACT_ERRNO"
    assert df.loc["wait4", "action"] == "SCMP_ACT_ALLOW"        # a plain rule: one action


def test_seen_vs_missed_without_static_has_no_static_rows(synth: Trace, strict_policy: policy.Policy) -> None:
    df = data.seen_vs_missed(synth.events, strict_policy, None)
    assert data.STATUS_STATIC not in set(df["status"])
    assert df["static"].isna().all()


def test_load_static_formats(tmp_path: Path) -> None:
    f = tmp_path / "s.json"
    f.write_text(json.dumps(["read", "SYS_openat", "__NR_close", 2]))
    assert data.load_static(f) == {"read", "openat", "close", "open"}
    f.write_text(json.dumps({"syscalls": [{"name": "mmap"}, "brk"]}))
    assert data.load_static(f) == {"mmap", "brk"}
    f.write_text(json.dumps({"futex": 3}))
    assert data.load_static(f) == {"futex"}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('["read", "opne"]', '$[1]: unknown syscall "opne" (did you mean "open"?)'),
        ("not json", "not JSON"),
        ('{"syscalls": "read"}', "$.syscalls: expected a list"),
        ("[true]", "$[0]: expected a syscall name"),
    ],
)
def test_load_static_rejects_bad_input(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text(text)
    with pytest.raises(UsageError) as err:
        data.load_static(f)
    assert needle in str(err.value) and str(f) in str(err.value)


# -- call sites -------------------------------------------------------------------------------


def test_call_sites_rank_every_call(synth: Trace) -> None:
    sites = data.call_sites(synth, "openat")
    calls = int((synth.events["name"] == "openat").sum())
    assert sites.calls == calls and sites.stacks["count"].sum() == calls
    assert sites.stacks["count"].is_monotonic_decreasing
    assert list(sites.stacks["rank"]) == list(range(1, len(sites.stacks) + 1))
    top = sites.stacks.iloc[0]
    assert top["frames"][0].startswith("__libc_openat")  # innermost first
    assert sites.errors["count"].sum() == calls
    assert set(sites.paths["path"]) <= set(synth.events["path"].dropna())
    tree = data.stack_tree(sites)
    assert tree.iloc[0]["value"] == calls and tree["id"].is_unique
    values = dict(zip(tree["id"], tree["value"], strict=True))
    for parent, group in tree[tree["parent"] != ""].groupby("parent"):
        assert group["value"].sum() <= values[parent]


def test_call_sites_without_stacks_are_grouped_by_ip(synth: Trace) -> None:
    ev = synth.events.copy()
    mask = ev["name"] == "read"
    ev.loc[mask, "stack_id"] = -1
    tr = Trace(
        events=ev, processes=synth.processes, stacks=synth.stacks, seccomp=synth.seccomp, meta=synth.meta
    )
    sites = data.call_sites(tr, "read")
    assert (sites.stacks["stack_id"] == -1).all()
    assert sites.stacks["count"].sum() == int(mask.sum())
    assert len(sites.stacks) == ev.loc[mask, "ip"].nunique()
    assert all(data.NO_STACK in f[0] for f in sites.stacks["frames"])


# -- compare ----------------------------------------------------------------------------------


def test_compare_counts(synth: Trace) -> None:
    a = data.syscall_counts(synth.events)
    b = a[a["name"] != "read"].copy()
    b = pd.concat([b, pd.DataFrame({"name": ["bind"], "count": [7]})], ignore_index=True)
    b.loc[b["name"] == "write", "count"] += 5
    cmp = data.compare_counts(a, b).set_index("name")
    assert cmp.loc["read", "where"] == "only A" and cmp.loc["read", "b"] == 0
    assert cmp.loc["bind", "where"] == "only B" and cmp.loc["bind", "delta"] == 7
    assert cmp.loc["write", "delta"] == 5 and cmp.loc["write", "where"] == "both"


# -- policy editing ---------------------------------------------------------------------------


def test_edit_policy_toggles_names(strict_policy: policy.Policy) -> None:
    enabled = (data.allowed_names_of(strict_policy) - {"read"}) | {"bind"}
    edited = data.edit_policy(strict_policy, enabled)
    again = policy.loads(policy.dumps(edited))
    assert policy.evaluate(again, "read")[0] == "SCMP_ACT_ERRNO"
    assert policy.evaluate(again, "bind")[0] == "SCMP_ACT_ALLOW"
    assert policy.evaluate(again, "futex")[0] == "SCMP_ACT_LOG"  # LOG rule kept as is
    assert policy.evaluate(again, "ioctl", (0, 0x5401, 0, 0, 0, 0))[0] == "SCMP_ACT_ALLOW"
    assert policy.evaluate(again, "ioctl", (0, 0x541B, 0, 0, 0, 0))[0] == "SCMP_ACT_ERRNO"  # narrowing kept
    assert again.default_action == strict_policy.default_action


def test_edit_policy_writes_whole_groups(strict_policy: policy.Policy) -> None:
    signal = sorted(groups.expand("@signal"))
    edited = data.edit_policy(strict_policy, [*signal, "read"], use_groups=True)
    names = [n for r in edited.syscalls for n in r.names]
    assert "@signal" in names and "rt_sigaction" not in names
    for n in signal:
        if syscalls.number(n) is not None:  # x86-only names (…_time64) do not exist on x86_64
            assert policy.allowed(edited, n)


def test_group_toggles() -> None:
    uni = ["read", "write", "socket", "bind", "connect", "openat"]
    assert "@network-io" not in data.group_state(uni, ["socket"])
    on = data.toggle_groups(uni, ["read"], [], ["@network-io"])
    assert set(on) == {"read", "socket", "bind", "connect"}
    assert "@network-io" in data.group_state(uni, on)
    off = data.toggle_groups(uni, on, ["@network-io"], [])
    assert off == ["read"]


# -- timeline downsampling --------------------------------------------------------------------


def test_index_lanes_and_marks(synth: Trace) -> None:
    ix = build_index(synth)
    tasks = synth.events[["pid", "tid"]].drop_duplicates()
    assert len(ix.lanes) == len(tasks)
    assert list(ix.lanes["pid"]) == sorted(ix.lanes["pid"])
    assert len(ix.marks) == len(synth.processes)
    assert len(ix.seccomp) == len(synth.seccomp)
    assert bool(np.all(np.diff(ix.ts) >= 0))
    # Each event's lane is its (pid, tid).
    ev = synth.events
    for k in (0, 100, len(ev) - 1):
        row = ix.row[k]
        lane = ix.lanes.iloc[ix.lane[k]]
        assert (lane["pid"], lane["tid"]) == (ev["pid"].iloc[row], ev["tid"].iloc[row])


def test_seccomp_marks_sit_on_their_calls_thread(synth: Trace) -> None:
    """A record joined to its call is drawn on that (pid, tid) lane; one without a tid (older
    traces, unmatched records) on its process's main thread."""
    sec = synth.seccomp
    assert (sec["tid"] != sec["pid"]).any()                 # some were made by worker threads
    ix = build_index(synth)
    lanes = ix.lanes
    lane_of = {(int(p), int(t)): int(i)
               for i, p, t in zip(lanes["lane"], lanes["pid"], lanes["tid"], strict=True)}
    joined = zip(sec["pid"], sec["tid"], strict=True)
    assert ix.seccomp["lane"].tolist() == [lane_of[(int(p), int(t))] for p, t in joined]
    unjoined = Trace(events=synth.events, processes=synth.processes, stacks=synth.stacks,
                     seccomp=sec.assign(tid=-1, ts=sec["audit_ts"]), meta=synth.meta)
    ux = build_index(unjoined)
    assert ux.seccomp["lane"].tolist() == [lane_of[(int(p), int(p))] for p in sec["pid"]]


def test_window_bins_then_refines(synth_big: Trace) -> None:
    ix = build_index(synth_big)
    whole = ix.window(max_points=3000)
    assert whole.binned and whole.total == len(synth_big.events)
    assert whole.points["count"].sum() == whole.total
    assert len(whole.points) <= 3000
    assert (whole.points["top"] <= whole.points["count"]).all()
    # Zoomed to a few ms: every call is drawn as itself, at its own time.
    lo, hi = 2_000_000_000, 2_004_000_000
    zoom = ix.window(lo, hi)
    assert not zoom.binned
    ts = synth_big.events["ts"].to_numpy() - ix.origin_ns
    assert zoom.total == int(((ts >= lo) & (ts <= hi)).sum()) == len(zoom.points)
    names = synth_big.events["name"].astype("string").to_numpy()
    for p in zoom.points.head(50).itertuples():
        assert names[p.row] == p.name
        assert abs(ts[p.row] / 1e9 - p.x) < 1e-9


def test_bin_dominant_syscall_is_the_most_frequent(synth_big: Trace) -> None:
    ix = build_index(synth_big)
    w = ix.window(max_points=500)
    p = w.points.sort_values("count", ascending=False).iloc[0]
    lane = int(p["lane"])
    lo, hi = int(p["x0"] * 1e9), int(p["x1"] * 1e9)
    ts = ix.ts
    sel = (ts >= lo) & (ts < hi) & (ix.lane == lane)
    counts = np.bincount(ix.code[sel], minlength=len(ix.names))
    assert ix.names[int(np.argmax(counts))] == p["name"]
    assert abs(int(counts.sum()) - int(p["count"])) <= 2  # bin edges are rounded to ns


def test_select_counts_a_range(synth: Trace) -> None:
    ix = build_index(synth)
    lo, hi = 1_000_000_000, 2_000_000_000
    got = ix.select(lo, hi, 1, 2).set_index("name")["count"]
    ev = synth.events
    rel = ev["ts"] - ix.origin_ns
    lanes = ix.lanes.set_index(["pid", "tid"])["lane"]
    lane_of = lanes.reindex(pd.MultiIndex.from_arrays([ev["pid"], ev["tid"]])).to_numpy()
    mask = (rel >= lo) & (rel <= hi) & (lane_of >= 1) & (lane_of <= 2)
    want = ev.loc[mask, "name"].astype("string").value_counts()
    assert got.to_dict() == {k: int(v) for k, v in want.items()}


def test_window_from_relayout(synth: Trace) -> None:
    ix = build_index(synth)
    assert window_from_relayout({"xaxis.range[0]": 0.5, "xaxis.range[1]": 1.25}, ix) == (
        500_000_000,
        1_250_000_000,
    )
    assert window_from_relayout({"xaxis.range": [2, 1]}, ix) == (1_000_000_000, 2_000_000_000)
    assert window_from_relayout({"xaxis.autorange": True}, ix) == (0, ix.span_ns)
    assert window_from_relayout({"yaxis.range[0]": 1, "yaxis.range[1]": 2}, ix) is None
    assert window_from_relayout({"dragmode": "select"}, ix) is None
    assert window_from_relayout({"xaxis.range[0]": "x", "xaxis.range[1]": 1}, ix) is None
    assert window_from_relayout(None, ix) is None


# -- state --------------------------------------------------------------------------------------


def test_state_serves_traces_by_index_only(synth: Trace, synth_big: Trace) -> None:
    st = DashboardState.build([synth, synth_big])
    assert st.entry(1).trace is synth_big
    for bad in (None, "../../etc/passwd", "/tmp", 7, -1, "1e9"):
        assert st.entry(bad).index == 0
    assert [o["value"] for o in st.options()] == [0, 1]
    assert st.entry(0).label != st.entry(1).label


# -- the real sample traces -----------------------------------------------------------------------


@pytest.mark.parametrize("path", SAMPLE_DIRS, ids=[p.name for p in SAMPLE_DIRS])
def test_sample_trace_views(path: Path) -> None:
    trace = load(path)
    entry = DashboardState.build([trace]).entry(0)
    assert entry.summary.events == len(trace.events) == trace.meta.get("events", len(trace.events))
    assert entry.counts["count"].sum() == len(trace.events)
    # The profile generated from a trace allows every call the trace made: nothing is "to fix".
    seen = entry.seen
    assert data.STATUS_DENIED not in set(seen["status"])
    assert set(entry.counts["name"]) <= set(seen.loc[seen["calls"] > 0, "name"])
    # The committed profile of the sample says the same.
    committed = path.with_suffix(".json")
    if committed.is_file():
        against = data.seen_vs_missed(trace.events, policy.load(committed))
        assert data.STATUS_DENIED not in set(against["status"])
    window = entry.timeline.window()
    assert window.total == len(trace.events)
    top = str(entry.counts["name"].iloc[0])
    assert entry.call_sites(top).stacks["count"].sum() == entry.counts["count"].iloc[0]


def test_sample_compare_curl_ls() -> None:
    a, b = sample_trace("curl"), sample_trace("ls")
    cmp = data.compare_counts(data.syscall_counts(a.events), data.syscall_counts(b.events))
    names_a = set(a.events["name"].astype("string"))
    names_b = set(b.events["name"].astype("string"))
    assert set(cmp.loc[cmp["where"] == "only A", "name"]) == names_a - names_b
    assert set(cmp.loc[cmp["where"] == "only B", "name"]) == names_b - names_a
