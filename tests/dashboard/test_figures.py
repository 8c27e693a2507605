"""The dashboard's figures, checked as data: traces, points and labels, without a browser."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest
from conftest import sample_trace
from tinyjail.dashboard import data, figures
from tinyjail.dashboard.downsample import build_index

from tinyjail.timeline import Trace


def test_top_syscalls_bars(synth: Trace) -> None:
    counts = data.syscall_counts(synth.events)
    fig = figures.top_syscalls_figure(counts, top=10)
    (bar,) = fig.data
    assert list(bar.y) == counts["name"].head(10).tolist()
    assert list(bar.x) == counts["count"].head(10).tolist()
    assert list(bar.marker.color) == [figures.group_colour(g) for g in counts["group"].head(10)]
    json.loads(fig.to_json())


def test_group_bars(synth: Trace) -> None:
    g = data.group_counts(data.syscall_counts(synth.events))
    (bar,) = figures.group_figure(g).data
    assert list(bar.x) == g["group"].tolist() and list(bar.y) == g["calls"].tolist()


def _call_traces(fig: go.Figure) -> list[go.Scattergl]:
    return [t for t in fig.data if isinstance(t, go.Scattergl) and t.mode == "markers"]


def test_timeline_draws_long_calls_over_their_duration(synth: Trace) -> None:
    ix = build_index(synth)
    w = ix.window(1_000_000_000, 1_050_000_000)
    fig = figures.timeline_figure(ix, w, synth.events)
    bars = [t for t in fig.data if isinstance(t, go.Scattergl) and t.mode == "lines"]
    min_ns = 50_000_000 / figures.MIN_SPAN_FRACTION
    dur = synth.events["duration_ns"].to_numpy()[w.points["row"].to_numpy()]
    assert sum(len(t.x) for t in bars) == 3 * int((dur >= min_ns).sum()) > 0
    for t in bars:
        starts, ends = t.x[0::3], t.x[1::3]
        assert (ends > starts).all()
    assert not [
        t
        for t in figures.timeline_figure(ix, ix.window(), synth.events).data
        if t.mode == "lines" and isinstance(t, go.Scattergl)
    ]  # binned views draw no bars


def test_timeline_raw_points_hover_the_real_call(synth: Trace) -> None:
    ix = build_index(synth)
    w = ix.window(1_000_000_000, 1_050_000_000)
    assert not w.binned
    fig = figures.timeline_figure(ix, w, synth.events)
    calls = _call_traces(fig)
    assert sum(len(t.x) for t in calls) == w.total == len(w.points)
    assert {t.name for t in calls} == set(w.points["group"])
    ev = synth.events
    for t in calls:
        for custom in t.customdata[:20]:
            row = int(custom[0])
            assert custom[1] == ev["name"].iloc[row]
            assert custom[6] == ev["comm"].iloc[row]
            assert custom[2].startswith(f"{int(ev['arg0'].iloc[row]):#x}, ")
    assert "each drawn" in fig.layout.title.text
    assert list(fig.layout.yaxis.ticktext) == ix.lanes["label"].tolist()
    assert tuple(fig.layout.xaxis.range) == pytest.approx((1.0, 1.05))


def test_timeline_marks_processes_and_seccomp(synth: Trace) -> None:
    ix = build_index(synth)
    w = ix.window()
    fig = figures.timeline_figure(ix, w, synth.events)
    by_name = {t.name: t for t in fig.data}
    for kind, (_, _, legend) in figures.MARK_STYLE.items():
        assert len(by_name[legend].x) == int((synth.processes["kind"] == kind).sum())
    assert len(by_name["seccomp"].x) == len(synth.seccomp)
    assert all("seccomp log" in t for t in by_name["seccomp"].text)


def test_timeline_binned_million_scale(synth_big: Trace) -> None:
    ix = build_index(synth_big)
    w = ix.window()
    fig = figures.timeline_figure(ix, w, synth_big.events)
    calls = _call_traces(fig)
    assert w.binned and "binned" in fig.layout.title.text
    assert sum(len(t.x) for t in calls) == len(w.points) <= 6000
    assert sum(int(c[2]) for t in calls for c in t.customdata) == len(synth_big.events)
    assert len(fig.to_json()) < 2_000_000  # what the browser downloads per zoom


def test_icicle_of_call_sites(synth: Trace) -> None:
    sites = data.call_sites(synth, "read")
    tree = data.stack_tree(sites)
    (ice,) = figures.icicle_figure(tree).data
    assert ice.type == "icicle" and ice.branchvalues == "total"
    assert ice.values[0] == sites.calls and ice.parents[0] == ""
    assert len(set(ice.ids)) == len(ice.ids)
    assert "main+0x120 (worker)" in set(ice.labels)  # every synthetic stack passes through main


def test_compare_bars_real_traces() -> None:
    a, b = sample_trace("curl"), sample_trace("ls")
    cmp = data.compare_counts(data.syscall_counts(a.events), data.syscall_counts(b.events))
    fig = figures.compare_figure(cmp, "curl", "ls", top=12)
    bar_a, bar_b = fig.data
    assert list(bar_a.y) == list(bar_b.y) and len(bar_a.y) == 12
    first = cmp.assign(d=cmp["delta"].abs()).sort_values(["d", "name"], ascending=[False, True]).iloc[0]
    assert bar_a.y[0] == first["name"] and bar_a.x[0] == first["a"] and bar_b.x[0] == first["b"]
