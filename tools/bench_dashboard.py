#!/usr/bin/env python3
"""Benchmark: is the dashboard usable on a one-million-event trace?

A synthetic 1M-event trace (`tinyjail.dashboard.synthetic`, 9 tasks, stacks, seccomp records)
is written as a real trace directory, then timed (median of N rounds, all in this invocation):

* ``load``            - `tinyjail.timeline.load` of the trace directory;
* ``overview``        - summary, syscall counts, group counts and the two Overview figures;
* ``timeline``        - indexing the events and the first (binned) timeline figure;
* ``zoom``            - one refinement: the figure for a 10 ms window (what a zoom triggers);
* ``first render``    - headless Chromium: from ``driver.get(url)`` of a freshly created app until
  the Overview shows the event count and the top-syscalls chart is drawn;
* ``cold render``     - the first round's first render (fresh browser profile, no cached JS);
* ``timeline render`` - from ``driver.get(url?view=timeline)`` until the timeline's title is drawn.

Baselines measured in the same invocation: the same steps on the bundled ``sample_traces/curl``
(522 events) when present, else a 500-event synthetic trace; ratios are 1M / baseline. The goal
is a first render of at most 3 s (moonshot 1.5 s).

Usage: .venv/bin/python tools/bench_dashboard.py [--events 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
GOAL_S, MOONSHOT_S = 3.0, 1.5


def median_time(fn: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def offline_steps(path: Path, rounds: int) -> dict[str, float]:
    """load / overview / timeline / zoom times (s) for the trace at ``path``, caches cold each round."""
    from tinyjail.dashboard import data, figures
    from tinyjail.dashboard.downsample import build_index

    from tinyjail.timeline import load

    out: dict[str, float] = {}
    out["load"] = median_time(lambda: load(path), rounds)
    trace = load(path)

    def overview() -> None:
        data.summary(trace)
        counts = data.syscall_counts(trace.events)
        figures.top_syscalls_figure(counts)
        figures.group_figure(data.group_counts(counts))

    out["overview"] = median_time(overview, rounds)

    def timeline() -> None:
        index = build_index(trace)
        figures.timeline_figure(index, index.window(), trace.events)

    out["timeline"] = median_time(timeline, rounds)
    index = build_index(trace)
    mid = index.span_ns // 2
    out["zoom"] = median_time(
        lambda: figures.timeline_figure(index, index.window(mid, mid + 10_000_000), trace.events), rounds
    )
    return out


def browser_steps(path: Path, rounds: int) -> dict[str, float]:
    """Headless Chromium: first render of the Overview and of the Timeline, a fresh app each round."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from tinyjail.dashboard import chromium, ids
    from tinyjail.dashboard.app import create_app, serve_in_thread

    from tinyjail.timeline import load

    drv = chromium.driver()
    firsts: list[float] = []
    timelines: list[float] = []
    try:
        for _ in range(rounds):
            trace = load(path)  # fresh: nothing cached server-side
            want = f"{len(trace.events):,}"
            server, _thread = serve_in_thread(create_app([trace]), "127.0.0.1", 0)
            url = f"http://127.0.0.1:{server.port}/"
            wait = WebDriverWait(
                drv, 60, poll_frequency=0.02, ignored_exceptions=[StaleElementReferenceException]
            )
            try:
                drv.get("about:blank")
                t = time.perf_counter()
                drv.get(url)
                wait.until(lambda d, want=want: want in d.find_element(By.ID, ids.OVERVIEW_CARDS).text)
                wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#{ids.OVERVIEW_TOP} g.point path"))
                firsts.append(time.perf_counter() - t)
                drv.get("about:blank")
                t = time.perf_counter()
                drv.get(url + "?view=timeline")
                wait.until(
                    lambda d: (
                        d.find_elements(By.CSS_SELECTOR, f"#{ids.TIMELINE_GRAPH} .gtitle")
                        and "calls in view"
                        in d.find_element(By.CSS_SELECTOR, f"#{ids.TIMELINE_GRAPH} .gtitle").text
                    )
                )
                timelines.append(time.perf_counter() - t)
            finally:
                server.shutdown()
    finally:
        chromium.quit_driver(drv)
    return {
        "first render": statistics.median(firsts),
        "cold render": firsts[0],  # round 1: a browser profile with nothing cached yet
        "timeline render": statistics.median(timelines),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from tinyjail.dashboard import chromium
    from tinyjail.dashboard.synthetic import make_trace

    from tinyjail.timeline import save

    with tempfile.TemporaryDirectory(prefix="tinyjail-bench-") as tmp:
        big = Path(tmp) / "big"
        t = time.perf_counter()
        save(make_trace(args.events, seed=1), big)
        size = sum(f.stat().st_size for f in big.iterdir())
        print(
            f"synthetic trace: {args.events:,} events, {size / 1e6:.1f} MB on disk "
            f"(generated and saved in {time.perf_counter() - t:.1f} s)"
        )
        small = REPO / "sample_traces" / "curl"
        if not (small / "meta.json").is_file():
            small = Path(tmp) / "small"
            save(make_trace(500, seed=2), small)
        from tinyjail.timeline import load

        print(f"baseline trace: {small.name} ({len(load(small).events):,} events)")

        base = offline_steps(small, args.rounds)
        res = offline_steps(big, args.rounds)
        if chromium.available():
            base |= browser_steps(small, args.rounds)
            res |= browser_steps(big, args.rounds)
        else:
            print("chromium/chromedriver missing: browser timings skipped", file=sys.stderr)

    print(f"\n{'step':<16} {'1M trace':>10} {'baseline':>10} {'ratio':>8}")
    for step, secs in res.items():
        b = base[step]
        print(f"{step:<16} {secs:>9.3f}s {b:>9.3f}s {secs / b:>7.1f}x")
    first = res.get("first render")
    if first is not None:
        verdict = "moonshot met" if first <= MOONSHOT_S else "goal met" if first <= GOAL_S else "GOAL MISSED"
        print(f"\nfirst render {first:.2f} s: {verdict} (goal <= {GOAL_S} s, moonshot <= {MOONSHOT_S} s)")
        return 0 if first <= GOAL_S else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
