"""Compare: two traces side by side — syscalls only in A, only in B, and count deltas."""

from __future__ import annotations

from typing import Any

from dash import dcc, html
from tinyjail.dashboard import data, figures, ids
from tinyjail.dashboard.state import DashboardState
from tinyjail.dashboard.views.common import empty, graph, table

GRAPH_CONFIG = {"displaylogo": False, "responsive": True}


def layout(state: DashboardState, a: int) -> html.Div:
    b = next((e.index for e in state.entries if e.index != a), a)
    return html.Div(
        [
            html.Div(
                [
                    html.Label("A", htmlFor=ids.COMPARE_A),
                    dcc.Dropdown(
                        id=ids.COMPARE_A,
                        options=state.options(),
                        value=a,
                        clearable=False,
                        style={"minWidth": "260px"},
                    ),
                    html.Label("B", htmlFor=ids.COMPARE_B),
                    dcc.Dropdown(
                        id=ids.COMPARE_B,
                        options=state.options(),
                        value=b,
                        clearable=False,
                        style={"minWidth": "260px"},
                    ),
                ],
                className="toolbar",
            ),
            html.Div(body(state, a, b), id=ids.COMPARE_BODY),
        ]
    )


def _names(names: list[str], cls: str) -> html.Div:
    if not names:
        return html.Div("none", className="muted")
    return html.Div([html.Span(n, className=f"chip {cls}") for n in names], className="chips")


def body(state: DashboardState, a: Any, b: Any) -> Any:
    ea, eb = state.entry(a), state.entry(b)
    if len(state.entries) < 2:
        note = html.Div(
            "Only one trace is open: start the dashboard with two traces to compare them "
            "(tinyjail dashboard A B).",
            className="muted",
        )
    else:
        note = None
    cmp = data.compare_counts(ea.counts, eb.counts)
    only_a = cmp.loc[cmp["where"] == "only A", "name"].tolist()
    only_b = cmp.loc[cmp["where"] == "only B", "name"].tolist()
    if cmp.empty:
        return empty("Neither trace has syscalls.")
    return html.Div(
        [
            note,
            html.Div(
                [
                    html.Div(
                        [html.H4(f"Only in A ({ea.label}): {len(only_a)}"), _names(only_a, "only-a")],
                        className="panel",
                    ),
                    html.Div(
                        [html.H4(f"Only in B ({eb.label}): {len(only_b)}"), _names(only_b, "only-b")],
                        className="panel",
                    ),
                ],
                className="grid2",
            ),
            graph(ids.COMPARE_GRAPH, figures.compare_figure(cmp, ea.label, eb.label), GRAPH_CONFIG),
            table(
                ids.COMPARE_TABLE,
                cmp,
                [
                    {"name": "syscall", "id": "name"},
                    {"name": f"A: {ea.label}", "id": "a", "type": "numeric", "format": {"specifier": ","}},
                    {"name": f"B: {eb.label}", "id": "b", "type": "numeric", "format": {"specifier": ","}},
                    {"name": "B − A", "id": "delta", "type": "numeric", "format": {"specifier": "+,"}},
                    {"name": "where", "id": "where"},
                ],
                style_data_conditional=[
                    {"if": {"filter_query": '{where} = "only A"'}, "backgroundColor": "#e3edfb"},
                    {"if": {"filter_query": '{where} = "only B"'}, "backgroundColor": "#fff1d6"},
                ],
            ),
        ]
    )
