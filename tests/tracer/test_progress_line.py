"""The live progress line of `tinyjail trace` says what it counts."""

from __future__ import annotations

import time

from tinyjail.tracer.recorder import Progress, _progress_line


def test_progress_line_counts_calls_and_their_rate() -> None:
    before = time.monotonic() - 2.0
    progress = Progress(events=1_606, dropped=3, last_events=606, last_time=before)
    line = _progress_line(progress)
    assert line.startswith("tracing: 1,606 calls, ")
    assert "syscalls" not in line and line.endswith(", dropped 3")
    rate = int(line.split(", ")[1].split()[0].replace(",", ""))
    assert 400 <= rate <= 500   # 1,000 calls over a little more than 2 s
    assert (progress.last_events, progress.last_time > before) == (1_606, True)
