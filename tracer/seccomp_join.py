"""Place seccomp audit records on the trace's timeline: each record at the recorded call it logged.

An audit record's time is the kernel's *coarse* wall clock (advanced once per tick, printed in
ms) mapped to CLOCK_MONOTONIC with one sampled offset: it can be several ms earlier than the
call, and a burst of records shares one or two values. Ordering those against the events is
meaningless, but the record names the call: its pid (thread-group id), syscall number and ip.
So each record is matched to the recorded event of the same pid and nr (and ip when both have
one) at or after its coarse time less a skew allowance, in serial order per (pid, nr, ip), each
event used once, and takes that event's ts and tid. The raw audit time stays in ``audit_ts``.

A killed call never returns. In exit-only recordings the probe still records it at the task's
exit (from its saved registers), so it usually matches like any other call; otherwise a kill
record goes to that process's exit/exit_group call, else its exit in the processes table.
Records that match nothing keep their audit time (and tid -1).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from tinyjail import syscalls

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from tinyjail.policy import Policy

SKEW_NS = 10_000_000
"""How much earlier than its call an audit stamp may be: the coarse clock lags by up to one tick
(4 ms at HZ=250, 10 ms at HZ=100) and the ms rounding truncates; a 6.2 ms lag was measured on
this 2-vCPU VM. Generous is safe: records are matched in order, each event once."""

KILL_ACTIONS = frozenset({"kill_process", "kill_thread", "kill"})

IP_CHANGING = frozenset({"rt_sigreturn", "sigreturn", "execve", "execveat"})
"""Calls whose recorded ip (read at their exit) is not where they were made: the restored
context, or the new image's entry point. The audit ip of those is not compared."""

_EVENT_KEYS = ("ts", "pid", "tid", "nr", "ip")


def join(seccomp: pd.DataFrame, events: pd.DataFrame, processes: pd.DataFrame,
         policy: Policy | None = None, skew_ns: int = SKEW_NS) -> pd.DataFrame:
    """``seccomp`` with ``ts``/``tid`` taken from the call each record logged, ``audit_ts`` the raw time.

    ``events`` needs ts, pid, tid, nr, ip (and arg0..arg5 when ``policy`` is given: only the
    calls its filter may have logged can take a record, see `candidates`); ``processes`` is the
    trace's process table. Pure: the inputs are not modified.
    """
    out = seccomp.copy()
    audit = out["ts"].to_numpy(np.int64).copy()
    if "audit_ts" in out.columns:   # joined before (or filled in): start again from the audit time
        raw = out["audit_ts"].to_numpy(np.int64)
        audit = np.where(raw >= 0, raw, audit)
    out["audit_ts"] = audit
    new_ts = audit.copy()
    new_tid = np.full(len(out), -1, dtype=np.int32)
    if not len(out):
        out["ts"], out["tid"] = new_ts, new_tid
        return out
    matched = np.zeros(len(out), dtype=bool)
    ev = candidates(out, events, policy).loc[:, list(_EVENT_KEYS)]
    ev_groups = {key: grp.sort_values("ts", kind="stable")
                 for key, grp in ev.groupby(["pid", "nr"], sort=False)}
    order = np.argsort(out["serial"].to_numpy(np.int64), kind="stable")
    rec_pid = out["pid"].to_numpy(np.int64)
    rec_nr = out["nr"].to_numpy(np.int64)
    rec_ip = out["ip"].to_numpy(np.uint64)
    by_key: dict[tuple[int, int], list[int]] = {}
    for i in order.tolist():
        by_key.setdefault((int(rec_pid[i]), int(rec_nr[i])), []).append(i)
    for key, rows in by_key.items():
        grp = ev_groups.get(key)
        if grp is None:
            continue
        ips = rec_ip[rows] if syscalls.name(key[1]) not in IP_CHANGING else np.zeros(len(rows), np.uint64)
        ts, tid = grp["ts"].to_numpy(np.int64), grp["tid"].to_numpy(np.int32)
        picks = _match(audit[rows] - skew_ns, ips, ts, grp["ip"].to_numpy(np.uint64))
        for row, pick in zip(rows, picks, strict=True):
            if pick >= 0:
                new_ts[row], new_tid[row], matched[row] = ts[pick], tid[pick], True
    actions = out["action"].astype("string").to_numpy(dtype=object)
    for i in np.flatnonzero(~matched).tolist():
        if actions[i] in KILL_ACTIONS:
            end = _task_end(int(rec_pid[i]), int(audit[i]) - skew_ns, events, processes)
            if end is not None:
                new_ts[i], new_tid[i] = end
    out["ts"], out["tid"] = new_ts, new_tid
    return out


def _match(lows: np.ndarray[Any, Any], rec_ips: np.ndarray[Any, Any], ev_ts: np.ndarray[Any, Any],
           ev_ips: np.ndarray[Any, Any]) -> list[int]:
    """For records in serial order (their earliest allowed time ``lows`` and ips), the index of
    the event each one logged, or -1: the first unused event at or after ``low`` whose ip agrees
    (0 = unknown agrees with anything), never going back before an earlier record's pick of the
    same ip."""
    used = np.zeros(len(ev_ts), dtype=bool)
    cursor: dict[int, int] = {}
    candidates: dict[int, np.ndarray[Any, Any]] = {}
    picks = []
    for low, ip in zip(lows.tolist(), rec_ips.tolist(), strict=True):
        ip = int(ip)
        if ip not in candidates:
            candidates[ip] = (np.flatnonzero((ev_ips == ip) | (ev_ips == 0)) if ip
                              else np.arange(len(ev_ts)))
        cand = candidates[ip]
        j = max(cursor.get(ip, 0), int(np.searchsorted(ev_ts[cand], low, side="left")))
        while j < len(cand) and used[cand[j]]:
            j += 1
        if j < len(cand):
            used[cand[j]] = True
            picks.append(int(cand[j]))
            cursor[ip] = j + 1
        else:
            picks.append(-1)
    return picks


def _task_end(pid: int, low: int, events: pd.DataFrame, processes: pd.DataFrame) -> tuple[int, int] | None:
    """(ts, tid) of process ``pid``'s first exit/exit_group call, else exit row, at or after ``low``."""
    exits = {syscalls.number("exit"), syscalls.number("exit_group")}
    ev = events[(events["pid"] == pid) & events["nr"].isin(exits) & (events["ts"] >= low)]
    if len(ev):
        first = ev.sort_values("ts", kind="stable").iloc[0]
        return int(first["ts"]), int(first["tid"])
    pr = processes[(processes["pid"] == pid) & (processes["kind"].astype("string") == "exit")
                   & (processes["ts"] >= low)]
    if len(pr):
        first = pr.sort_values("ts", kind="stable").iloc[0]
        return int(first["ts"]), int(first["tid"])
    return None


def logged_calls(events: pd.DataFrame, policy: Policy | None) -> pd.DataFrame:
    """The events a filter built from ``policy`` may have logged: those it does not simply allow.

    A policy that allows socket(AF_UNIX) and not socket(AF_INET) logs only the second kind, so
    the first must not take its record. Argument rules are judged per distinct value of the
    compared arguments (as `tinyjail explain` does). A (pid, nr) with more records than calls
    left is the join's business: it falls back to all events of that nr (see `candidates`).
    """
    if policy is None or not len(events):
        return events
    from tinyjail.policy import effective_rules, evaluate

    rules = effective_rules(policy)
    checked: dict[str, set[int]] = {}
    for r in rules:
        checked.setdefault(r.name, set()).update(a.index for a in r.args)
    keep = np.zeros(len(events), dtype=bool)
    nrs = events["nr"].to_numpy(np.int64)
    for nr in np.unique(nrs).tolist():
        rows = np.flatnonzero(nrs == nr)
        name = syscalls.name(int(nr))
        slots = sorted(checked.get(name, ()))
        if not slots:
            keep[rows] = evaluate(policy, name)[0] != "SCMP_ACT_ALLOW"
            continue
        args = np.stack([events[f"arg{i}"].to_numpy(np.uint64)[rows] for i in range(6)], axis=1)
        judged: dict[tuple[int, ...], bool] = {}
        for k, row in enumerate(rows.tolist()):
            key = tuple(int(args[k, i]) if i in slots else 0 for i in range(6))
            if key not in judged:
                judged[key] = evaluate(policy, name, key)[0] != "SCMP_ACT_ALLOW"
            keep[row] = judged[key]
    return events[keep]


def candidates(seccomp: pd.DataFrame, events: pd.DataFrame, policy: Policy | None) -> pd.DataFrame:
    """The events to join ``seccomp`` against: the policy's logged calls of each (pid, nr), or all
    calls of a (pid, nr) whose logged calls are fewer than its records (a filter with rules the
    policy does not show, such as enforce's hardened defaults)."""
    import pandas as pd

    if not len(seccomp):
        return events.iloc[:0]
    logged = logged_calls(events, policy)
    need = seccomp.groupby(["pid", "nr"]).size()
    have = logged.groupby(["pid", "nr"]).size()
    short = [key for key, n in need.items() if int(have.get(key, 0)) < int(n)]
    if not short:
        return logged
    short_index = pd.MultiIndex.from_tuples(short, names=["pid", "nr"])
    ev_index = pd.MultiIndex.from_frame(events[["pid", "nr"]])
    lo_index = pd.MultiIndex.from_frame(logged[["pid", "nr"]])
    return pd.concat([logged[~lo_index.isin(short_index)], events[ev_index.isin(short_index)]])


def read_events(path: Path, seccomp: pd.DataFrame, extra: Iterable[str] = ()) -> pd.DataFrame:
    """The recorded calls a join of ``seccomp`` can use, read from an events Parquet file: only
    the records' syscall numbers plus exit/exit_group, only the columns needed."""
    import pyarrow.parquet as pq

    nrs = {int(n) for n in seccomp["nr"].tolist()} | {syscalls.number("exit"), syscalls.number("exit_group")}
    columns = [*_EVENT_KEYS, *(f"arg{i}" for i in range(6)), *extra]
    wanted = sorted(n for n in nrs if n is not None)
    table = pq.read_table(path, columns=columns, filters=[("nr", "in", wanted)])
    return table.to_pandas()


__all__ = ["KILL_ACTIONS", "SKEW_NS", "candidates", "join", "logged_calls", "read_events"]
