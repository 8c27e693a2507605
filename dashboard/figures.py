"""Plotly figures of the dashboard: pure functions from DataFrames (and a timeline window) to figures.

No Dash here and no I/O, so each figure is unit-tested by looking at its traces and layout.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from tinyjail.dashboard.data import COLOUR_GROUPS, OTHER

if TYPE_CHECKING:
    from tinyjail.dashboard.downsample import TimelineIndex, Window

_PALETTE = list(qualitative.D3) + list(qualitative.Set2) + list(qualitative.Dark2) + list(qualitative.Pastel1)
GROUP_COLOURS: dict[str, str] = {g: _PALETTE[i % len(_PALETTE)] for i, g in enumerate(COLOUR_GROUPS)}
GROUP_COLOURS[OTHER] = "#7f7f7f"
"""One stable colour per group, the same in every view."""

MARK_STYLE: dict[str, tuple[str, str, str]] = {
    "fork": ("triangle-up", "#2ca02c", "fork"),
    "clone": ("triangle-right", "#17becf", "new thread"),
    "exec": ("diamond", "#1f77b4", "exec"),
    "exit": ("x", "#d62728", "exit"),
}
"""Process event -> (marker symbol, colour, legend name) on the timeline."""

SECCOMP_COLOUR = "#ff7f0e"
_FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12}
_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 40}


def group_colour(group: str) -> str:
    return GROUP_COLOURS.get(group, GROUP_COLOURS[OTHER])


def _base_layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0, "font": {"size": 15}},
        height=height,
        margin=_MARGIN,
        font=_FONT,
        template="plotly_white",
        paper_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def top_syscalls_figure(counts: pd.DataFrame, top: int = 25) -> go.Figure:
    """Horizontal bars of the most called syscalls, coloured by group, most called on top."""
    head = counts.head(top)
    fig = go.Figure(
        go.Bar(
            x=head["count"].tolist(),
            y=head["name"].tolist(),
            orientation="h",
            marker_color=[group_colour(g) for g in head["group"]],
            text=[f"{c:,}" for c in head["count"]],
            textposition="auto",
            customdata=np.stack([head["group"].astype(str), head["errors"].astype(str)], axis=-1)
            if len(head)
            else None,
            hovertemplate="<b>%{y}</b><br>%{x:,} calls<br>%{customdata[1]} failed<br>%{customdata[0]}"
            "<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title_text="calls")
    return _base_layout(fig, f"Top {len(head)} syscalls", max(260, 22 * len(head) + 80))


def group_figure(groups: pd.DataFrame) -> go.Figure:
    """One bar per systemd group: calls made by its members (a call counts in each of its groups)."""
    fig = go.Figure(
        go.Bar(
            x=groups["group"].tolist(),
            y=groups["calls"].tolist(),
            marker_color=[group_colour(g) for g in groups["group"]],
            text=[f"{c:,}" for c in groups["calls"]],
            textposition="auto",
            customdata=np.stack([groups["syscalls"].astype(str), groups["members"]], axis=-1)
            if len(groups)
            else None,
            hovertemplate="<b>%{x}</b><br>%{y:,} calls by %{customdata[0]} syscalls<br>%{customdata[1]}"
            "<extra></extra>",
        )
    )
    fig.update_xaxes(type="category", tickangle=-30)
    fig.update_yaxes(title_text="calls")
    return _base_layout(fig, "Calls per syscall group", 320)


def _raw_custom(events: pd.DataFrame, pts: pd.DataFrame) -> np.ndarray:
    rows = pts["row"].to_numpy()
    sub = events.take(rows)
    ret = sub["ret"].to_numpy()
    err = sub["errno"].astype("string").fillna("").to_numpy()
    dur = sub["duration_ns"].to_numpy()
    path = sub["path"].astype("string").fillna("").to_numpy()
    comm = sub["comm"].astype("string").fillna("").to_numpy()
    ret_txt = [f"{r} ({e})" if r < 0 and e else str(r) for r, e in zip(ret, err, strict=True)]
    dur_txt = [f"{d / 1000:.1f} µs" if d >= 0 else "?" for d in dur]
    path_txt = [f"<br>{p}" if p else "" for p in path]
    args = [
        ", ".join(f"{int(v):#x}" for v in vals)
        for vals in zip(sub["arg0"].to_numpy(), sub["arg1"].to_numpy(), sub["arg2"].to_numpy(), strict=True)
    ]
    return np.stack(
        [
            rows.astype(str),
            pts["name"].astype(str).to_numpy(),
            np.array(args, dtype=object),
            np.array(ret_txt, dtype=object),
            np.array(dur_txt, dtype=object),
            np.array(path_txt, dtype=object),
            comm.astype(object),
        ],
        axis=-1,
    )


_RAW_HOVER = (
    "<b>%{customdata[1]}</b>(%{customdata[2]}, …)<br>= %{customdata[3]}<br>duration %{customdata[4]}"
    "%{customdata[5]}<br>t = %{x:.6f} s<extra>%{customdata[6]}</extra>"
)
_BIN_HOVER = (
    "<b>%{customdata[2]:,} calls</b> in %{customdata[4]}<br>most: %{customdata[1]} "
    "(%{customdata[3]:,})<extra>%{fullData.name}</extra>"
)


def _bin_custom(pts: pd.DataFrame) -> np.ndarray:
    span = (pts["x1"] - pts["x0"]).to_numpy()
    span_txt = [f"{s * 1e3:.3g} ms" for s in span]
    return np.stack(
        [
            pts["row"].astype(object),
            pts["name"].astype(object),
            pts["count"].astype(object),
            pts["top"].astype(object),
            np.array(span_txt, dtype=object),
            pts["x0"].astype(object),
            pts["x1"].astype(object),
        ],
        axis=-1,
    )


MIN_SPAN_FRACTION = 1500
"""A call is drawn as a bar over its duration when that is at least 1/MIN_SPAN_FRACTION of the view
(about a pixel): long blocking calls (epoll_wait, execve, futex) become visible when zoomed in."""


def _duration_segments(events: pd.DataFrame, pts: pd.DataFrame, min_ns: float) -> tuple[Any, Any] | None:
    """x and y arrays (NaN-separated) of [start, end] segments for the calls that last >= ``min_ns``."""
    rows = pts["row"].to_numpy()
    dur = events["duration_ns"].to_numpy()[rows]
    long = dur >= max(min_ns, 1)
    if not long.any():
        return None
    start = pts["x"].to_numpy()[long]
    end = start + dur[long] / 1e9
    lane = pts["lane"].to_numpy()[long].astype(float)
    nan = np.full(len(start), np.nan)
    xs = np.column_stack([start, end, nan]).ravel()
    ys = np.column_stack([lane, lane, nan]).ravel()
    return xs, ys


def timeline_figure(
    index: TimelineIndex, window: Window, events: pd.DataFrame, uirevision: Any = "timeline"
) -> go.Figure:
    """Lanes per process/thread over time: calls coloured by group (WebGL), process fork/clone/
    exec/exit and seccomp records marked. Binned windows draw one marker per bin, sized by calls."""
    fig = go.Figure()
    pts = window.points
    nlanes = len(index.lanes)
    lo_s, hi_s = window.start_ns / 1e9, window.end_ns / 1e9

    # Lifetimes: a faint line per lane from its first to its last sign of life.
    if nlanes:
        xs: list[float | None] = []
        ys: list[float | None] = []
        for lane, a, b in zip(
            index.lanes["lane"], index.lanes["start_ns"], index.lanes["end_ns"], strict=True
        ):
            xs += [a / 1e9, b / 1e9, None]
            ys += [int(lane), int(lane), None]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line={"color": "#dddddd", "width": 8},
                hoverinfo="skip",
                showlegend=False,
                name="lifetime",
            )
        )

    for group in [g for g in (*GROUP_COLOURS,) if g in set(pts["group"])]:
        sub = pts[pts["group"] == group]
        if window.binned:
            size = np.clip(5 + 2.2 * np.log10(sub["count"].to_numpy()), 5, 16)
            custom = _bin_custom(sub)
            hover = _BIN_HOVER
        else:
            size = np.full(len(sub), 9.0)
            custom = _raw_custom(events, sub)
            hover = _RAW_HOVER
        if not window.binned:
            spans = _duration_segments(events, sub, (window.end_ns - window.start_ns) / MIN_SPAN_FRACTION)
            if spans is not None:
                fig.add_trace(
                    go.Scattergl(
                        x=spans[0],
                        y=spans[1],
                        mode="lines",
                        name=group,
                        legendgroup=group,
                        showlegend=False,
                        line={"color": group_colour(group), "width": 5},
                        hoverinfo="skip",
                        opacity=0.55,
                    )
                )
        fig.add_trace(
            go.Scattergl(
                x=sub["x"].to_numpy(),
                y=sub["lane"].to_numpy(),
                mode="markers",
                name=group,
                legendgroup=group,
                marker={
                    "color": group_colour(group),
                    "size": size,
                    "symbol": "line-ns-open",
                    "line": {"width": 2, "color": group_colour(group)},
                },
                customdata=custom,
                hovertemplate=hover,
            )
        )

    marks = index.marks
    in_view = marks[(marks["x_ns"] >= window.start_ns) & (marks["x_ns"] <= window.end_ns)]
    for kind, (symbol, colour, legend) in MARK_STYLE.items():
        sub = in_view[in_view["kind"] == kind]
        if sub.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=(sub["x_ns"] / 1e9).tolist(),
                y=sub["lane"].tolist(),
                mode="markers",
                name=legend,
                marker={
                    "symbol": symbol,
                    "size": 12,
                    "color": colour,
                    "line": {"width": 1, "color": "white"},
                },
                text=sub["label"].tolist(),
                hovertemplate="%{text}<br>t = %{x:.6f} s<extra></extra>",
            )
        )
    sec = index.seccomp
    sec = sec[(sec["x_ns"] >= window.start_ns) & (sec["x_ns"] <= window.end_ns)]
    if not sec.empty:
        fig.add_trace(
            go.Scatter(
                x=(sec["x_ns"] / 1e9).tolist(),
                y=sec["lane"].tolist(),
                mode="markers",
                name="seccomp",
                marker={
                    "symbol": "star",
                    "size": 14,
                    "color": SECCOMP_COLOUR,
                    "line": {"width": 1, "color": "#7a3d00"},
                },
                text=sec["label"].tolist(),
                hovertemplate="%{text}<br>t = %{x:.6f} s<extra></extra>",
            )
        )

    how = (
        f"{window.total:,} calls in view, binned every {fmt_duration(window.bin_ns)}"
        " (zoom in for single calls)"
        if window.binned
        else f"{window.total:,} calls in view, each drawn"
    )
    height = int(min(900, max(320, 34 * nlanes + 150)))
    fig.update_layout(
        uirevision=uirevision,
        dragmode="zoom",
        hovermode="closest",
        clickmode="event+select",
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "font": {"size": 11}},
    )
    fig.update_xaxes(
        range=[lo_s, hi_s],
        title_text="seconds since trace start",
        showspikes=True,
        spikemode="across",
        spikethickness=1,
    )
    fig.update_yaxes(
        tickvals=index.lanes["lane"].tolist(),
        ticktext=index.lanes["label"].tolist(),
        range=[nlanes - 0.5, -0.5],
        zeroline=False,
        showgrid=False,
        fixedrange=False,
    )
    _base_layout(fig, how, height)
    fig.update_layout(margin={"l": 10, "r": 10, "t": 80, "b": 40}, title={"font": {"size": 13}})
    return fig


def fmt_duration(ns: float) -> str:
    """``1.23 s``, ``12.3 ms``, ``850 ns``: a duration for humans (three significant digits)."""
    if ns >= 1e9:
        return f"{ns / 1e9:.3g} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.3g} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3g} µs"
    return f"{ns:.0f} ns"


def icicle_figure(tree: pd.DataFrame, maxdepth: int = 8) -> go.Figure:
    """The call tree of one syscall as an icicle: root on top, outermost frame next; click a
    frame to expand it."""
    root_value = int(tree["value"].iloc[0]) if len(tree) else 0
    fig = go.Figure(
        go.Icicle(
            ids=tree["id"].tolist(),
            labels=tree["label"].tolist(),
            parents=tree["parent"].tolist(),
            values=tree["value"].tolist(),
            branchvalues="total",
            maxdepth=maxdepth,
            tiling={"orientation": "v"},
            root={"color": "#f2f2f2"},
            hovertemplate="<b>%{label}</b><br>%{value:,} calls<br>%{percentRoot:.1%} of all<extra></extra>",
            textinfo="label+value",
        )
    )
    title = f"Call tree ({root_value:,} calls): click a frame to expand it"
    return _base_layout(fig, title, 520)


def compare_figure(cmp: pd.DataFrame, label_a: str, label_b: str, top: int = 30) -> go.Figure:
    """Calls per syscall in A and B side by side, for the syscalls whose counts differ most."""
    ranked = cmp.assign(_d=cmp["delta"].abs()).sort_values(["_d", "name"], ascending=[False, True]).head(top)
    names = ranked["name"].tolist()
    fig = go.Figure(
        [
            go.Bar(
                y=names,
                x=ranked["a"].tolist(),
                orientation="h",
                name=f"A: {label_a}",
                marker_color="#1f77b4",
                hovertemplate="<b>%{y}</b><br>A: %{x:,}<extra></extra>",
            ),
            go.Bar(
                y=names,
                x=ranked["b"].tolist(),
                orientation="h",
                name=f"B: {label_b}",
                marker_color="#ff7f0e",
                hovertemplate="<b>%{y}</b><br>B: %{x:,}<extra></extra>",
            ),
        ]
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title_text="calls", side="top")
    height = max(300, 26 * len(names) + 140)
    _base_layout(fig, f"Largest differences in calls ({len(names)} syscalls)", math.ceil(height))
    fig.update_layout(
        barmode="group",
        margin={"l": 10, "r": 10, "t": 110, "b": 20},
        legend={
            # bottom right, inside the plot: bars are sorted longest first, so that corner is free
            "x": 0.99,
            "xanchor": "right",
            "y": 0.01,
            "yanchor": "bottom",
            "bgcolor": "rgba(255,255,255,0.85)",
            "bordercolor": "#e4e7ec",
            "borderwidth": 1,
        },
    )
    return fig


__all__ = [
    "GROUP_COLOURS",
    "MARK_STYLE",
    "compare_figure",
    "group_colour",
    "group_figure",
    "icicle_figure",
    "timeline_figure",
    "top_syscalls_figure",
]
