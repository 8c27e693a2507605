"""Pure aggregations behind the dashboard views: DataFrames in, DataFrames or dataclasses out.

Nothing here imports Dash or Plotly, so every number a view shows is unit-testable without a
browser. The timeline's downsampling lives in `tinyjail.dashboard.downsample`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tinyjail import groups as groups_mod
from tinyjail import syscalls
from tinyjail.errors import UsageError

if TYPE_CHECKING:
    from tinyjail.policy import Policy, SyscallRule
    from tinyjail.timeline import Trace

COLOUR_GROUPS: tuple[str, ...] = (
    "@process",
    "@signal",
    "@network-io",
    "@io-event",
    "@ipc",
    "@file-system",
    "@basic-io",
    "@timer",
    "@clock",
    "@memlock",
    "@sync",
    "@aio",
    "@setuid",
    "@resources",
    "@chown",
    "@mount",
    "@module",
    "@debug",
    "@keyring",
    "@pkey",
    "@swap",
    "@reboot",
    "@raw-io",
    "@cpu-emulation",
    "@obsolete",
    "@default",
    "@system-service",
)
"""The group that colours a syscall is the first of these that holds it: specific groups
before the catch-all ones, so ``read`` is @basic-io and not @system-service."""

OTHER = "other"
UMBRELLA_GROUPS = frozenset({"@known", "@system-service"})
"""Groups so wide that listing them next to a syscall (or as a bar) says nothing."""

ALLOWING = frozenset({"SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE"})
"""Actions that let the call reach the kernel (LOG logs it, NOTIFY/TRACE hand it to a supervisor)."""

STATUS_ALLOWED = "seen · allowed"
STATUS_DENIED = "seen · denied"
STATUS_LOGGED = "seen · logged"
STATUS_UNUSED = "allowed · never seen"
STATUS_STATIC = "static analysis only"
STATUS_ORDER = (STATUS_DENIED, STATUS_LOGGED, STATUS_STATIC, STATUS_UNUSED, STATUS_ALLOWED)
"""Seen-vs-missed statuses, most urgent first (denied calls are the ones that would break the program)."""


@functools.cache
def colour_group(name: str) -> str:
    """The one group a syscall is coloured by on the timeline (see COLOUR_GROUPS)."""
    member_of = set(groups_mod.groups_of(name))
    for group in COLOUR_GROUPS:
        if group in member_of:
            return group
    return OTHER


@functools.cache
def display_groups(name: str) -> tuple[str, ...]:
    """The groups worth showing next to a syscall (the catch-all ones left out)."""
    return tuple(g for g in groups_mod.groups_of(name) if g not in UMBRELLA_GROUPS)


# ---------------------------------------------------------------------------------------------
# Overview


@dataclass(frozen=True)
class Summary:
    """The headline numbers of one trace."""

    label: str
    command: str
    argv: tuple[str, ...]
    exit_status: Any
    duration_ns: int
    events: int
    syscalls: int
    processes: int
    threads: int
    dropped: int
    errors: int
    seccomp: int


def trace_span(trace: Trace) -> tuple[int, int]:
    """First and last timestamp (ns) of anything in the trace; (0, 0) for an empty one."""
    stamps = [trace.events["ts"], trace.processes["ts"], trace.seccomp["ts"]]
    lows = [int(s.min()) for s in stamps if len(s)]
    highs = [int(s.max()) for s in stamps if len(s)]
    if not lows:
        return 0, 0
    return min(lows), max(highs)


def summary(trace: Trace, label: str | None = None) -> Summary:
    """Command, duration, exit status, sizes and drops of ``trace``."""
    meta = trace.meta
    ev = trace.events
    pids = set(ev["pid"].unique().tolist()) | set(trace.processes["pid"].unique().tolist())
    tids = set(ev["tid"].unique().tolist()) | set(trace.processes["tid"].unique().tolist())
    if "duration_ns" in meta:
        duration = int(meta["duration_ns"])
    elif isinstance(meta.get("duration_s"), int | float):
        duration = int(float(meta["duration_s"]) * 1e9)
    else:
        lo, hi = trace_span(trace)
        duration = hi - lo
    argv = meta.get("argv") or []
    return Summary(
        label=label or trace.name,
        command=str(meta.get("command", "")),
        argv=tuple(str(a) for a in argv),
        exit_status=meta.get("exit_status"),
        duration_ns=duration,
        events=len(ev),
        syscalls=int(ev["name"].nunique()),
        processes=len(pids),
        threads=len(tids),
        dropped=trace.dropped,
        errors=int((ev["ret"] < 0).sum() if len(ev) else 0) if "ret" in ev else 0,
        seccomp=len(trace.seccomp),
    )


def syscall_counts(events: pd.DataFrame) -> pd.DataFrame:
    """One row per syscall name: calls, failed calls, processes, first time seen; most called first."""
    if events.empty:
        return pd.DataFrame(
            {
                "name": pd.Series([], dtype="string"),
                "count": pd.Series([], dtype="int64"),
                "errors": pd.Series([], dtype="int64"),
                "pids": pd.Series([], dtype="int64"),
                "first_ts": pd.Series([], dtype="int64"),
                "group": pd.Series([], dtype="string"),
            }
        )
    names = events["name"].astype("category")
    grouped = events.assign(name=names, failed=events["ret"] < 0).groupby("name", observed=True)
    out = pd.DataFrame(
        {
            "count": grouped.size(),
            "errors": grouped["failed"].sum(),
            "pids": grouped["pid"].nunique(),
            "first_ts": grouped["ts"].min(),
        }
    ).reset_index()
    out["name"] = out["name"].astype("string")
    out["group"] = [colour_group(n) for n in out["name"]]
    out = out.sort_values(["count", "name"], ascending=[False, True], kind="stable").reset_index(drop=True)
    return out.astype({"count": "int64", "errors": "int64", "pids": "int64", "first_ts": "int64"})


def group_counts(counts: pd.DataFrame, *, include_umbrella: bool = False) -> pd.DataFrame:
    """Calls per systemd group (a syscall counts in every group holding it): group, calls, syscalls."""
    by_name = dict(zip(counts["name"], counts["count"], strict=True))
    rows = []
    for group in groups_mod.GROUPS:
        if group in UMBRELLA_GROUPS and not include_umbrella:
            continue
        members = groups_mod.expand(group) & by_name.keys()
        if members:
            rows.append(
                {
                    "group": group,
                    "calls": int(sum(by_name[m] for m in members)),
                    "syscalls": len(members),
                    "members": ", ".join(sorted(members)),
                }
            )
    total_other = [n for n in by_name if colour_group(n) == OTHER]
    if total_other:
        rows.append(
            {
                "group": OTHER,
                "calls": int(sum(by_name[n] for n in total_other)),
                "syscalls": len(total_other),
                "members": ", ".join(sorted(total_other)),
            }
        )
    df = pd.DataFrame(rows, columns=["group", "calls", "syscalls", "members"])
    return df.sort_values(["calls", "group"], ascending=[False, True], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Seen vs missed


def load_static(path: str | Path) -> frozenset[str]:
    """Read a ``--static`` file: syscall names a static analysis says the program may call.

    Accepted JSON: a list of names (``["read", "openat"]``), or an object with a ``"syscalls"``
    list (of names or of objects with a ``"name"``), or an object whose keys are names. Names go
    through `tinyjail.syscalls.canonical_name` (``SYS_open``, ``__NR_open``, numbers accepted).
    """
    file = Path(path)
    try:
        obj = json.loads(file.read_text())
    except OSError as err:
        raise UsageError(f"{file}: cannot read --static file ({err.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{file}: --static is not JSON ({err}); expected a list of syscall names") from None
    where = "$"
    items: Iterable[Any]
    if isinstance(obj, list):
        items = obj
    elif isinstance(obj, dict) and "syscalls" in obj:
        where = "$.syscalls"
        items = obj["syscalls"]
        if not isinstance(items, list):
            raise UsageError(f"{file}: $.syscalls: expected a list of syscall names")
    elif isinstance(obj, dict):
        items = list(obj)
    else:
        raise UsageError(f'{file}: $: expected a list of syscall names or an object with a "syscalls" list')
    names: set[str] = set()
    for i, item in enumerate(items):
        raw = item.get("name") if isinstance(item, dict) else item
        if not isinstance(raw, str | int) or isinstance(raw, bool):
            raise UsageError(f"{file}: {where}[{i}]: expected a syscall name, got {json.dumps(item)[:40]}")
        try:
            names.add(syscalls.canonical_name(raw))
        except UsageError as err:
            raise UsageError(f"{file}: {where}[{i}]: {err}") from None
    return frozenset(names)


def policy_allowed_names(policy: Policy, candidates: Iterable[str] = ()) -> frozenset[str]:
    """Names some rule of ``policy`` lets through; with an allowing default action, every known name."""
    from tinyjail import policy as policy_mod

    if policy.default_action in ALLOWING:
        return frozenset(n for n in syscalls.table() if policy_mod.allowed(policy, n)) | frozenset(
            n for n in candidates if policy_mod.allowed(policy, n)
        )
    rules = policy_mod.effective_rules(policy)
    return frozenset(r.name for r in rules if r.action in ALLOWING)


def _verdicts(policy: Policy, events: pd.DataFrame, name: str, checked: frozenset[int]) -> tuple[str, int]:
    """Strictest action the policy takes on the recorded calls of ``name``, and how many calls it refuses.

    Without argument conditions one evaluation decides every call; with them each distinct
    value of the arguments the rules look at (``checked``) is evaluated, so a rule narrowed
    below what was recorded shows up here."""
    from tinyjail import policy as policy_mod
    from tinyjail.policy import ACTIONS, DENY_ACTIONS

    if not checked:
        action, _ = policy_mod.evaluate(policy, name)
        calls = int((events["name"] == name).sum())
        return action, calls if action in DENY_ACTIONS else 0
    cols = [f"arg{i}" for i in sorted(checked)]
    rows = events.loc[events["name"] == name, cols]
    shapes = rows.value_counts(sort=False)
    worst, refused = "SCMP_ACT_ALLOW", 0
    for values, n in shapes.items():
        vals = values if isinstance(values, tuple) else (values,)
        args = [0] * 6
        for i, v in zip(sorted(checked), vals, strict=True):
            args[i] = int(v)
        action, _ = policy_mod.evaluate(policy, name, tuple(args))
        if ACTIONS.index(action) < ACTIONS.index(worst):
            worst = action
        if action in DENY_ACTIONS:
            refused += int(n)
    return worst, refused


def _action_without_calls(policy: Policy, rules: list[Any], name: str) -> str:
    """What ``policy`` does with ``name`` when no call shows which arguments it takes: with
    argument rules, their actions and the action for any other arguments (not the verdict for
    all-zero arguments, which just satisfies or misses some rule)."""
    from tinyjail.tracer.explain import otherwise_action

    conditional = sorted({r.action for r in rules if r.name == name and r.args})
    otherwise, _ = otherwise_action(policy, name)
    if not conditional:
        return otherwise
    return f"{'/'.join(conditional)} for some arguments, else {otherwise}"


def seen_vs_missed(
    events: pd.DataFrame, policy: Policy, static: frozenset[str] | None = None
) -> pd.DataFrame:
    """Every syscall that was seen, is allowed, or static analysis found, with its status for ``policy``.

    Columns: name, status, calls, refused (recorded calls the policy would refuse), action,
    groups, static (bool or None when no static list), description, risk.
    """
    from tinyjail import policy as policy_mod
    from tinyjail.policy import DENY_ACTIONS

    counts = syscall_counts(events)
    seen = dict(zip(counts["name"], counts["count"], strict=True))
    rules = policy_mod.effective_rules(policy)
    checked: dict[str, frozenset[int]] = {}
    for r in rules:
        if r.args:
            checked[r.name] = checked.get(r.name, frozenset()) | {a.index for a in r.args}
    allowed = policy_allowed_names(policy, seen)
    static_names = static or frozenset()
    rows = []
    for name in sorted(set(seen) | allowed | static_names):
        calls = int(seen.get(name, 0))
        if calls:
            action, refused = _verdicts(policy, events, name, checked.get(name, frozenset()))
            if action in DENY_ACTIONS:
                status = STATUS_DENIED
            elif action == "SCMP_ACT_LOG":
                status = STATUS_LOGGED
            else:
                status = STATUS_ALLOWED
        else:
            action = _action_without_calls(policy, rules, name)
            refused = 0
            if name in static_names and name not in allowed:
                status = STATUS_STATIC
            elif name in allowed:
                status = STATUS_UNUSED
            else:
                status = STATUS_STATIC
        rows.append(
            {
                "name": name,
                "status": status,
                "calls": calls,
                "refused": refused,
                "action": action,
                "groups": " ".join(display_groups(name)),
                "static": (name in static_names) if static is not None else None,
                "description": describe(name),
                "risk": risk(name),
            }
        )
    df = pd.DataFrame(
        rows,
        columns=["name", "status", "calls", "refused", "action", "groups", "static", "description", "risk"],
    )
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    df["_o"] = df["status"].map(order)
    df = df.sort_values(["_o", "calls", "name"], ascending=[True, False, True], kind="stable")
    return df.drop(columns="_o").reset_index(drop=True)


def describe(name: str) -> str:
    """One line on what the syscall does (empty when the descriptions data is not installed)."""
    try:
        from tinyjail.descriptions import describe as _describe
    except ImportError:
        return ""
    try:
        return str(_describe(name))
    except (KeyError, LookupError, ValueError):
        return ""


def risk(name: str) -> str:
    """Why the syscall is dangerous, or empty."""
    try:
        from tinyjail.risk import RISK
    except ImportError:
        return ""
    return str(RISK.get(name, ""))


# ---------------------------------------------------------------------------------------------
# Call sites


def frame_label(module: Any, symbol: Any, offset: Any, ip: Any) -> str:
    """``symbol+0x1a (libc.so.6)``, or ``libfoo.so+0x1234`` when there is no symbol."""
    mod = Path(str(module)).name if isinstance(module, str) and module else "[unknown]"
    if isinstance(symbol, str) and symbol:
        off = int(offset) if offset is not None and not pd.isna(offset) else 0
        return f"{symbol}+{off:#x} ({mod})" if off else f"{symbol} ({mod})"
    if offset is not None and not pd.isna(offset) and int(offset) >= 0:
        return f"{mod}+{int(offset):#x}"
    return f"{mod} {int(ip):#x}"


def stack_frames(stacks: pd.DataFrame) -> dict[int, list[str]]:
    """stack_id -> frame labels, innermost (the syscall) first."""
    if stacks.empty:
        return {}
    ordered = stacks.sort_values(["stack_id", "depth"], kind="stable")
    labels = [
        frame_label(m, s, o, ip)
        for m, s, o, ip in zip(
            ordered["module"], ordered["symbol"], ordered["offset"], ordered["ip"], strict=True
        )
    ]
    out: dict[int, list[str]] = {}
    for sid, label in zip(ordered["stack_id"].tolist(), labels, strict=True):
        out.setdefault(int(sid), []).append(label)
    return out


@dataclass
class CallSites:
    """Where one syscall was made: ranked stacks with counts, and who made it."""

    name: str
    calls: int
    stacks: pd.DataFrame  # rank, stack_id, count, share, caller, frames (list[str], innermost first)
    errors: pd.DataFrame  # errno, count
    processes: pd.DataFrame  # pid, comm, count
    paths: pd.DataFrame  # path, count (path-like argument, when recorded)
    first_ts: int | None = None
    seccomp: pd.DataFrame = field(default_factory=pd.DataFrame)  # action, count


NO_STACK = "(no stack taken)"


def call_sites(trace: Trace, name: str, top: int = 50) -> CallSites:
    """Rank the stacks that made ``name`` in ``trace`` by how many calls each carried."""
    ev = trace.events
    mask = (ev["name"] == name).to_numpy()
    sub = ev.loc[mask, ["stack_id", "pid", "comm", "errno", "path", "ts", "ip"]]
    frames = stack_frames(trace.stacks[trace.stacks["stack_id"].isin(sub["stack_id"].unique())])
    total = int(mask.sum())
    found: list[tuple[int, int, list[str]]] = []  # count, stack_id, frames
    for sid, count in sub.loc[sub["stack_id"] >= 0, "stack_id"].value_counts().items():
        found.append((int(count), int(sid), frames.get(int(sid)) or [f"[stack {int(sid)} not symbolized]"]))
    # Calls without a stack (past the recorder's per-site sampling): one site per instruction pointer,
    # named from any stack frame taken at the same ip.
    no_stack = sub.loc[sub["stack_id"] < 0, "ip"].value_counts()
    if len(no_stack):
        st = trace.stacks[trace.stacks["ip"].isin(no_stack.index)].drop_duplicates("ip")
        label_of = {int(r.ip): frame_label(r.module, r.symbol, r.offset, r.ip) for r in st.itertuples()}
        for ip, count in no_stack.items():
            found.append((int(count), -1, [f"{label_of.get(int(ip), f'ip {int(ip):#x}')} {NO_STACK}"]))
    found.sort(key=lambda f: (-f[0], f[1]))
    rows = []
    for rank, (count, sid, fr) in enumerate(found[:top], start=1):
        caller = next((f for f in fr[1:] if not f.startswith(("__libc", "syscall"))), fr[0])
        rows.append(
            {
                "rank": rank,
                "stack_id": sid,
                "count": count,
                "share": count / total if total else 0.0,
                "caller": caller,
                "frames": fr,
            }
        )
    stacks_df = pd.DataFrame(rows, columns=["rank", "stack_id", "count", "share", "caller", "frames"])
    errors = (
        sub["errno"]
        .astype("string")
        .fillna("ok")
        .value_counts()
        .rename_axis("errno")
        .reset_index(name="count")
    )
    procs = sub.groupby(["pid", "comm"], observed=True).size().reset_index(name="count")
    procs = procs.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)
    paths = sub["path"].dropna().value_counts().head(top).rename_axis("path").reset_index(name="count")
    sec = trace.seccomp[trace.seccomp["name"] == name]
    sec_counts = sec["action"].astype("string").value_counts().rename_axis("action").reset_index(name="count")
    return CallSites(
        name=name,
        calls=total,
        stacks=stacks_df,
        errors=errors,
        processes=procs,
        paths=paths,
        first_ts=int(sub["ts"].min()) if total else None,
        seccomp=sec_counts,
    )


def stack_tree(sites: CallSites, max_depth: int = 24) -> pd.DataFrame:
    """Icicle nodes for the ranked stacks: id, parent, label, value (calls through that frame).

    The root is the syscall; below it the outermost frame (main, thread start) down to the
    innermost, so identical call paths merge and their counts add up."""
    nodes: dict[str, dict[str, Any]] = {}
    root = sites.name
    nodes[root] = {"id": root, "parent": "", "label": root, "value": 0}
    for frames, count in zip(sites.stacks["frames"], sites.stacks["count"], strict=True):
        nodes[root]["value"] += int(count)
        path = list(reversed(frames))[:max_depth]
        parent = root
        for i, label in enumerate(path):
            node_id = f"{parent}\x1f{i}:{label}"
            node = nodes.setdefault(node_id, {"id": node_id, "parent": parent, "label": label, "value": 0})
            node["value"] += int(count)
            parent = node_id
    return pd.DataFrame(list(nodes.values()), columns=["id", "parent", "label", "value"])


# ---------------------------------------------------------------------------------------------
# Compare


def compare_counts(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Per syscall: calls in A, calls in B, delta (B - A) and where it appears (only A / only B / both)."""
    left = a.set_index("name")["count"].rename("a")
    right = b.set_index("name")["count"].rename("b")
    df = pd.concat([left, right], axis=1).fillna(0).astype("int64").rename_axis("name").reset_index()
    df["delta"] = df["b"] - df["a"]
    df["where"] = np.where(df["a"] == 0, "only B", np.where(df["b"] == 0, "only A", "both"))
    df["name"] = df["name"].astype("string")
    order = {"only A": 0, "only B": 1, "both": 2}
    df["_o"] = df["where"].map(order)
    df["_d"] = df["delta"].abs()
    df = df.sort_values(["_o", "_d", "name"], ascending=[True, False, True], kind="stable")
    return df.drop(columns=["_o", "_d"]).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Policy editing


def rule_names(rule: SyscallRule) -> set[str]:
    """The syscall names of one rule with its @groups expanded."""
    out: set[str] = set()
    for n in rule.names:
        out |= groups_mod.expand(n)
    return out


def allowed_names_of(policy: Policy) -> set[str]:
    """Names an allowing rule of ``policy`` lists (groups expanded), as written in the file."""
    out: set[str] = set()
    for rule in policy.syscalls:
        if rule.action in ALLOWING:
            out |= rule_names(rule)
    return out


def edit_policy(base: Policy, enabled: Iterable[str], *, use_groups: bool = False) -> Policy:
    """``base`` with its allowing rules restricted to ``enabled`` and every missing enabled name allowed.

    Rules with argument conditions are kept for the names still enabled (their narrowing stays);
    refusing rules are kept unchanged; names without a rule land in one plain ALLOW rule, written
    with @groups where a whole group is enabled when ``use_groups``."""
    from tinyjail.policy import SyscallRule

    want = set(enabled)
    covered: set[str] = set()
    kept: list[SyscallRule] = []
    plain: set[str] = set()
    for rule in base.syscalls:
        if rule.action not in ALLOWING:
            kept.append(rule)
            continue
        names = sorted(rule_names(rule) & want)
        if not names:
            continue
        if rule.args or rule.action != "SCMP_ACT_ALLOW" or rule.includes or rule.excludes:
            kept.append(replace(rule, names=names))
            covered |= set(names)
        else:
            plain |= set(names)
    plain |= want - covered
    out: list[SyscallRule] = []
    if plain:
        names = groups_mod.collapse(plain) if use_groups else sorted(plain)
        out.append(SyscallRule(names=names, action="SCMP_ACT_ALLOW"))
    return replace(base, syscalls=out + kept)


def group_state(universe: Sequence[str], enabled: Iterable[str]) -> list[str]:
    """Groups all of whose members within ``universe`` are enabled (what the group toggles show)."""
    on = set(enabled)
    uni = set(universe)
    out = []
    for group in groups_mod.GROUPS:
        if group == "@known":
            continue
        members = groups_mod.expand(group) & uni
        if members and members <= on:
            out.append(group)
    return out


def toggle_groups(
    universe: Sequence[str], enabled: Iterable[str], before: Iterable[str], after: Iterable[str]
) -> list[str]:
    """Apply a change of the group toggles to the enabled names: a group switched on enables its
    members (within ``universe``), a group switched off disables them."""
    on = set(enabled)
    uni = set(universe)
    b, a = set(before), set(after)
    for group in sorted(a - b):
        on |= groups_mod.expand(group) & uni
    for group in sorted(b - a):
        on -= groups_mod.expand(group)
    return sorted(on)


__all__ = [
    "ALLOWING",
    "COLOUR_GROUPS",
    "STATUS_ORDER",
    "CallSites",
    "Summary",
    "call_sites",
    "colour_group",
    "compare_counts",
    "display_groups",
    "edit_policy",
    "group_counts",
    "group_state",
    "load_static",
    "policy_allowed_names",
    "seen_vs_missed",
    "stack_frames",
    "stack_tree",
    "summary",
    "syscall_counts",
    "toggle_groups",
]
