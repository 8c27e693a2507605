"""The Dash callbacks: each one unpacks its inputs and hands off to a plain function of a view.

Callbacks only ever receive a trace *index* (validated by `DashboardState.entry`) and syscall
names; nothing a browser sends can name a file. Every other value is checked by the plain
function it reaches (`tinyjail.dashboard.inputs`): a crafted request gets the default view, not
a 500.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import dash
from dash import Input, Output, State, ctx, html, no_update
from tinyjail.dashboard import ids, inputs
from tinyjail.dashboard.state import DashboardState
from tinyjail.dashboard.views import callsites, compare, overview, policy, seen, timeline


def render(state: DashboardState, view: str | None, index: Any, syscall: str | None) -> Any:
    """The body of ``view`` for trace ``index``."""
    entry = state.entry(index)
    if view == "seen":
        return seen.layout(entry)
    if view == "timeline":
        return timeline.layout(entry)
    if view == "callsites":
        return callsites.layout(entry, syscall)
    if view == "policy":
        return policy.layout(entry)
    if view == "compare":
        return compare.layout(state, entry.index)
    return overview.layout(entry)


def banner(state: DashboardState, index: Any) -> Any:
    """A warning strip for a lossy trace (its counts are low and its profile may miss syscalls)."""
    entry = state.entry(index)
    if entry.trace.lossy:
        return html.Div(
            f"⚠ {entry.label}: {entry.trace.dropped:,} events were dropped while recording. "
            "Counts are low and a profile from this trace may miss syscalls.",
            className="warning",
        )
    return None


def parse_location(state: DashboardState, search: str | None) -> tuple[Any, Any, Any]:
    """``?view=callsites&trace=1&syscall=openat`` -> (view, trace index, syscall); no_update for
    anything missing or invalid."""
    if not isinstance(search, str) or not search:
        return no_update, no_update, no_update
    q = parse_qs(search.lstrip("?"))
    view = q.get("view", [""])[0]
    view_out: Any = view if view in ids.VIEWS else no_update
    trace_out: Any = no_update
    if "trace" in q:
        try:
            i = int(q["trace"][0])
            trace_out = i if 0 <= i < len(state.entries) else no_update
        except ValueError:
            pass
    name = q.get("syscall", [""])[0]
    syscall_out: Any = name if name and name.replace("_", "").isalnum() and len(name) < 64 else no_update
    return view_out, trace_out, syscall_out


def seen_row(cell: Any) -> tuple[Any, Any]:
    """A click in the Seen-vs-missed table -> (the call-sites tab, the row's syscall); no_update
    unless the cell is an object whose ``row_id`` is a name (the view checks it is a known one)."""
    row = inputs.name((inputs.as_dict(cell) or {}).get("row_id"))
    if row is None:
        return no_update, no_update
    return "callsites", row


def register(app: dash.Dash, state: DashboardState) -> None:
    """Attach every callback of the dashboard to ``app``."""

    @app.callback(
        Output(ids.VIEW, "children"),
        Output(ids.BANNER, "children"),
        Input(ids.TABS, "value"),
        Input(ids.TRACE, "value"),
        State(ids.SYSCALL, "data"),
        prevent_initial_call=True,
    )
    def _render(view: str, index: Any, syscall: str | None) -> tuple[Any, Any]:
        return render(state, view, index, syscall), banner(state, index)

    @app.callback(
        Output(ids.TABS, "value", allow_duplicate=True),
        Output(ids.TRACE, "value", allow_duplicate=True),
        Output(ids.SYSCALL, "data", allow_duplicate=True),
        Input(ids.URL, "search"),
        prevent_initial_call="initial_duplicate",
    )
    def _navigate(search: str | None) -> tuple[Any, Any, Any]:
        return parse_location(state, search)

    @app.callback(
        Output(ids.TABS, "value", allow_duplicate=True),
        Output(ids.SYSCALL, "data", allow_duplicate=True),
        Input(ids.SEEN_TABLE, "active_cell"),
        prevent_initial_call=True,
    )
    def _seen_row(cell: Any) -> tuple[Any, Any]:
        return seen_row(cell)

    @app.callback(
        Output(ids.CALLSITES_BODY, "children"),
        Output(ids.SYSCALL, "data", allow_duplicate=True),
        Input(ids.CALLSITES_SYSCALL, "value"),
        State(ids.TRACE, "value"),
        prevent_initial_call=True,
    )
    def _callsites(wanted: Any, index: Any) -> tuple[Any, Any]:
        return callsites.select(state.entry(index), wanted)

    @app.callback(
        Output(ids.TIMELINE_GRAPH, "figure"),
        Input(ids.TIMELINE_GRAPH, "relayoutData"),
        State(ids.TRACE, "value"),
        prevent_initial_call=True,
    )
    def _zoom(relayout: Any, index: Any) -> Any:
        fig = timeline.refine(state.entry(index), relayout)
        return no_update if fig is None else fig

    @app.callback(
        Output(ids.TIMELINE_INFO, "children"),
        Input(ids.TIMELINE_GRAPH, "clickData"),
        State(ids.TRACE, "value"),
        prevent_initial_call=True,
    )
    def _click(click: Any, index: Any) -> Any:
        out = timeline.click_details(state.entry(index), click)
        return no_update if out is None else out

    @app.callback(
        Output(ids.TIMELINE_SELECTION, "children"),
        Input(ids.TIMELINE_GRAPH, "selectedData"),
        State(ids.TRACE, "value"),
        prevent_initial_call=True,
    )
    def _select(selected: Any, index: Any) -> Any:
        out = timeline.select_details(state.entry(index), selected)
        return no_update if out is None else out

    @app.callback(
        Output(ids.POLICY_GROUPS, "value"),
        Output(ids.POLICY_SYSCALLS, "value"),
        Output(ids.POLICY_JSON, "children"),
        Output(ids.POLICY_COUNT, "children"),
        Input(ids.POLICY_GROUPS, "value"),
        Input(ids.POLICY_SYSCALLS, "value"),
        Input(ids.POLICY_OPTIONS, "value"),
        State(ids.TRACE, "value"),
        prevent_initial_call=True,
    )
    def _policy(groups: Any, names: Any, options: Any, index: Any) -> tuple[Any, ...]:
        return policy.update(state.entry(index), ctx.triggered_id, groups, names, options)

    @app.callback(
        Output(ids.POLICY_DOWNLOAD, "data"),
        Input(ids.POLICY_DOWNLOAD_BUTTON, "n_clicks"),
        State(ids.POLICY_JSON, "children"),
        State(ids.TRACE, "value"),
        prevent_initial_call=True,
    )
    def _download(_clicks: Any, text: Any, index: Any) -> Any:
        return policy.download(state.entry(index), text)

    @app.callback(
        Output(ids.COMPARE_BODY, "children"),
        Input(ids.COMPARE_A, "value"),
        Input(ids.COMPARE_B, "value"),
        prevent_initial_call=True,
    )
    def _compare(a: Any, b: Any) -> Any:
        return compare.body(state, a, b)
