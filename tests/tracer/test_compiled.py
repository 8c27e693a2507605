"""The compiled-program cache: same recording as bcc's compile, nothing untrusted loaded."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from tinyjail.tracer.syscalls import compiled

LD_IMM64 = bytes([0x18])


def _ld_map(dst: int, fd: int, pseudo: int = compiled.BPF_PSEUDO_MAP_FD) -> bytes:
    """``ld_imm64 rDST, map fd`` as bcc emits it (two 8-byte slots; the second has code 0)."""
    first = LD_IMM64 + bytes([(pseudo << 4) | dst]) + bytes(2) + fd.to_bytes(4, "little", signed=True)
    return first + bytes(8)


MOV_R0_0 = bytes([0xB7, 0x00]) + bytes(6)
EXIT = bytes([0x95]) + bytes(7)


def test_map_references_are_found_and_rewritten_both_ways() -> None:
    # a plain 64-bit constant (src 0) whose value looks like an fd, and an ld_imm64 whose second
    # slot starts with 0x18 in its data must not be taken for map references
    constant = LD_IMM64 + bytes([0x01]) + bytes(2) + (7).to_bytes(4, "little") + bytes([0x18]) + bytes(7)
    code = bytearray(_ld_map(1, 7) + constant + MOV_R0_0 + _ld_map(2, 9) + EXIT)
    assert compiled._map_refs(code) == [0, 40]
    assert compiled._relocate(code, {7: 0, 9: 1})
    assert int.from_bytes(code[4:8], "little") == 0 and int.from_bytes(code[44:48], "little") == 1
    assert int.from_bytes(code[20:24], "little") == 7       # the constant is untouched
    assert compiled._relocate(code, {0: 33, 1: 34})
    assert int.from_bytes(code[4:8], "little") == 33 and int.from_bytes(code[44:48], "little") == 34
    assert not compiled._relocate(bytearray(_ld_map(1, 5)), {7: 0})   # unknown fd: not cacheable


def test_json_round_trip_and_rejections() -> None:
    prog = compiled.CompiledProgram(
        maps=(compiled.MapSpec("tracked", 2, 4, 1, 4096, 0),),
        functions=(("raw_tracepoint__sys_exit", _ld_map(1, 0) + MOV_R0_0 + EXIT),),
        license="GPL",
    )
    assert compiled.CompiledProgram.from_json(prog.to_json()) == prog
    d = json.loads(prog.to_json())
    for bad in ({**d, "format": 99}, {**d, "functions": [["kprobe__x", ""]]},
                {**d, "functions": [["raw_tracepoint__sys_exit", "AAAA"]]}):   # 3 bytes: not instructions
        with pytest.raises(ValueError):
            compiled.CompiledProgram.from_json(json.dumps(bad))


def test_cache_is_off_for_non_root_and_when_turned_off(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.setenv("TINYJAIL_BPF_CACHE", "0")
    assert compiled.cache_dir() is None
    monkeypatch.setenv("TINYJAIL_BPF_CACHE", str(tmp_path))
    assert compiled.cache_dir() == (tmp_path if os.geteuid() == 0 else None)
    monkeypatch.delenv("TINYJAIL_BPF_CACHE")
    assert compiled.cache_dir() == (compiled.CACHE_DIR if os.geteuid() == 0 else None)


def _probe_runs(probe: object, argv: list[str]) -> int:
    """Arm ``probe`` for a child that execs ``argv``; the number of its syscalls recorded."""
    import time

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child execs
        os.close(w)
        os.read(r, 1)
        os.execv(argv[0], argv)
    os.close(r)
    probe.arm(pid)  # type: ignore[attr-defined]
    os.write(w, b"g")
    os.close(w)
    os.waitpid(pid, 0)
    time.sleep(0.05)
    probe.detach()  # type: ignore[attr-defined]
    return int(probe.events.drain().size) + len(probe.leftovers())  # type: ignore[attr-defined]


@pytest.mark.bpf
def test_cached_program_records_exactly_what_the_compiled_one_does(
    workload: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tinyjail.tracer import record_to

    cache = tmp_path / "cache"
    monkeypatch.setenv("TINYJAIL_BPF_CACHE", str(cache))
    runs = {}
    for i in range(2):
        res = record_to([str(workload)], tmp_path / f"t{i}")
        runs[res.meta["bpf_cache"]] = res
    assert set(runs) == {"miss", "hit"}            # compiled and stored, then loaded from the cache
    entries = list(cache.iterdir())
    assert len(entries) == 1 and entries[0].stat().st_mode & 0o777 == 0o600
    assert cache.stat().st_mode & 0o777 == 0o700

    from tinyjail import timeline

    counts = {}
    for state, res in runs.items():
        trace = timeline.load(res.path)
        assert res.dropped == 0 and res.exit_status == 3
        ev = trace.events
        counts[state] = ev["name"].value_counts().to_dict()
        assert int((ev["name"] == "getppid").sum()) == 1000
        assert int((ev["name"] == "getuid").sum()) == 7
        assert int((ev["name"] == "getgid").sum()) == 5
        assert res.meta["counters"]["stacks_taken"] > 0
        st = trace.stacks                                   # read back through the (cached) maps
        assert (st["file"].astype(str).str.endswith("workload.c") & (st["symbol"] == "main")).any()
    assert counts["miss"] == counts["hit"]


@pytest.mark.bpf
def test_untrusted_corrupt_or_refused_entries_are_rebuilt(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from tinyjail.tracer.syscalls.loader import Probe, ProbeOptions

    cache = tmp_path / "cache"
    monkeypatch.setenv("TINYJAIL_BPF_CACHE", str(cache))
    opts = ProbeOptions(stack_k=0)

    def state() -> str:
        with Probe(opts) as probe:
            assert _probe_runs(probe, ["/bin/true"]) > 5      # it records whichever way it was loaded
            return probe.cache

    assert state() == "miss"
    assert state() == "hit"
    (entry,) = cache.iterdir()

    entry.chmod(0o666)                                   # writable by others: never loaded
    assert state() == "miss" and entry.stat().st_mode & 0o777 == 0o600
    assert state() == "hit"

    entry.write_text("{not json")
    assert state() == "miss"

    prog = compiled.CompiledProgram.from_json(entry.read_text())
    bad = compiled.CompiledProgram(prog.maps, tuple((n, EXIT) for n, _ in prog.functions), prog.license)
    entry.write_text(bad.to_json())                      # r0 never set: the verifier refuses it
    assert state() == "miss"
    assert state() == "hit"

    cache.chmod(0o777)                                   # a directory others can write to: not used
    assert state() == "off"
    cache.chmod(0o700)

    monkeypatch.setenv("TINYJAIL_BPF_CACHE", "0")
    assert state() == "off"


@pytest.mark.bpf
def test_cli_trace_uses_the_cache(tinyjail_cmd: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "TINYJAIL_BPF_CACHE": str(tmp_path / "cache")}
    for i, want in enumerate(("miss", "hit")):
        subprocess.run([*tinyjail_cmd, "trace", "-o", str(tmp_path / f"t{i}"), "--", "/bin/true"], env=env,
                       check=True, capture_output=True)
        meta = json.loads((tmp_path / f"t{i}" / "meta.json").read_text())
        assert meta["bpf_cache"] == want


@pytest.mark.bpf
def test_program_info_counts_runs_and_no_skipped_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """recursion_misses is read from the kernel's bpf_prog_info (at its BTF offset): checked
    against run_cnt, which the kernel counts while bpf_stats_enabled is set."""
    from tinyjail.tracer.syscalls.loader import Probe, ProbeOptions

    monkeypatch.setenv("TINYJAIL_BPF_CACHE", str(tmp_path / "cache"))
    stats = Path("/proc/sys/kernel/bpf_stats_enabled")
    old = stats.read_text()
    stats.write_text("1")
    try:
        with Probe(ProbeOptions(stack_k=0)) as probe:
            recorded = _probe_runs(probe, ["/bin/true"])
            runs = sum(compiled.prog_info(fd, "run_cnt") or 0 for fd in probe.prog_fds())
            assert runs >= recorded > 5           # every syscall on the machine runs sys_exit's program
            assert [compiled.prog_info(fd, "recursion_misses") for fd in probe.prog_fds()] == \
                [0] * len(probe.prog_fds())
            assert probe.missed_runs() == 0
    finally:
        stats.write_text(old)
