"""Call sites: `tinyjail explain` for one syscall, with every ranked stack and an icicle of the
call tree (click a frame to expand it)."""

from __future__ import annotations

from typing import Any

from dash import dcc, html
from tinyjail.dashboard import data, figures, ids
from tinyjail.dashboard.state import TraceEntry
from tinyjail.dashboard.views.common import empty, graph, table

GRAPH_CONFIG = {"displaylogo": False, "responsive": True}


def syscall_options(entry: TraceEntry) -> list[dict[str, Any]]:
    """Seen syscalls first (most called first, with their count), then those only the policy or
    static analysis names."""
    seen = [
        {"label": f"{n}  ({c:,})", "value": n}
        for n, c in zip(entry.counts["name"], entry.counts["count"], strict=True)
    ]
    have = {o["value"] for o in seen}
    rest = sorted(set(entry.seen["name"]) - have)
    return seen + [{"label": f"{n}  (not seen)", "value": n} for n in rest]


def default_syscall(entry: TraceEntry, wanted: Any) -> str | None:
    """``wanted`` when it is a syscall this trace or its policy names, else the most called one
    (None for a trace without calls): what a stale deep link or a crafted value gets."""
    names = set(entry.seen["name"]) | set(entry.counts["name"])
    if isinstance(wanted, str) and wanted in names:
        return wanted
    return str(entry.counts["name"].iloc[0]) if len(entry.counts) else None


def layout(entry: TraceEntry, syscall: str | None) -> html.Div:
    name = default_syscall(entry, syscall)
    return html.Div(
        [
            html.Div(
                [
                    html.Label("Syscall", htmlFor=ids.CALLSITES_SYSCALL),
                    dcc.Dropdown(
                        id=ids.CALLSITES_SYSCALL,
                        options=syscall_options(entry),
                        value=name,
                        clearable=False,
                        style={"minWidth": "320px"},
                    ),
                ],
                className="toolbar",
            ),
            html.Div(body(entry, name), id=ids.CALLSITES_BODY),
        ]
    )


def _facts(entry: TraceEntry, name: str) -> list[Any]:
    """The explain header: what it does, groups, risk, counts, failures, processes, args, verdict."""
    from tinyjail.tracer.explain import explain

    from tinyjail.policy import DENY_ACTIONS

    # The policy verdict comes from the Seen-vs-missed table, which evaluates only the arguments
    # the policy's rules look at; explain() with a policy evaluates every distinct argument tuple,
    # which takes seconds on a syscall made 200k times with pointer arguments.
    expl = entry.cached(f"explain:{name}", lambda: explain(name, [entry.trace]))
    rows: list[tuple[str, Any]] = [
        ("what it does", expl.description or "—"),
        ("number", f"x86_64 #{expl.number}" if expl.number is not None else "not an x86_64 syscall"),
        ("groups", ", ".join(expl.groups) or "(none)"),
        ("risk", html.Span(expl.risk, className="risk") if expl.risk else "no special risk recorded"),
    ]
    if expl.seen:
        failed = ", ".join(f"{e} {n:,}" for e, n in expl.failed[:6]) or "none"
        rows.append(("calls", f"{expl.count:,} ({failed} failed)" if expl.failed else f"{expl.count:,}"))
        rows.append(("processes", ", ".join(f"{p.comm}[{p.pid}] {p.count:,}" for p in expl.processes[:8])))
        for a in expl.args:
            more = f", … {a.distinct - len(a.values)} more" if a.distinct > len(a.values) else ""
            rows.append((f"arg{a.index}", ", ".join(f"{t} ({n:,})" for t, n in a.values) + more))
        if expl.paths:
            rows.append(("paths", html.Div([html.Div(f"{n:,}  {p}") for p, n in expl.paths[:8]])))
    else:
        rel = ", ".join(f"{r.name} ({r.count:,}×, {r.why})" for r in expl.relatives)
        rows.append(("calls", "not called in this trace" + (f"; relatives seen: {rel}" if rel else "")))
    seen = entry.seen
    verdict = seen[seen["name"] == name]
    if len(verdict):
        row = verdict.iloc[0]
        refused = int(row["refused"])
        text = f"{row['status']}: {row['action']}"
        if refused:
            text += f"; refuses {refused:,} of {int(row['calls']):,} recorded calls"
        bad = row["action"] in DENY_ACTIONS or refused > 0
        rows.append(("policy", html.Span(text, className="bad" if bad else "good")))
        rows.append(("", html.Span(entry.policy_origin, className="muted small")))
    items = [html.Tr([html.Th(k), html.Td(v)]) for k, v in rows]
    return [html.H3(name), html.Table(items, className="kv")]


def select(entry: TraceEntry, wanted: Any) -> tuple[Any, str | None]:
    """(body, name) for a dropdown choice: an unknown or malformed choice shows the default syscall."""
    name = default_syscall(entry, wanted)
    return body(entry, name), name


def body(entry: TraceEntry, name: str | None) -> Any:
    if not name:
        return empty("This trace has no syscalls.")
    sites = entry.call_sites(name)
    parts: list[Any] = _facts(entry, name)
    if sites.calls:
        df = sites.stacks.copy()
        df["stack"] = [" ← ".join(f) for f in df["frames"]]
        df["share"] = (df["share"] * 100).round(1)
        df = df.drop(columns="frames")
        parts.append(html.H4(f"Ranked stacks ({len(df)} distinct)"))
        parts.append(
            table(
                ids.CALLSITES_TABLE,
                df,
                [
                    {"name": "#", "id": "rank", "type": "numeric"},
                    {"name": "calls", "id": "count", "type": "numeric", "format": {"specifier": ","}},
                    {"name": "%", "id": "share", "type": "numeric"},
                    {"name": "caller", "id": "caller"},
                    {"name": "stack (innermost first)", "id": "stack"},
                ],
                page_size=10,
            )
        )
        parts.append(graph(ids.CALLSITES_TREE, figures.icicle_figure(data.stack_tree(sites)), GRAPH_CONFIG))
    return html.Div(parts)
