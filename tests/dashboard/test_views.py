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


# -- crafted values (what a POST to /_dash-update-component can carry) -----------------------

CRAFTED = ["/etc/passwd", {"a": 1}, "x", 7, -1, 1.5, True, [1, "x"], ["@x"], [{"a": 1}]]


def _text(component: object) -> str:
    return json.dumps(component, default=lambda o: o.to_plotly_json())


def test_a_crafted_call_sites_choice_shows_the_default_syscall(synth: Trace) -> None:
    from tinyjail.dashboard.views import callsites

    entry = DashboardState.build([synth]).entry(0)
    top = str(entry.counts["name"].iloc[0])
    _, default = callsites.select(entry, None)
    assert default == top
    for bad in [*CRAFTED, "", "syscall_9999"]:
        body, name = callsites.select(entry, bad)
        assert name == top, bad
        assert f'"children": "{top}"' in _text(body)   # the explain header names the default
    chosen = str(entry.counts["name"].iloc[-1])
    assert callsites.select(entry, chosen)[1] == chosen
    # a crafted store value on the way in (deep link, tab switch) gets the same default
    view = callbacks.render(DashboardState.build([synth]), "callsites", 0, {"a": 1})
    assert f'"value": "{top}"' in _text(view)


def test_crafted_timeline_events_change_nothing(synth: Trace) -> None:
    entry = DashboardState.build([synth]).entry(0)
    for bad in [*CRAFTED, {"xaxis.range[0]": "inf", "xaxis.range[1]": 1}, {"xaxis.range": ["a", "b"]},
                {"xaxis.range[0]": 1e300, "xaxis.range[1]": 1e301}, {"xaxis.range": "x"}]:
        assert timeline.refine(entry, bad) is None, bad
    for bad in [*CRAFTED, {"points": "x"}, {"points": [{}]}, {"points": ["x"]},
                {"points": [{"customdata": ["x"]}]},
                {"points": [{"customdata": [-1, 0, 0, 0, 0, "a", "b"], "y": "q"}]},
                {"points": [{"customdata": [-1, 0, 0, 0, 0, 0, 1], "y": 0.5}]},
                {"points": [{"customdata": [-1]}]}, {"points": [{"text": {"a": 1}}]}]:
        assert timeline.click_details(entry, bad) is None, bad
    for bad in [*CRAFTED, {"range": {"x": ["/etc", 1]}}, {"range": "x"}, {"range": {"x": [0, 1e300]}},
                {"range": {"x": ["nan", 1]}}, {"range": {"x": [0, 1, 2]}}, {"range": {"x": "ab"}}]:
        assert timeline.select_details(entry, bad) is None, bad
    # bad lanes in an otherwise good selection: the time range alone
    sel = timeline.select_details(entry, {"range": {"x": [1.0, 2.0], "y": ["a", 1]}})
    want = int(entry.timeline.select(1_000_000_000, 2_000_000_000)["count"].sum())
    assert f"{want:,} calls" in _text(sel)
    # a click on a bin far outside the lanes still names a real lane
    far = {"points": [{"customdata": [-1, 0, 0, 0, 0, "1.0", "2.0"], "y": 10**9}]}
    assert entry.timeline.lanes["label"].iloc[-1] in _text(timeline.click_details(entry, far))
    # numbers as Plotly sends them still work: a zoom, strings in customdata
    assert timeline.refine(entry, {"xaxis.range[0]": "1.0", "xaxis.range[1]": 2}) is not None


def test_crafted_policy_editor_values_fall_back_to_the_profile(synth: Trace) -> None:
    entry = DashboardState.build([synth]).entry(0)
    on = policy_view.enabled_at_start(entry)
    uni = policy_view.universe(entry)
    start = policy_view.update(entry, None, policy_view.data.group_state(uni, on), on, [])
    for bad in [{"a": 1}, "x", 7, [{"a": 1}], [1, "x"]]:
        assert policy_view.update(entry, ids.POLICY_SYSCALLS, [], bad, []) == start, bad
        assert policy_view.update(entry, ids.POLICY_GROUPS, bad, on, bad) == start, bad
    # unknown group names are ignored, known ones still apply
    groups, names, _, _ = policy_view.update(entry, ids.POLICY_GROUPS, ["@x", *start[0]], on, [])
    assert (groups, names) == (start[0], start[1])
    assert policy_view.download(entry, {"a": 1})["content"] == ""


def test_crafted_navigation_and_table_clicks(synth: Trace) -> None:
    st = DashboardState.build([synth])
    for bad in [{"a": 1}, 7, ["?view=seen"], True]:
        assert callbacks.parse_location(st, bad) == (no_update,) * 3
    for bad in [*CRAFTED, {"row_id": {"a": 1}}, {"row_id": ""}, {"row_id": "x" * 100}, {"row": 1}]:
        assert callbacks.seen_row(bad) == (no_update, no_update), bad
    assert callbacks.seen_row({"row": 3, "column_id": "name", "row_id": "openat"}) == ("callsites", "openat")
