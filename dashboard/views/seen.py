"""Seen vs missed: every syscall the trace made, the policy allows or static analysis found, and
which of those the policy would refuse (the ones to fix) or allows for nothing (to remove)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from dash import html
from tinyjail.dashboard import data, ids
from tinyjail.dashboard.state import TraceEntry
from tinyjail.dashboard.views.common import table

STATUS_STYLE: dict[str, dict[str, str]] = {
    data.STATUS_DENIED: {"backgroundColor": "#fde2e1", "color": "#8a1c13"},
    data.STATUS_LOGGED: {"backgroundColor": "#fff1d6", "color": "#7a4b00"},
    data.STATUS_STATIC: {"backgroundColor": "#e3edfb", "color": "#1b3f73"},
    data.STATUS_UNUSED: {"backgroundColor": "#f0f0f0", "color": "#555555"},
}

STATUS_HELP: dict[str, str] = {
    data.STATUS_DENIED: "the program made these and the policy refuses them: fix the policy or the program",
    data.STATUS_LOGGED: "made and only logged: they would pass, but the policy flags them",
    data.STATUS_STATIC: "static analysis found them, the trace never made them: a path the run did not take",
    data.STATUS_UNUSED: "allowed but never made: candidates to remove",
    data.STATUS_ALLOWED: "made and allowed",
}


def explain_href(index: int, name: str) -> str:
    """The in-app link to the call-sites view of ``name`` (trace index, never a path)."""
    return "?" + urlencode({"view": "callsites", "trace": index, "syscall": name})


def layout(entry: TraceEntry) -> html.Div:
    df = entry.seen.copy()
    df["id"] = df["name"]
    df["explain"] = [f"[explain →]({explain_href(entry.index, n)})" for n in df["name"]]
    counts = df["status"].value_counts()
    chips = [
        html.Span(
            [html.B(f"{int(counts.get(status, 0)):,}"), f" {status}"],
            className="chip",
            style=STATUS_STYLE.get(status, {}),
            title=STATUS_HELP[status],
        )
        for status in data.STATUS_ORDER
        if status != data.STATUS_STATIC or entry.static is not None
    ]
    columns: list[dict[str, Any]] = [
        {"name": "syscall", "id": "name"},
        {"name": "status", "id": "status"},
        {"name": "calls", "id": "calls", "type": "numeric", "format": {"specifier": ","}},
        {"name": "refused calls", "id": "refused", "type": "numeric", "format": {"specifier": ","}},
        {"name": "policy action", "id": "action"},
        {"name": "groups", "id": "groups"},
    ]
    if entry.static is not None:
        df["static"] = df["static"].map({True: "yes", False: "no"})
        columns.append({"name": "static analysis", "id": "static"})
    else:
        df = df.drop(columns="static")
    columns += [
        {"name": "what it does", "id": "description"},
        {"name": "risk", "id": "risk"},
        {"name": "", "id": "explain", "presentation": "markdown"},
    ]
    conditional = [
        {"if": {"filter_query": f'{{status}} = "{status}"'}, **style}
        for status, style in STATUS_STYLE.items()
    ]
    return html.Div(
        [
            html.Div(
                [
                    html.Span(f"Policy: {entry.policy_origin}", className="muted"),
                    html.Div(chips, id=ids.SEEN_SUMMARY, className="chips"),
                    html.Div(
                        "Click a row to see where the program makes that syscall. Type in the header row "
                        "to filter (e.g. denied, >100, @network).",
                        className="muted small",
                    ),
                ]
            ),
            table(
                ids.SEEN_TABLE,
                df,
                columns,
                page_size=30,
                style_data_conditional=conditional,
                markdown_options={"link_target": "_self"},
                sort_by=[],
            ),
        ]
    )
