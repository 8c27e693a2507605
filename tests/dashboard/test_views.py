"""The plain functions the callbacks hand off to, called directly (no browser, no server)."""

from __future__ import annotations

import json

import pytest
from dash import no_update
from tinyjail.dashboard import callbacks, ids
from tinyjail.dashboard.app import create_app, is_loopback
from tinyjail.dashboard.state import DashboardState
from tinyjail.dashboard.views import policy as policy_view
from tinyjail.dashboard.views import timeline

from tinyjail import groups, policy
from tinyjail.timeline import (
    EVENT_COLUMNS,
    PROCESS_COLUMNS,
    SECCOMP_COLUMNS,
    STACK_COLUMNS,
    Trace,
    empty_frame,
)


def empty_trace() -> Trace:
    meta = {
        "command": "true",
        "argv": ["true"],
        "cwd": "/",
        "start_time": "t",
        "kernel": "k",
        "tinyjail_version": "0",
        "exit_status": 0,
        "dropped": 0,
    }
    return Trace(
        events=empty_frame(EVENT_COLUMNS),
        processes=empty_frame(PROCESS_COLUMNS),
        stacks=empty_frame(STACK_COLUMNS),
        seccomp=empty_frame(SECCOMP_COLUMNS),
        meta=meta,
    )


@pytest.mark.parametrize("view", list(ids.VIEWS))
def test_every_view_renders_an_empty_trace(view: str) -> None:
    st = create_app([empty_trace()]).tinyjail_state  # type: ignore[attr-defined]
    out = callbacks.render(st, view, 0, None)
    json.dumps(out.to_plotly_json(), default=lambda o: o.to_plotly_json())


def test_parse_location_accepts_only_known_values(synth: Trace) -> None:
    st = DashboardState.build([synth, synth])
    assert callbacks.parse_location(st, "?view=callsites&trace=1&syscall=openat") == (
        "callsites",
        1,
        "openat",
    )
    assert callbacks.parse_location(st, "?view=../x&trace=9&syscall=/etc/passwd") == (no_update,) * 3
    assert callbacks.parse_location(st, "") == (no_update,) * 3


def test_policy_editor_round_trip(synth: Trace) -> None:
    entry = DashboardState.build([synth]).entry(0)
    uni = policy_view.universe(entry)
    on = policy_view.enabled_at_start(entry)
    assert set(on) == set(entry.counts["name"]) | {"execve"}  # the profile: what was seen, plus execve
    # Switching @network-io off removes its members; the preview is a loadable policy without them.
    before = [g for g in policy_view.data.group_state(uni, on)]
    assert "@network-io" in before
    new_groups, names, text, count = policy_view.update(
        entry, ids.POLICY_GROUPS, [g for g in before if g != "@network-io"], on, []
    )
    assert "@network-io" not in new_groups
    assert not set(names) & groups.expand("@network-io")
    edited = policy.loads(text)
    assert policy.evaluate(edited, "connect")[0] == edited.default_action
    assert policy.evaluate(edited, "read")[0] == "SCMP_ACT_ALLOW"
    assert count == f"{len(names)} of {len(uni)} syscalls allowed."
    assert policy_view.download(entry, text)["filename"] == "seccomp-worker-serve.json"


def test_timeline_click_and_select_functions(synth: Trace) -> None:
    entry = DashboardState.build([synth]).entry(0)
    row = 1234
    click = {"points": [{"x": 0.0, "y": 0, "customdata": [str(row), "x", "", "", "", "", ""]}]}
    panel = json.dumps(
        timeline.click_details(entry, click).to_plotly_json(), default=lambda o: o.to_plotly_json()
    )
    ev = synth.events.iloc[row]
    assert str(ev["name"]) in panel and f"pid {int(ev['pid'])} tid {int(ev['tid'])}" in panel
    sel = timeline.select_details(entry, {"range": {"x": [1.0, 2.0], "y": [0.5, 2.5]}})
    text = json.dumps(sel.to_plotly_json(), default=lambda o: o.to_plotly_json())
    want = int(entry.timeline.select(1_000_000_000, 2_000_000_000, 0.5, 2.5)["count"].sum())
    assert f"{want:,} calls" in text
    assert timeline.select_details(entry, None) is None


def test_is_loopback() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "::1", "localhost"):
        assert is_loopback(host)
    for host in ("0.0.0.0", "::", "10.0.0.1", "192.168.1.4"):
        assert not is_loopback(host)
