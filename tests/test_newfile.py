"""`tinyjail.newfile`: every file tinyjail writes for the user is created atomically, never through a
symlink (at the final name or a temporary one), and never over an existing file without force."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tinyjail.errors import UsageError
from tinyjail.newfile import check_new, new_file, write_new


def _names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_writes_a_new_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    out = write_new(tmp_path / "r.json", "{}\n")
    assert out == tmp_path / "r.json"
    assert out.read_text() == "{}\n"
    write_new(tmp_path / "f.bpf", b"\x06\x00")
    assert (tmp_path / "f.bpf").read_bytes() == b"\x06\x00"
    assert _names(tmp_path) == {"r.json", "f.bpf"}


def test_symlinks_at_the_old_predictable_temporary_names_are_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    for planted in ("r.json.tmp", f".r.json.tmp{os.getpid()}", ".r.json.tmp"):
        (tmp_path / planted).symlink_to(victim)
    write_new(tmp_path / "r.json", "report\n")
    assert victim.read_text() == "precious\n"
    assert (tmp_path / "r.json").read_text() == "report\n" and not (tmp_path / "r.json").is_symlink()


def test_existing_file_is_kept_without_force_and_replaced_with_it(tmp_path: Path) -> None:
    target = tmp_path / "p.json"
    target.write_text("mine\n")
    with pytest.raises(UsageError, match=r"p\.json: already exists; use --force to overwrite it"):
        write_new(target, "new\n")
    with pytest.raises(UsageError, match="already exists"):
        check_new(target)
    assert target.read_text() == "mine\n"
    write_new(target, "new\n", force=True)
    assert target.read_text() == "new\n"
    assert _names(tmp_path) == {"p.json"}


def test_dangling_symlink_counts_as_existing_and_force_replaces_the_link_only(tmp_path: Path) -> None:
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    target_of_link = elsewhere / "created-as-root"
    link = tmp_path / "r.json"
    link.symlink_to(target_of_link)
    with pytest.raises(UsageError, match="already exists"):
        write_new(link, "x\n")
    assert not target_of_link.exists()  # not created through the dangling link
    write_new(link, "x\n", force=True)
    assert not link.is_symlink() and link.read_text() == "x\n"
    assert not target_of_link.exists()


def test_force_replaces_a_symlink_to_a_file_never_its_target(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "out.bpf"
    link.symlink_to(victim)
    write_new(link, b"data", force=True)
    assert victim.read_text() == "precious\n"
    assert not link.is_symlink() and link.read_bytes() == b"data"


def test_a_file_created_while_writing_is_never_clobbered(tmp_path: Path) -> None:
    """The existence check is repeated at the end (a hard link fails on any existing name)."""
    target = tmp_path / "r.json"
    with pytest.raises(UsageError, match="already exists"), new_file(target) as fh:
        fh.write("ours\n")
        target.write_text("someone else's\n")  # e.g. CMD wrote it while it ran
    assert target.read_text() == "someone else's\n"
    assert _names(tmp_path) == {"r.json"}


def test_an_error_inside_the_block_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError), new_file(tmp_path / "half.json") as fh:
        fh.write("half")
        _ = 1 / 0
    assert _names(tmp_path) == set()


def test_mode_is_0644_less_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_new(tmp_path / "a", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o640
    old = os.umask(0)
    try:
        write_new(tmp_path / "b", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o644  # never group/world-writable


def test_bad_places_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"x\.bpf: directory .*nonexist does not exist"):
        write_new(tmp_path / "nonexist" / "x.bpf", b"")
    with pytest.raises(UsageError, match=r"/proc/r\.json: cannot create a file in /proc: "):
        check_new("/proc/r.json")
    (tmp_path / "d").mkdir()
    with pytest.raises(UsageError, match="is a directory"):
        write_new(tmp_path / "d", "x", force=True)
    (tmp_path / "f").write_text("")
    with pytest.raises(UsageError, match="is not a directory"):
        write_new(tmp_path / "f" / "x", "x")
    assert _names(tmp_path) == {"d", "f"}


def test_devices_are_never_replaced_even_with_force(tmp_path: Path) -> None:
    link = tmp_path / "null-link"
    link.symlink_to("/dev/null")
    for target in (Path("/dev/null"), link):
        with pytest.raises(UsageError, match="not a regular file"):
            write_new(target, "x", force=True)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert link.is_symlink()
