"""Server-side downsampling of the timeline, so a million-event trace stays readable and fast.

The browser never receives more than about `MAX_POINTS` markers. `TimelineIndex` sorts the
events once into NumPy arrays (time, lane, syscall code); `window` then answers any zoom
range with a binary search plus one pass: the raw calls when few enough fall in the range,
otherwise one marker per (lane, time bin) coloured by the bin's most frequent syscall and
sized by how many calls it stands for. Zooming in shrinks the bins until raw calls appear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tinyjail.dashboard.data import colour_group

if TYPE_CHECKING:
    from tinyjail.timeline import Trace

MAX_POINTS = 6000
"""Markers sent for one view of the timeline (binned above this)."""

RAW_LIMIT = 5000
"""Calls in a window at or below which every call is drawn as itself."""


@dataclass
class Window:
    """The markers for one x range. ``points`` columns: x (s), lane, name, group, count, row
    (event row for raw points, -1 for bins), x0/x1 (s, the span a bin covers)."""

    start_ns: int
    end_ns: int
    points: pd.DataFrame
    total: int  # calls in the window
    binned: bool
    bin_ns: int = 0


@dataclass
class TimelineIndex:
    """The events of one trace, sorted by time, as arrays for fast windowing."""

    origin_ns: int  # time zero of the x axis (first timestamp of the trace)
    end_ns: int  # last timestamp
    ts: np.ndarray  # int64, ns since origin, sorted
    lane: np.ndarray  # int32 lane number of each event
    code: np.ndarray  # int32 syscall code into ``names``
    row: np.ndarray  # int64 row of each event in trace.events
    names: list[str]
    groups: list[str]  # colour group of each name code
    lanes: pd.DataFrame  # lane, pid, tid, comm, label, start_ns, end_ns
    marks: pd.DataFrame  # process marks: x_ns (relative), lane, kind, label
    seccomp: pd.DataFrame  # seccomp marks: x_ns, lane, name, action, label

    @property
    def span_ns(self) -> int:
        return max(self.end_ns - self.origin_ns, 1)

    def window(
        self,
        start_ns: int | None = None,
        end_ns: int | None = None,
        max_points: int = MAX_POINTS,
        raw_limit: int = RAW_LIMIT,
    ) -> Window:
        """Markers for ``[start_ns, end_ns]`` (ns since origin; None = the whole trace)."""
        lo = 0 if start_ns is None else max(int(start_ns), 0)
        hi = self.span_ns if end_ns is None else int(end_ns)
        if hi <= lo:
            hi = lo + 1
        i0 = int(np.searchsorted(self.ts, lo, side="left"))
        i1 = int(np.searchsorted(self.ts, hi, side="right"))
        n = i1 - i0
        if n <= raw_limit:
            sl = slice(i0, i1)
            x = self.ts[sl]
            pts = pd.DataFrame(
                {
                    "x": x / 1e9,
                    "lane": self.lane[sl],
                    "code": self.code[sl],
                    "count": np.ones(n, dtype=np.int64),
                    "row": self.row[sl],
                    "x0": x / 1e9,
                    "x1": x / 1e9,
                }
            )
            return Window(lo, hi, self._named(pts), n, binned=False)
        ts = self.ts[i0:i1]
        lane = self.lane[i0:i1].astype(np.int64)
        code = self.code[i0:i1].astype(np.int64)
        active = int(np.count_nonzero(np.bincount(lane, minlength=len(self.lanes))))
        nbins = max(8, max_points // max(active, 1))
        width = hi - lo
        b = ((ts - lo) * nbins) // (width + 1)
        key = lane * nbins + b
        ncodes = max(len(self.names), 1)
        uniq, counts = np.unique(key * ncodes + code, return_counts=True)
        bin_key = uniq // ncodes
        bin_code = uniq % ncodes
        # Per bin: total calls and the most frequent syscall (ties: lowest code).
        order = np.lexsort((-counts, bin_key))
        bin_key, bin_code, counts = bin_key[order], bin_code[order], counts[order]
        first = np.r_[True, bin_key[1:] != bin_key[:-1]]
        starts = np.flatnonzero(first)
        totals = np.add.reduceat(counts, starts)
        keys = bin_key[starts]
        lanes = keys // nbins
        bins = keys % nbins
        bin_ns = width / nbins
        x0 = (lo + bins * bin_ns) / 1e9
        x1 = (lo + (bins + 1) * bin_ns) / 1e9
        pts = pd.DataFrame(
            {
                "x": (x0 + x1) / 2,
                "lane": lanes.astype(np.int32),
                "code": bin_code[starts].astype(np.int32),
                "count": totals.astype(np.int64),
                "row": np.full(len(keys), -1, dtype=np.int64),
                "x0": x0,
                "x1": x1,
                "top": counts[starts].astype(np.int64),
            }
        )
        return Window(lo, hi, self._named(pts), n, binned=True, bin_ns=int(bin_ns))

    def _named(self, pts: pd.DataFrame) -> pd.DataFrame:
        names = np.array(self.names, dtype=object)
        grp = np.array(self.groups, dtype=object)
        codes = pts["code"].to_numpy()
        pts["name"] = names[codes] if len(names) else []
        pts["group"] = grp[codes] if len(grp) else []
        return pts.drop(columns="code")

    def select(
        self, start_ns: int, end_ns: int, lane_lo: float | None = None, lane_hi: float | None = None
    ) -> pd.DataFrame:
        """Calls per syscall in a time range (and lane range): what a box selection covers."""
        i0 = int(np.searchsorted(self.ts, int(start_ns), side="left"))
        i1 = int(np.searchsorted(self.ts, int(end_ns), side="right"))
        code = self.code[i0:i1]
        if lane_lo is not None and lane_hi is not None:
            lane = self.lane[i0:i1]
            lo, hi = sorted((lane_lo, lane_hi))
            code = code[(lane >= lo) & (lane <= hi)]
        counts = np.bincount(code, minlength=len(self.names)) if len(code) else np.zeros(len(self.names), int)
        df = pd.DataFrame({"name": self.names, "count": counts.astype(np.int64)})
        df = df[df["count"] > 0].sort_values(["count", "name"], ascending=[False, True], kind="stable")
        return df.reset_index(drop=True)


def _lane_label(pid: int, tid: int, comm: str) -> str:
    return f"{comm} {pid}" if pid == tid else f"{comm} {pid}/{tid}"


def build_index(trace: Trace) -> TimelineIndex:
    """Sort ``trace``'s events into a TimelineIndex: one lane per (pid, tid), pids in order,
    the main thread first."""
    ev = trace.events
    pr = trace.processes
    sec = trace.seccomp
    stamps = [s for s in (ev["ts"], pr["ts"], sec["ts"]) if len(s)]
    origin = int(min(int(s.min()) for s in stamps)) if stamps else 0
    end = int(max(int(s.max()) for s in stamps)) if stamps else 1

    ev_key = (ev["pid"].to_numpy(np.int64) << 32) | ev["tid"].to_numpy(np.int64)
    pr_key = (pr["pid"].to_numpy(np.int64) << 32) | pr["tid"].to_numpy(np.int64)
    lane_keys = np.unique(np.concatenate([ev_key, pr_key]))
    lane = np.searchsorted(lane_keys, ev_key).astype(np.int32)

    # Label a lane with the comm it had last (after exec), from the events or the process rows.
    comm_of: dict[int, str] = {}
    if len(ev):
        last = pd.DataFrame({"k": ev_key, "comm": ev["comm"].astype("string")}).groupby("k")["comm"].last()
        comm_of.update({int(k): str(v) for k, v in last.items()})
    if len(pr):
        last_pr = (
            pd.DataFrame({"k": pr_key, "comm": pr["comm"].astype("string"), "ts": pr["ts"]})
            .sort_values("ts")
            .groupby("k")["comm"]
            .last()
        )
        for k, v in last_pr.items():
            comm_of.setdefault(int(k), str(v))
    pids = (lane_keys >> 32).astype(np.int64)
    tids = (lane_keys & 0xFFFFFFFF).astype(np.int64)
    lanes = pd.DataFrame(
        {
            "lane": np.arange(len(lane_keys), dtype=np.int32),
            "pid": pids,
            "tid": tids,
            "comm": [comm_of.get(int(k), "?") for k in lane_keys],
        }
    )
    lanes["label"] = [
        _lane_label(p, t, c) for p, t, c in zip(lanes["pid"], lanes["tid"], lanes["comm"], strict=True)
    ]

    names_cat = ev["name"].astype("category")
    names = [str(c) for c in names_cat.cat.categories]
    code = names_cat.cat.codes.to_numpy().astype(np.int32)
    ts = ev["ts"].to_numpy(np.int64) - origin
    row = np.arange(len(ev), dtype=np.int64)
    if len(ts) > 1 and not bool(np.all(ts[1:] >= ts[:-1])):
        order = np.argsort(ts, kind="stable")
        ts, lane, code, row = ts[order], lane[order], code[order], row[order]

    pr_lane = np.searchsorted(lane_keys, pr_key).astype(np.int32)
    spans = pd.DataFrame(
        {
            "lane": np.concatenate([lane, pr_lane]),
            "t": np.concatenate([ts, pr["ts"].to_numpy(np.int64) - origin]),
        }
    )
    span = spans.groupby("lane")["t"].agg(["min", "max"])
    lanes["start_ns"] = span["min"].reindex(lanes["lane"]).fillna(0).astype("int64").to_numpy()
    lanes["end_ns"] = span["max"].reindex(lanes["lane"]).fillna(0).astype("int64").to_numpy()
    marks = pd.DataFrame(
        {
            "x_ns": pr["ts"].to_numpy(np.int64) - origin,
            "lane": pr_lane,
            "kind": pr["kind"].astype("string"),
            "label": [
                _mark_label(k, p, t, pp, f, c)
                for k, p, t, pp, f, c in zip(
                    pr["kind"].astype("string"),
                    pr["pid"],
                    pr["tid"],
                    pr["ppid"],
                    pr["filename"],
                    pr["exit_code"],
                    strict=True,
                )
            ],
        }
    )
    # A record joined to its call has that call's tid; others (audit gives only a pid) go on the
    # process's main-thread lane.
    task_lane = {
        (int(p), int(t)): int(i) for i, p, t in zip(lanes["lane"], lanes["pid"], lanes["tid"], strict=True)
    }
    first_lane = lanes.groupby("pid")["lane"].min().to_dict()
    sec_lane = [
        task_lane.get((int(p), int(t)), task_lane.get((int(p), int(p)), first_lane.get(int(p), 0)))
        for p, t in zip(sec["pid"], sec["tid"], strict=True)
    ]
    seccomp = pd.DataFrame(
        {
            "x_ns": sec["ts"].to_numpy(np.int64) - origin,
            "lane": np.array(sec_lane, dtype=np.int32),
            "name": sec["name"].astype("string"),
            "action": sec["action"].astype("string"),
        }
    )
    seccomp["label"] = [
        f"seccomp {a}: {n} (pid {p})"
        for a, n, p in zip(seccomp["action"], seccomp["name"], sec["pid"], strict=True)
    ]
    return TimelineIndex(
        origin_ns=origin,
        end_ns=end,
        ts=ts,
        lane=lane,
        code=code,
        row=row,
        names=names,
        groups=[colour_group(n) for n in names],
        lanes=lanes,
        marks=marks,
        seccomp=seccomp,
    )


def _mark_label(kind: Any, pid: Any, tid: Any, ppid: Any, filename: Any, exit_code: Any) -> str:
    if kind == "fork":
        return f"fork: pid {pid} from {ppid}"
    if kind == "clone":
        return f"new thread {tid} in pid {pid}"
    if kind == "exec":
        return f"exec {filename if isinstance(filename, str) else '?'} (pid {pid})"
    if kind == "exit":
        code = int(exit_code)
        how = f"status {code >> 8}" if code & 0x7F == 0 else f"signal {code & 0x7F}"
        return f"exit {tid}: {how}"
    return f"{kind} {pid}/{tid}"


def window_from_relayout(relayout: Any, index: TimelineIndex) -> tuple[int, int] | None:
    """The x range (ns since origin) a Plotly relayout event asks for; None when it does not touch x.

    Handles ``xaxis.range[0]``/``[1]``, ``xaxis.range`` and ``xaxis.autorange`` (double-click reset);
    anything else (not an object, not finite numbers) is None: no change."""
    from tinyjail.dashboard.inputs import as_dict, seconds_to_ns

    relayout = as_dict(relayout)
    if not relayout:
        return None
    if relayout.get("xaxis.autorange") or (relayout.get("autosize") and "xaxis.range[0]" not in relayout):
        if relayout.get("xaxis.autorange"):
            return 0, index.span_ns
        return None
    lo: Any = relayout.get("xaxis.range[0]")
    hi: Any = relayout.get("xaxis.range[1]")
    rng = relayout.get("xaxis.range")
    if isinstance(rng, list | tuple) and len(rng) == 2:
        lo, hi = rng
    a_ns, b_ns = seconds_to_ns(lo), seconds_to_ns(hi)
    if a_ns is None or b_ns is None:
        return None
    if b_ns < a_ns:
        a_ns, b_ns = b_ns, a_ns
    return max(a_ns, 0), min(max(b_ns, a_ns + 1), index.span_ns)


__all__ = ["MAX_POINTS", "RAW_LIMIT", "TimelineIndex", "Window", "build_index", "window_from_relayout"]
