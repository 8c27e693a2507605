"""Property tests (hypothesis) for the policy model: round trips are exact, the validator only
ever raises PolicyError, merge keeps every verdict both inputs agree on."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyjail import groups, syscalls
from tinyjail import policy as pol
from tinyjail.errors import PolicyError

NATIVE = sorted(syscalls.table("x86_64"))
SMALL_GROUPS = sorted(g for g in groups.GROUPS if len(groups.expand(g)) < 40)
CAPS = ["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_BPF", "CAP_SYS_PTRACE"]

u64 = st.one_of(st.integers(0, 64), st.integers(0, 2**64 - 1), st.sampled_from([2**32 - 1, 2**32, 2**63]))


@st.composite
def arg_lists(draw: st.DrawFn, syscall: str | None) -> list[dict[str, Any]]:
    out = []
    for index in draw(st.lists(st.integers(0, 5), max_size=3, unique=True)):
        op = draw(st.sampled_from(pol.OPS))
        arg: dict[str, Any] = {"index": index, "value": draw(u64), "op": op}
        if syscall == "socket" and index == 0 and draw(st.booleans()):
            arg["value"] = draw(st.sampled_from(["AF_UNIX", "AF_INET", "AF_NETLINK", "0x10"]))
        if op == "SCMP_CMP_MASKED_EQ" or draw(st.booleans()):
            arg["valueTwo"] = draw(u64)
        out.append(arg)
    return out


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    cond: dict[str, Any] = {}
    if draw(st.booleans()):
        cond["caps"] = draw(st.lists(st.sampled_from(CAPS), min_size=1, max_size=2, unique=True))
    if draw(st.booleans()):
        cond["arches"] = draw(
            st.lists(st.sampled_from(["amd64", "x32", "arm64", "s390x"]), min_size=1, unique=True)
        )
    if draw(st.booleans()):
        cond["minKernel"] = draw(st.sampled_from(["3.10", "4.8", "5.4", "99.0"]))
    return cond


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    """Valid policy objects: each syscall in at most one rule (so no conflicts), at most one
    group rule (explicit names may override it)."""
    names = draw(st.lists(st.sampled_from(NATIVE), unique=True, max_size=40))
    cuts = sorted(draw(st.lists(st.integers(0, len(names)), max_size=6)))
    chunks = [names[a:b] for a, b in zip([0, *cuts], [*cuts, len(names)], strict=True) if names[a:b]]
    entries = []
    if draw(st.booleans()):
        chunks.insert(0, draw(st.lists(st.sampled_from(SMALL_GROUPS), min_size=1, max_size=2, unique=True)))
    for chunk in chunks:
        action = draw(st.sampled_from(pol.ACTIONS))
        entry: dict[str, Any] = {"names": chunk, "action": action}
        if action in pol.RET_DATA_ACTIONS and draw(st.booleans()):
            entry["errnoRet"] = draw(st.integers(0, pol.MAX_ERRNO))
        single = chunk[0] if len(chunk) == 1 else None
        if draw(st.booleans()):
            entry["args"] = draw(arg_lists(single))
        if draw(st.booleans()):
            entry["comment"] = draw(st.text(max_size=10))
        for key in ("includes", "excludes"):
            if draw(st.integers(0, 3)) == 0:
                entry[key] = draw(conditions())
        entries.append(entry)
    default = draw(st.sampled_from(pol.ACTIONS))
    obj: dict[str, Any] = {"defaultAction": default, "syscalls": entries}
    if default in pol.RET_DATA_ACTIONS and draw(st.booleans()):
        obj["defaultErrnoRet"] = draw(st.integers(0, pol.MAX_ERRNO))
    if draw(st.booleans()):
        obj["architectures"] = draw(
            st.lists(
                st.sampled_from(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
                min_size=1,
                unique=True,
            )
        )
    if draw(st.booleans()):
        obj["flags"] = draw(st.lists(st.sampled_from(pol.FLAGS), unique=True))
    if draw(st.booleans()):
        obj["listenerPath"] = "/run/tinyjail.sock"
        obj["listenerMetadata"] = draw(st.text(max_size=8))
    return obj


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(policies())
def test_load_dump_load_is_identity(obj: dict[str, Any]) -> None:
    first = pol.loads(json.dumps(obj), source="p.json")
    second = pol.loads(pol.dumps(first), source="p.json")
    assert second == first
    assert pol.to_dict(second) == pol.to_dict(first)
    assert pol.effective_rules(second) == pol.effective_rules(first)


@SETTINGS
@given(policies())
def test_written_form_is_kept(obj: dict[str, Any]) -> None:
    """Saving writes names (groups included), symbolic values and moby conditions as given."""
    out = pol.to_dict(pol.from_dict(obj))
    assert [e["names"] for e in out["syscalls"]] == [e["names"] for e in obj["syscalls"]]
    for got, given_entry in zip(out["syscalls"], obj["syscalls"], strict=True):
        assert [a["value"] for a in got.get("args", [])] == [a["value"] for a in given_entry.get("args", [])]
        assert got.get("includes", {}) == given_entry.get("includes", {})


@settings(max_examples=60, deadline=None)
@given(policies(), st.lists(st.integers(0, 2**64 - 1), min_size=6, max_size=6))
def test_evaluate_returns_an_action_of_the_policy(obj: dict[str, Any], args: list[int]) -> None:
    p = pol.from_dict(obj)
    possible = {p.default_action, *(r.action for r in p.syscalls), "SCMP_ACT_KILL_PROCESS"}
    if "SCMP_ACT_KILL" in possible:
        possible.add("SCMP_ACT_KILL_THREAD")
    for name in ("read", "socket", "openat", NATIVE[len(obj["syscalls"]) % len(NATIVE)]):
        action, err = pol.evaluate(p, name, args)
        assert action in possible
        assert (err is not None) == (action in pol.RET_DATA_ACTIONS)


@settings(max_examples=40, deadline=None)
@given(policies(), policies())
def test_merge_keeps_every_verdict_both_agree_on(a_obj: dict[str, Any], b_obj: dict[str, Any]) -> None:
    a, b = pol.from_dict(a_obj, source="a"), pol.from_dict(b_obj, source="b")
    merged, _ = pol.merge(a, b)
    for name in ("read", "write", "openat", "socket", "ptrace", *NATIVE[::40]):
        va, vb = pol.evaluate(a, name), pol.evaluate(b, name)
        if va == vb:
            assert pol.evaluate(merged, name) == va, name


@settings(max_examples=120, deadline=None)
@given(policies(), st.lists(st.sampled_from(CAPS), unique=True))
def test_portable_form_compiles_to_the_same_rules(obj: dict[str, Any], caps: list[str]) -> None:
    """Writing groups out, values as numbers and moby conditions decided keeps the filter."""
    written = pol.from_dict(obj)
    text = pol.dumps(written, portable=True, caps=caps)
    portable = pol.loads(text)
    assert pol.is_portable(portable)
    assert "@" not in "".join(n for r in portable.syscalls for n in r.names)

    def by_value(p: pol.Policy, granted: list[str] | None) -> list[tuple[Any, ...]]:
        return [(r.name, r.action, r.errno_ret, tuple(a.key() for a in r.args))
                for r in pol.effective_rules(p, caps=granted)]

    assert by_value(portable, None) == by_value(written, caps)
    assert pol.effective_architectures(portable) == pol.effective_architectures(written)
    assert pol.dumps(portable, portable=True) == pol.dumps(portable)   # idempotent


# ----------------------------------------------------------------------------- hostile input

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["SCMP_ACT_ALLOW", "SCMP_CMP_EQ", "@file-system", "read", "AF_UNIX", "CAP_BPF", "4.8"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [*pol.TOP_KEYS, *pol.RULE_KEYS, *pol.ARG_KEYS, *pol.CONDITION_KEYS, "linux", "seccomp", "x"]
            )
            | st.text(max_size=8)
            | st.integers(0, 3),
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_validator_raises_only_policy_error_on_any_json(value: Any) -> None:
    try:
        pol.from_dict(value, source="x.json")
    except PolicyError as err:
        assert err.problems and all(p.startswith("x.json") for p in err.problems)


@settings(max_examples=150, deadline=None)
@given(policies(), st.data())
def test_validator_survives_mutated_policies(obj: dict[str, Any], data: st.DataObject) -> None:
    """Replace one random value deep inside a valid policy by anything."""
    node: Any = obj
    while isinstance(node, dict | list) and node and data.draw(st.booleans()):
        key = data.draw(
            st.sampled_from(sorted(node)) if isinstance(node, dict) else st.integers(0, len(node) - 1)
        )
        if not isinstance(node[key], dict | list) or not node[key]:
            node[key] = data.draw(json_values)
            break
        node = node[key]
    try:
        p = pol.from_dict(obj, source="m.json")
    except PolicyError:
        return
    pol.effective_rules(p)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_loads_raises_only_policy_error_on_any_bytes(data: bytes) -> None:
    try:
        pol.loads(data, source="b.json")
    except PolicyError as err:
        assert err.problems


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_loads_raises_only_policy_error_on_any_text(text: str) -> None:
    try:
        pol.loads(text, source="t.json")
    except PolicyError as err:
        assert err.problems
