"""Call sites through libc wrappers that are not leaf functions, recorded with real eBPF.

libc has no frame pointers: from open64/write/poll (multi-threaded paths) the kernel's
frame-pointer walk finds nothing past the wrapper. The probe's copy of the stack top and the
modules' .eh_frame CFI must give back leaf_* -> middle_* -> main with their source lines.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tinyjail.timeline import Trace, load

DATA = Path(__file__).parent / "data"
SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"


def _line(marker: str) -> int:
    src = (DATA / "nested.c").read_text().splitlines()
    return next(i + 1 for i, text in enumerate(src) if marker in text)


def _sites(trace: Trace, name: str, symbol: str) -> list[list[str]]:
    from tinyjail.tracer.explain import explain

    expl = explain(name, [trace])
    return [s.frames for s in expl.call_sites if any(f"!{symbol}+" in f for f in s.frames)]


@pytest.mark.bpf
@pytest.mark.parametrize("raw_sched", [True, False], ids=["btf-regs", "copied-regs"])
def test_non_leaf_wrappers_keep_their_callers(nested: Path, tmp_path: Path, raw_sched: bool,
                                             record_with_sched_hooks: Callable[..., Trace]) -> None:
    trace = record_with_sched_hooks([str(nested)], tmp_path / "t", raw_sched)
    assert trace.meta["exit_status"] == 0
    for name, wrapper, chain in (
        ("openat", "open64", [("leaf_open", "OPEN_CALL"), ("middle_open", "MIDDLE_OPEN"),
                              ("main", "MAIN_OPEN")]),
        ("write", "write", [("leaf_write", "WRITE_CALL"), ("middle_write", "MIDDLE_WRITE"),
                            ("main", "MAIN_WRITE")]),
        ("poll", "poll", [("leaf_poll", "POLL_CALL"), ("middle_poll", "MIDDLE_POLL"), ("main", "MAIN_POLL")]),
    ):
        sites = _sites(trace, name, chain[0][0])
        assert len(sites) == 1, (name, sites)
        frames = sites[0]
        assert frames[0].startswith("libc.so.6!") and f"!{wrapper}+" in frames[0], frames
        expected = [f"nested!{fn}+" for fn, _ in chain]
        assert [f.split("+")[0] + "+" for f in frames[1:4]] == expected, frames
        lines = [f"nested.c:{_line(m)}" for _, m in chain]
        assert [f.rsplit(" ", 1)[-1] for f in frames[1:4]] == lines, frames
    st = trace.stacks
    opened = trace.events[(trace.events["path"] == "/etc/hostname") & (trace.events["stack_id"] >= 0)]
    assert len(opened) == 1
    mine = st[st["stack_id"] == int(opened["stack_id"].iloc[0])].sort_values("depth")
    assert list(mine["via"])[:4] == ["ip", "cfi", "cfi", "cfi"]   # found from the copy, not the kernel


@pytest.mark.bpf
def test_leaf_wrapper_still_resolves(nested: Path, tmp_path: Path,
                                     record_with_sched_hooks: Callable[..., Trace]) -> None:
    """getppid keeps its return address at sp: its caller and line, as before."""
    trace = record_with_sched_hooks([str(nested)], tmp_path / "t", True)
    sites = _sites(trace, "getppid", "main")
    assert len(sites) == 1
    assert sites[0][0].startswith("libc.so.6!getppid+")
    assert sites[0][1].startswith("nested!main+")
    assert sites[0][1].endswith(f"nested.c:{_line('MAIN_GETPPID')}")


def test_traces_without_the_via_column_still_load(tmp_path: Path) -> None:
    """A trace written before stacks.via existed loads, with the column empty."""

    import pyarrow.parquet as pq

    old = tmp_path / "old"
    shutil.copytree(SAMPLES / "curl", old)
    table = pq.read_table(old / "stacks.parquet")
    pq.write_table(table.drop_columns(["via"]), old / "stacks.parquet")
    trace = load(old)
    assert "via" in trace.stacks.columns and len(trace.stacks)
    assert trace.stacks["via"].isna().all()
    assert trace.stacks.drop(columns="via").equals(load(SAMPLES / "curl").stacks.drop(columns="via"))
