"""Crafted POSTs to /_dash-update-component, through Dash's real request handling (Flask's test
client: no socket, no browser). Each gets the default view or no change, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import sample_trace
from tinyjail.dashboard import ids
from tinyjail.dashboard.app import create_app

BAD_VALUES: list[Any] = ["/etc/passwd", {"a": 1}, "x", 7, -1, 1e300, True, [1, "x"], ["@x"], [{"a": 1}],
                         {"points": "x"}, {"points": [{"customdata": ["x"]}]}, {"range": {"x": ["/etc", 1]}},
                         {"range": "x"}, {"xaxis.range[0]": "inf", "xaxis.range[1]": 1}, {"row_id": {"a": 1}}]


@pytest.fixture(scope="module")
def client() -> Any:
    app = create_app([sample_trace("ls"), sample_trace("curl")])
    test_client = app.server.test_client()
    assert test_client.get("/").status_code == 200
    return test_client


def _dependencies(client: Any) -> list[dict[str, Any]]:
    deps: list[dict[str, Any]] = client.get("/_dash-dependencies").get_json()
    return deps


def _outputs(output: str) -> Any:
    """Dash's request form of a callback's outputs (one, or ``..a.p...b.q..`` for several)."""
    def one(spec: str) -> dict[str, str]:
        cid, prop = spec.rsplit(".", 1)
        return {"id": cid, "property": prop.split("@")[0]}

    if output.startswith(".."):
        return [one(o) for o in output[2:-2].split("...")]
    return one(output)


def _post(client: Any, dep: dict[str, Any], values: dict[str, Any]) -> Any:
    """Fire ``dep`` with ``values`` (``"id.prop"`` -> value; the rest None) as a browser would."""
    def items(specs: list[dict[str, str]]) -> list[dict[str, Any]]:
        return [{**s, "value": values.get(f"{s['id']}.{s['property']}")} for s in specs]

    changed = [k for k in values if any(f"{i['id']}.{i['property']}" == k for i in dep["inputs"])]
    payload = {"output": dep["output"], "outputs": _outputs(dep["output"]), "inputs": items(dep["inputs"]),
               "state": items(dep["state"]), "changedPropIds": changed or [
                   f"{dep['inputs'][0]['id']}.{dep['inputs'][0]['property']}"]}
    return client.post("/_dash-update-component", json=payload)


def _dep(client: Any, input_id: str) -> dict[str, Any]:
    return next(d for d in _dependencies(client) if any(i["id"] == input_id for i in d["inputs"]))


@pytest.mark.parametrize("bad", ["/etc/passwd", {"a": 1}], ids=["path", "object"])
def test_call_sites_choice_from_the_audit(client: Any, bad: Any) -> None:
    dep = _dep(client, ids.CALLSITES_SYSCALL)
    good = _post(client, dep, {f"{ids.CALLSITES_SYSCALL}.value": "openat", f"{ids.TRACE}.value": 0})
    assert good.status_code == 200
    assert good.get_json()["response"][ids.SYSCALL]["data"] == "openat"
    resp = _post(client, dep, {f"{ids.CALLSITES_SYSCALL}.value": bad, f"{ids.TRACE}.value": 0})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    out = resp.get_json()["response"]
    shown = out[ids.SYSCALL]["data"]
    assert shown != bad and isinstance(shown, str)   # the default: ls's most called syscall
    assert f'"children": "{shown}"' in json.dumps(out[ids.CALLSITES_BODY])


@pytest.mark.parametrize("prop", ["relayoutData", "clickData", "selectedData"])
def test_timeline_events_from_the_audit(client: Any, prop: str) -> None:
    dep = next(d for d in _dependencies(client)
               if any(i["id"] == ids.TIMELINE_GRAPH and i["property"] == prop for i in d["inputs"]))
    for bad in ("x", {"range": {"x": ["/etc", 1]}}):
        resp = _post(client, dep, {f"{ids.TIMELINE_GRAPH}.{prop}": bad, f"{ids.TRACE}.value": 0})
        assert resp.status_code == 200, (bad, resp.get_data(as_text=True)[:300])
        assert resp.get_json()["response"] == {}   # no_update: the view stays as it is


def test_no_callback_answers_a_crafted_value_with_a_server_error(client: Any) -> None:
    """Every callback, every input and state, each bad value (the others unset or plausible)."""
    plausible: list[Any] = [None, 0, "callsites", ["read"]]
    for dep in _dependencies(client):
        keys = [f"{s['id']}.{s['property']}" for s in dep["inputs"] + dep["state"]]
        for key in keys:
            for other in plausible:
                for bad in BAD_VALUES:
                    values = {k: (bad if k == key else other) for k in keys}
                    resp = _post(client, dep, values)
                    assert resp.status_code < 500, (dep["output"][:60], key, bad, other)
                    assert "Traceback" not in resp.get_data(as_text=True)
