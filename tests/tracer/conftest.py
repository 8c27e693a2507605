"""Fixtures shared by the tracer tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tinyjail.timeline import Trace

DATA = Path(__file__).parent / "data"


DEBUG_FP = ("-g", "-O0", "-fno-omit-frame-pointer", "-pthread")
"""Debug info and frame pointers: what the symbolizer tests need to see file:line and callers."""


@pytest.fixture(scope="session")
def debug_binary(build_c: Callable[..., Path]) -> Callable[[str], Path]:
    """``debug_binary(NAME)``: tests/tracer/data/NAME.c built with -g and frame pointers."""
    return lambda name: build_c(DATA / f"{name}.c", *DEBUG_FP)


@pytest.fixture(scope="session")
def workload(debug_binary: Callable[[str], Path]) -> Path:
    """tests/tracer/data/workload.c: a known mix of syscalls from a process, its thread and a child."""
    return debug_binary("workload")


@pytest.fixture(scope="session")
def nested(debug_binary: Callable[[str], Path]) -> Path:
    """tests/tracer/data/nested.c: open/write/poll through leaf_* -> middle_* -> main."""
    return debug_binary("nested")


@pytest.fixture
def record_with_sched_hooks(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Trace]:
    """``record_with_sched_hooks(argv, out, raw_sched, **kwargs)``: record with the sched hooks as
    raw tracepoints at BTF offsets (``raw_sched``), or as the perf tracepoints used when the
    kernel has no BTF (registers then copied, not read in place)."""
    from tinyjail.tracer import record
    from tinyjail.tracer.syscalls import loader

    def record_(argv: list[str], out: Path, raw_sched: bool, **kwargs: Any) -> Trace:
        if os.geteuid() != 0:
            pytest.skip("needs root")
        if not raw_sched:
            monkeypatch.setattr(loader, "sched_offsets", lambda: None)
        elif loader.sched_offsets() is None:
            pytest.skip("no kernel BTF")
        return record(argv, output=out, **kwargs)

    return record_
