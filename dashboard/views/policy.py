"""Policy: the generated (or given) profile with its groups; toggle syscalls or whole groups and
watch the OCI JSON change; download it."""

from __future__ import annotations

import re
from typing import Any

from dash import dcc, html
from tinyjail.dashboard import data, ids
from tinyjail.dashboard.inputs import strings
from tinyjail.dashboard.state import TraceEntry

from tinyjail import groups as groups_mod

USE_GROUPS = "groups"


def universe(entry: TraceEntry) -> list[str]:
    """Every name the editor offers: seen, allowed by the policy, or found by static analysis."""
    names = set(entry.counts["name"]) | data.allowed_names_of(entry.policy)
    if entry.static:
        names |= entry.static
    return sorted(names)


def enabled_at_start(entry: TraceEntry) -> list[str]:
    return sorted(data.allowed_names_of(entry.policy) & set(universe(entry)))


def preview(entry: TraceEntry, enabled: list[str], options: list[str] | None) -> str:
    """The edited policy as the OCI JSON `tinyjail profile` would write."""
    from tinyjail.policy import dumps

    edited = data.edit_policy(entry.policy, enabled, use_groups=USE_GROUPS in (options or []))
    return dumps(edited)


def filename(entry: TraceEntry) -> str:
    stem = re.sub(r"[^A-Za-z0-9._]+", "-", entry.label).strip("-") or "trace"
    return f"seccomp-{stem}.json"


def layout(entry: TraceEntry) -> html.Div:
    uni = universe(entry)
    on = enabled_at_start(entry)
    counts = dict(zip(entry.counts["name"], entry.counts["count"], strict=True))
    static = entry.static or frozenset()
    syscall_opts = []
    for n in uni:
        calls = int(counts.get(n, 0))
        bits = [f"{calls:,} call{'s' if calls != 1 else ''}" if calls else "not seen"]
        if n in static:
            bits.append("static")
        syscall_opts.append(
            {
                "label": html.Span(
                    [html.Span(n, className="name"), html.Span(" · ".join(bits), className="muted small")]
                ),
                "value": n,
            }
        )
    uni_set = set(uni)
    group_opts = []
    for group in groups_mod.GROUPS:
        if group == "@known":
            continue
        members = groups_mod.expand(group) & uni_set
        if members:
            group_opts.append({"label": f"{group} ({len(members)})", "value": group})
    return html.Div(
        [
            html.Div(
                [
                    html.Span(
                        f"Base: {entry.policy_origin}; default action {entry.policy.default_action}. ",
                        className="muted",
                    ),
                    html.Span(id=ids.POLICY_COUNT, className="muted"),
                ]
            ),
            html.Div(
                [
                    html.Div(
                        [
                            html.H4("Groups"),
                            html.Div(
                                "A group switched on allows all of its members listed here.",
                                className="muted small",
                            ),
                            dcc.Checklist(
                                id=ids.POLICY_GROUPS,
                                options=group_opts,
                                value=data.group_state(uni, on),
                                className="checks groups",
                            ),
                            html.H4("Syscalls"),
                            dcc.Checklist(
                                id=ids.POLICY_SYSCALLS,
                                options=syscall_opts,
                                value=on,
                                className="checks syscalls",
                            ),
                        ],
                        className="panel scroll",
                    ),
                    html.Div(
                        [
                            html.Div(
                                [
                                    dcc.Checklist(
                                        id=ids.POLICY_OPTIONS,
                                        options=[
                                            {"label": " write whole groups as @group", "value": USE_GROUPS}
                                        ],
                                        value=[],
                                        inline=True,
                                    ),
                                    html.Button(
                                        "Download JSON", id=ids.POLICY_DOWNLOAD_BUTTON, className="button"
                                    ),
                                    dcc.Download(id=ids.POLICY_DOWNLOAD),
                                ],
                                className="toolbar",
                            ),
                            html.Pre(preview(entry, on, []), id=ids.POLICY_JSON, className="json"),
                        ],
                        className="panel",
                    ),
                ],
                className="grid2 policy",
            ),
        ]
    )


def update(
    entry: TraceEntry,
    trigger: str | None,
    groups: Any,
    names: Any,
    options: Any,
) -> tuple[list[str], list[str], str, str]:
    """Apply a toggle: a group change rewrites the names, a name change recomputes the groups.
    Returns (groups, names, JSON preview, count line). Values that are not lists of strings
    (crafted requests) count as: names -> the profile as at start, groups -> no group change,
    options -> none."""
    uni = universe(entry)
    checked = strings(names)
    if checked is None:
        checked, trigger = enabled_at_start(entry), None
    if strings(groups) is None:
        groups, trigger = None, (None if trigger == ids.POLICY_GROUPS else trigger)
    else:
        groups = [g for g in groups or [] if g in groups_mod.GROUPS]
    options = strings(options) or []
    names = sorted(set(checked) & set(uni))
    if trigger == ids.POLICY_GROUPS:
        before = data.group_state(uni, names)
        names = data.toggle_groups(uni, names, before, groups or [])
    new_groups = data.group_state(uni, names)
    text = preview(entry, names, options)
    return new_groups, names, text, f"{len(names)} of {len(uni)} syscalls allowed."


def download(entry: TraceEntry, text: Any) -> dict[str, Any]:
    return {"content": text if isinstance(text, str) else "", "filename": filename(entry),
            "type": "application/json"}
