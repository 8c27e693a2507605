"""systemd's syscall groups: data faithful to systemd 252, expansion, collapse, the CLI."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyjail import groups, syscalls
from tinyjail.errors import UsageError


def _systemd_analyze_groups() -> dict[str, set[str]] | None:
    """Groups as the installed systemd-analyze prints them (None unless it is systemd 252.x)."""
    exe = shutil.which("systemd-analyze")
    if exe is None:
        return None
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    if not re.match(r"systemd 252\b", version):
        return None
    out = subprocess.run([exe, "syscall-filter", "--no-pager"], capture_output=True, text=True).stdout
    found: dict[str, set[str]] = {}
    current = None
    for line in out.splitlines():
        if line.startswith("@"):
            current = line.strip()
            found[current] = set()
        elif current and line.strip() and not line.strip().startswith("#"):
            found[current].add(line.strip())
    return found


def test_same_groups_as_installed_systemd_252() -> None:
    """Debian 12 ships systemd 252.x: same group names, and every member we list is in the
    installed group (stable point releases only ever added members)."""
    installed = _systemd_analyze_groups()
    if installed is None:
        pytest.skip("systemd-analyze of systemd 252 is not installed")
    assert set(installed) == set(groups.GROUPS)
    for name, members in groups.GROUPS.items():
        if name == "@known":  # regenerated from the kernel's table in point releases (names also removed)
            continue
        missing = set(members) - installed[name]
        assert not missing, f"{name}: not in systemd-analyze's {name}: {sorted(missing)}"


def test_every_group_has_help_and_members() -> None:
    assert set(groups.GROUP_HELP) == set(groups.GROUPS)
    for name, members in groups.GROUPS.items():
        assert name.startswith("@") and members, name
        assert len(set(members)) == len(members), f"{name} lists a member twice"


def test_nested_groups_resolve() -> None:
    service = groups.expand("@system-service")
    for nested in (n for n in groups.GROUPS["@system-service"] if n.startswith("@")):
        assert groups.expand(nested) <= service
    assert not any(n.startswith("@") for n in service)
    assert "openat" in groups.expand("@file-system")


def test_plain_name_expands_to_itself_and_unknown_group_suggests() -> None:
    assert groups.expand("read") == frozenset({"read"})
    with pytest.raises(UsageError, match='did you mean "@file-system"'):
        groups.expand("@file-sytem")


def test_groups_compile_to_native_syscalls_only() -> None:
    """Groups list names of every architecture; compiling for x86_64 keeps exactly the members
    that exist there."""
    from tinyjail import policy

    native = set(syscalls.table("x86_64"))
    for name in ("@default", "@system-service", "@obsolete"):
        pol = policy.from_dict(
            {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [name], "action": "SCMP_ACT_ALLOW"}]}
        )
        compiled = {r.name for r in policy.effective_rules(pol)}
        assert compiled == groups.expand(name) & native


def test_groups_of_agrees_with_expand() -> None:
    for name in ("openat", "ptrace", "read", "io_uring_setup"):
        found = groups.groups_of(name)
        assert found == [g for g in groups.GROUPS if name in groups.expand(g)]
        assert set(groups.direct_groups_of(name)) <= set(found)


@settings(max_examples=60, deadline=None)
@given(
    st.sets(st.sampled_from(sorted(syscalls.table("x86_64"))), max_size=120),
    st.sets(st.sampled_from(sorted(groups.GROUPS)), max_size=4),
)
def test_collapse_loses_nothing(names: set[str], with_groups: set[str]) -> None:
    native = set(syscalls.table("x86_64"))
    have = set(names)
    for g in with_groups:
        have |= groups.expand(g) & native
    shown = groups.collapse(have)
    back: set[str] = set()
    for item in shown:
        back |= groups.expand(item) & native if item.startswith("@") else {item}
    assert back == have
    plain = [item for item in shown if not item.startswith("@")]
    assert len(plain) == len(set(plain))


def test_collapse_uses_a_group_present_in_full() -> None:
    members = groups.expand("@file-system") & set(syscalls.table("x86_64"))
    shown = groups.collapse(members | {"getpid"})
    assert "@file-system" in shown and "getpid" in shown
    assert "openat" not in shown


def test_cli_group_members_lists_openat(run_cli) -> None:
    res = run_cli("groups", "@file-system")
    assert res.returncode == 0, res.stderr
    assert re.search(r"\bopenat\b", res.stdout)
    res = run_cli("groups", "@file-system", "--names")
    assert set(res.stdout.split()) == set(groups.expand("@file-system"))


def test_cli_lists_groups_and_groups_of(run_cli) -> None:
    res = run_cli("groups")
    assert res.returncode == 0, res.stderr
    for name in groups.GROUPS:
        assert name in res.stdout
    res = run_cli("groups", "--of", "SYS_openat")
    assert res.returncode == 0, res.stderr
    for name in groups.groups_of("openat"):
        assert name in res.stdout
    assert "@network-io" not in res.stdout


def test_cli_unknown_group_is_one_line_exit_2(run_cli) -> None:
    res = run_cli("groups", "@file-sytem")
    assert res.returncode == 2
    assert (
        res.stderr.strip()
        == 'tinyjail: error: unknown syscall group "@file-sytem" (did you mean "@file-system"?)'
    )
