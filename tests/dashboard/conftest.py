"""Traces for the dashboard tests: synthetic ones (shapes and sizes a short recording lacks) and
the real recordings committed under sample_traces/."""

from __future__ import annotations

from pathlib import Path

import pytest
from tinyjail.dashboard.synthetic import make_trace

from tinyjail.timeline import Trace, load

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"
SAMPLE_DIRS = sorted(p for p in SAMPLES.iterdir() if (p / "meta.json").is_file()) if SAMPLES.is_dir() else []


@pytest.fixture(scope="session")
def synth() -> Trace:
    """20k calls over 4 workers x 2 threads plus a parent, with stacks and seccomp log records."""
    return make_trace(20_000, processes=4, threads_per_process=2, seed=11)


@pytest.fixture(scope="session")
def synth_big() -> Trace:
    """200k calls: enough that the timeline has to bin."""
    return make_trace(200_000, seed=5, dropped=3)


@pytest.fixture(scope="session")
def sample(request: pytest.FixtureRequest) -> Trace:
    if not SAMPLE_DIRS:
        pytest.skip("no sample traces in sample_traces/")
    return load(SAMPLE_DIRS[0])


def sample_trace(name: str) -> Trace:
    path = SAMPLES / name
    if not (path / "meta.json").is_file():
        pytest.skip(f"sample trace {name} is not in sample_traces/")
    return load(path)
