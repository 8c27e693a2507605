"""What one dashboard server holds: the traces named at start, their policy and cached aggregates.

Views ask for a trace by its index in this list, never by a path, so a request can only ever
reach what the command line opened. Aggregates are computed on first use and kept (a 1M-event
trace is indexed once, not on every zoom); a lock makes that safe under Flask's threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tinyjail.dashboard import data

if TYPE_CHECKING:
    import pandas as pd
    from tinyjail.dashboard.downsample import TimelineIndex

    from tinyjail.policy import Policy
    from tinyjail.timeline import Trace

T = TypeVar("T")


@dataclass
class TraceEntry:
    """One served trace and everything derived from it."""

    index: int
    label: str
    trace: Trace
    given_policy: Policy | None = None
    static: frozenset[str] | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def cached(self, key: str, make: Callable[[], T]) -> T:
        """``make()`` once per key for this trace; later calls (any thread) get the same object."""
        with self._lock:
            if key not in self._cache:
                self._cache[key] = make()
            value: T = self._cache[key]
            return value

    @property
    def counts(self) -> pd.DataFrame:
        return self.cached("counts", lambda: data.syscall_counts(self.trace.events))

    @property
    def summary(self) -> data.Summary:
        return self.cached("summary", lambda: data.summary(self.trace, self.label))

    @property
    def groups(self) -> pd.DataFrame:
        return self.cached("groups", lambda: data.group_counts(self.counts))

    @property
    def timeline(self) -> TimelineIndex:
        from tinyjail.dashboard.downsample import build_index

        return self.cached("timeline", lambda: build_index(self.trace))

    @property
    def policy(self) -> Policy:
        """The policy given on the command line, else the one `tinyjail profile` makes from this trace."""
        if self.given_policy is not None:
            return self.given_policy
        return self.cached("generated", self._generate)

    @property
    def policy_origin(self) -> str:
        if self.given_policy is not None:
            # The file's name only: no path of this machine is sent to the browser.
            return f"--policy {Path(self.given_policy.source or 'policy').name}"
        return f"generated from {self.label} (as 'tinyjail profile' would)"

    def _generate(self) -> Policy:
        from tinyjail.tracer.profile import generate

        policy = generate([self.trace], allow_lossy=True)
        policy.source = f"profile of {self.label}"
        return policy

    @property
    def seen(self) -> pd.DataFrame:
        return self.cached("seen", lambda: data.seen_vs_missed(self.trace.events, self.policy, self.static))

    def call_sites(self, name: str) -> data.CallSites:
        return self.cached(f"sites:{name}", lambda: data.call_sites(self.trace, name))


@dataclass
class DashboardState:
    """All traces a dashboard serves, by index."""

    entries: list[TraceEntry]
    static: frozenset[str] | None = None
    policy: Policy | None = None

    @classmethod
    def build(
        cls, traces: Sequence[Trace], policy: Policy | None = None, static: frozenset[str] | None = None
    ) -> DashboardState:
        labels: list[str] = []
        for trace in traces:
            label = trace.name
            if label in labels:
                label = f"{label} #{len(labels) + 1}"
            labels.append(label)
        entries = [
            TraceEntry(i, label, trace, policy, static)
            for i, (label, trace) in enumerate(zip(labels, traces, strict=True))
        ]
        return cls(entries=entries, static=static, policy=policy)

    def entry(self, index: Any) -> TraceEntry:
        """The trace at ``index``; the first one for anything that is not a valid index."""
        try:
            i = int(index)
        except (TypeError, ValueError):
            i = 0
        if not 0 <= i < len(self.entries):
            i = 0
        return self.entries[i]

    def options(self) -> list[dict[str, Any]]:
        """Dropdown options: label -> index."""
        return [{"label": f"{e.index}: {e.label}", "value": e.index} for e in self.entries]


__all__ = ["DashboardState", "TraceEntry"]
