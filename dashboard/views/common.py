"""Small layout pieces shared by the views (cards, table styling, number formats)."""

from __future__ import annotations

from typing import Any, cast

import pandas as pd
from dash import html
from dash.dash_table.DataTable import DataTable

TABLE_STYLE: dict[str, Any] = {
    "style_table": {"overflowX": "auto"},
    "style_cell": {
        "fontFamily": "ui-monospace, SFMono-Regular, Menlo, monospace",
        "fontSize": "13px",
        "textAlign": "left",
        "padding": "4px 8px",
        "maxWidth": "420px",
        "whiteSpace": "normal",
        "height": "auto",
    },
    "style_header": {
        "fontWeight": "600",
        "backgroundColor": "#f4f5f7",
        "fontFamily": "system-ui, sans-serif",
    },
    "style_filter": {"backgroundColor": "#fbfbfc"},
}
"""Common DataTable look: monospace cells, a light header."""


def card(
    title: str, value: Any, *, danger: bool = False, card_id: str | None = None, hint: str | None = None
) -> html.Div:
    """A headline number. ``danger`` paints it red (drops, denied calls)."""
    kw: dict[str, Any] = {"id": card_id} if card_id else {}
    return html.Div(
        [
            html.Div(title, className="card-title"),
            html.Div(str(value), className="card-value"),
            html.Div(hint or "", className="card-hint"),
        ],
        className="card danger" if danger else "card",
        title=hint or "",
        **kw,
    )


def fmt_exit(status: Any) -> str:
    """A meta ``exit_status``: an int (exit code) or whatever the recorder wrote (a signal name...)."""
    if status is None:
        return "unknown"
    if isinstance(status, dict):
        return ", ".join(f"{k} {v}" for k, v in status.items())
    return str(status)


def records(df: pd.DataFrame) -> Any:
    """DataFrame rows for a DataTable: plain Python values, missing ones as None."""
    out = df.astype(object).where(df.notna(), None)
    return list(out.to_dict("records"))


def table(
    table_id: str, df: pd.DataFrame, columns: list[dict[str, Any]], *, page_size: int = 25, **kw: Any
) -> DataTable:
    """A sortable, filterable DataTable of ``df`` with the common look."""
    style = {**TABLE_STYLE, **{k: v for k, v in kw.items() if k.startswith("style_")}}
    rest = {k: v for k, v in kw.items() if not k.startswith("style_")}
    return DataTable(
        id=table_id,
        data=records(df),
        columns=cast(Any, columns),
        sort_action="native",
        filter_action="native",
        filter_options={"case": "insensitive"},
        page_action="native",
        page_size=page_size,
        **style,
        **rest,
    )


def empty(message: str) -> html.Div:
    return html.Div(message, className="empty")


def graph(graph_id: str, figure: Any, config: dict[str, Any]) -> Any:
    """A dcc.Graph whose box is as tall as its figure, so the page does not reflow (or let the
    plot overlap what follows) while Plotly lays it out."""
    from dash import dcc

    height = getattr(figure.layout, "height", None) or 450
    cfg: Any = config
    return dcc.Graph(id=graph_id, figure=figure, config=cfg, style={"height": f"{int(height)}px"})
