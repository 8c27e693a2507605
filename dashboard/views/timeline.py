"""Timeline: one lane per process/thread, calls coloured by group; server-side downsampled so a
million calls stay readable, refined on every zoom."""

from __future__ import annotations

from typing import Any

import pandas as pd
from dash import dcc, html
from dash.dash_table.DataTable import DataTable
from tinyjail.dashboard import figures, ids
from tinyjail.dashboard.downsample import window_from_relayout
from tinyjail.dashboard.figures import fmt_duration
from tinyjail.dashboard.inputs import as_dict, as_list, finite, integer, seconds_to_ns
from tinyjail.dashboard.state import TraceEntry
from tinyjail.dashboard.views.common import TABLE_STYLE, graph, records

GRAPH_CONFIG = {
    "displaylogo": False,
    "scrollZoom": True,
    "responsive": True,
    "modeBarButtonsToRemove": ["lasso2d", "autoScale2d"],
}


def figure(entry: TraceEntry, start_ns: int | None = None, end_ns: int | None = None) -> Any:
    index = entry.timeline
    window = index.window(start_ns, end_ns)
    return figures.timeline_figure(index, window, entry.trace.events, uirevision=f"timeline-{entry.index}")


def layout(entry: TraceEntry) -> html.Div:
    return html.Div(
        [
            html.Div(
                "Drag to zoom (the view refines down to single calls), double-click to reset, "
                "use the box-select tool for counts over a time range, click a mark for details. "
                "▲ fork  ▶ new thread  ◆ exec  ✕ exit  ★ seccomp record.",
                className="muted small",
            ),
            graph(ids.TIMELINE_GRAPH, figure(entry), GRAPH_CONFIG),
            html.Div(
                [
                    html.Div(
                        html.Div("Click a call or a bin for details.", className="muted"),
                        id=ids.TIMELINE_INFO,
                        className="panel",
                    ),
                    html.Div(
                        html.Div("Box-select a range to count the calls in it.", className="muted"),
                        id=ids.TIMELINE_SELECTION,
                        className="panel",
                    ),
                ],
                className="grid2",
            ),
        ]
    )


def refine(entry: TraceEntry, relayout: Any) -> Any:
    """The figure for the x range a zoom/pan asked for, or None when the event does not change x."""
    rng = window_from_relayout(relayout, entry.timeline)
    if rng is None:
        return None
    return figure(entry, *rng)


def _event_details(entry: TraceEntry, row: int) -> html.Div:
    ev = entry.trace.events
    if not 0 <= row < len(ev):
        return html.Div("no such event", className="muted")
    e = ev.iloc[row]
    origin = entry.timeline.origin_ns
    name = str(e["name"])
    args = ", ".join(f"{int(e[f'arg{i}']):#x}" for i in range(6))
    ret = int(e["ret"])
    err = e["errno"]
    ret_txt = f"{ret} ({err})" if ret < 0 and isinstance(err, str) else str(ret)
    items: list[tuple[str, str]] = [
        ("call", f"{name}({args})"),
        ("returned", ret_txt),
        ("duration", fmt_duration(int(e["duration_ns"])) if int(e["duration_ns"]) >= 0 else "?"),
        ("at", f"{(int(e['ts']) - origin) / 1e9:.6f} s"),
        ("task", f"{e['comm']} pid {int(e['pid'])} tid {int(e['tid'])}"),
    ]
    if isinstance(e["path"], str):
        items.append(("path", e["path"]))
    sid = int(e["stack_id"])
    frames: list[str] = []
    if sid >= 0:
        from tinyjail.dashboard.data import stack_frames

        st = entry.trace.stacks
        frames = stack_frames(st[st["stack_id"] == sid]).get(sid, [])
    return html.Div(
        [
            html.H4(name),
            html.Table([html.Tr([html.Th(k), html.Td(v)]) for k, v in items], className="kv"),
            html.Div("stack (innermost first)", className="muted small") if frames else None,
            html.Pre("\n".join(frames), className="stack") if frames else None,
            dcc.Link(
                "all call sites of " + name + " →",
                href=f"?view=callsites&trace={entry.index}&syscall={name}",
                refresh=True,
            ),
        ]
    )


def click_details(entry: TraceEntry, click: Any) -> Any:
    """Details of a clicked raw call (args, return, duration, stack), or the counts of a clicked bin.
    None (no change) for anything that is not a click on one of our markers."""
    points = as_list((as_dict(click) or {}).get("points"))
    point = as_dict(points[0]) if points else None
    if point is None:
        return None
    custom = as_list(point.get("customdata"))
    if not custom:
        text = point.get("text")
        return html.Div(text, className="muted") if isinstance(text, str) and text else None
    row = integer(custom[0])
    if row is None:
        return None
    if row >= 0:
        return _event_details(entry, row)
    lane = integer(point.get("y"))
    x0, x1 = (seconds_to_ns(custom[i]) if len(custom) > 6 else None for i in (5, 6))
    if lane is None or x0 is None or x1 is None:
        return None
    return selection_summary(entry, x0, x1, lane, lane, title="Calls in this bin")


def selection_summary(
    entry: TraceEntry,
    start_ns: int,
    end_ns: int,
    lane_lo: float | None = None,
    lane_hi: float | None = None,
    title: str = "Calls in the selected range",
) -> html.Div:
    counts: pd.DataFrame = entry.timeline.select(start_ns, end_ns, lane_lo, lane_hi)
    total = int(counts["count"].sum()) if len(counts) else 0
    lanes = ""
    labels = entry.timeline.lanes["label"].tolist()
    if lane_lo is not None and lane_hi is not None and labels:
        lo, hi = sorted(min(max(round(v), 0), len(labels) - 1) for v in (lane_lo, lane_hi))
        lanes = f" on {labels[lo]}" if lo == hi else f" on lanes {labels[lo]} … {labels[hi]}"
    return html.Div(
        [
            html.H4(title),
            html.Div(
                f"{total:,} calls, {start_ns / 1e9:.6f} s – {end_ns / 1e9:.6f} s{lanes}", className="muted"
            ),
            DataTable(
                data=records(counts.head(40)),
                columns=[
                    {"name": "syscall", "id": "name"},
                    {"name": "calls", "id": "count", "type": "numeric", "format": {"specifier": ","}},
                ],
                page_size=15,
                sort_action="native",
                **TABLE_STYLE,
                id=ids.TIMELINE_SELECTION + "-table",
            ),
        ]
    )


def select_details(entry: TraceEntry, selected: Any) -> Any:
    """Counts over a box selection: every call in its time range and lanes, not just drawn markers.
    None (no change) unless the range is two finite x values (and optionally two finite y)."""
    rng = as_dict((as_dict(selected) or {}).get("range")) or {}
    xs = as_list(rng.get("x")) or []
    ends = [seconds_to_ns(v) for v in xs]
    if len(ends) != 2 or None in ends:
        return None
    a, b = sorted(v for v in ends if v is not None)
    ys = [finite(v) for v in as_list(rng.get("y")) or []]
    lane_lo, lane_hi = (ys[0], ys[1]) if len(ys) == 2 and None not in ys else (None, None)
    return selection_summary(entry, a, b, lane_lo, lane_hi)
