"""Overview: what was traced, how big it is, drops, the top syscalls and a bar per group."""

from __future__ import annotations

from dash import html
from tinyjail.dashboard import figures, ids
from tinyjail.dashboard.figures import fmt_duration
from tinyjail.dashboard.state import TraceEntry
from tinyjail.dashboard.views.common import card, fmt_exit, graph

GRAPH_CONFIG = {"displaylogo": False, "responsive": True}


def layout(entry: TraceEntry) -> html.Div:
    s = entry.summary
    command = " ".join(s.argv) if s.argv else s.command
    drop_hint = (
        "events lost in the kernel: a profile from this trace may miss syscalls"
        if s.dropped
        else "no events lost"
    )
    cards = [
        card("Command", command or "?"),
        card("Duration", fmt_duration(s.duration_ns)),
        card("Exit status", fmt_exit(s.exit_status)),
        card("Events", f"{s.events:,}"),
        card("Distinct syscalls", f"{s.syscalls:,}"),
        card("Processes / threads", f"{s.processes:,} / {s.threads:,}"),
        card("Dropped", f"{s.dropped:,}", danger=s.dropped > 0, card_id=ids.CARD_DROPS, hint=drop_hint),
        card("Failed calls", f"{s.errors:,}"),
        card("Seccomp records", f"{s.seccomp:,}", hint="audit records of seccomp actions taken on the trace"),
    ]
    return html.Div(
        [
            html.Div(cards, id=ids.OVERVIEW_CARDS, className="cards"),
            html.Div(
                [
                    graph(ids.OVERVIEW_TOP, figures.top_syscalls_figure(entry.counts), GRAPH_CONFIG),
                    graph(ids.OVERVIEW_GROUPS, figures.group_figure(entry.groups), GRAPH_CONFIG),
                ],
                className="grid2",
            ),
        ]
    )
