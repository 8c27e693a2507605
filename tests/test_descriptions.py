"""Risk notes and man-page descriptions of syscalls."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from tinyjail import descriptions, policy, risk, syscalls

MAN2 = Path("/usr/share/man/man2")


def _read(page: Path) -> str:
    with gzip.open(page, "rt") as fh:
        return str(fh.read())


def test_risky_names_are_real_syscalls_with_reasons() -> None:
    for name, why in risk.RISK.items():
        assert policy.is_valid_name(name), name
        assert why and "\n" not in why and len(why) < 110, name
    for name in (
        "ptrace",
        "bpf",
        "io_uring_setup",
        "keyctl",
        "userfaultfd",
        "kexec_load",
        "init_module",
        "mount",
        "unshare",
        "setns",
        "process_vm_writev",
        "open_by_handle_at",
        "perf_event_open",
    ):
        assert risk.is_dangerous(name), name
    assert not risk.is_dangerous("read") and risk.why("read") is None
    assert risk.is_dangerous("setuid32") and risk.why("setuid32") == risk.why("setuid")


def test_most_native_syscalls_are_described() -> None:
    table = syscalls.table("x86_64")
    described = [n for n in table if n in descriptions.descriptions()]
    assert len(described) >= 0.9 * len(table)


@pytest.mark.skipif(not (MAN2 / "read.2.gz").exists(), reason="manpages-dev is not installed")
@pytest.mark.parametrize("name", ["read", "ptrace", "mmap", "bpf", "clone3", "openat"])
def test_descriptions_are_the_manual_page_name_lines(name: str) -> None:
    text = _read(MAN2 / f"{name}.2.gz")
    so = re.match(r"\.so man2/(\S+)", text)
    if so:
        text = _read(MAN2 / so.group(1).replace(".2", ".2.gz"))
    line = text.split(".SH NAME", 1)[1].split(".SH", 1)[0]
    assert descriptions.describe(name) in " ".join(line.replace("\\-", "-").split())


def test_describe_falls_back() -> None:
    described = set(descriptions.descriptions())
    missing = sorted(n for n in syscalls.table() if n not in described)
    for name in missing:
        assert descriptions.describe(name).startswith("no manual page")
    assert descriptions.describe("no_such_call") == "no manual page description available"
