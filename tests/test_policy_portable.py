"""The portable form of a policy: plain runtime-spec JSON (no @group, no symbolic value, no moby
key) that compiles to exactly the same rules, `tinyjail policy export`, `policy merge --portable`,
and symbolic display of MASKED_EQ values in `policy show`."""

from __future__ import annotations

import errno
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tinyjail import groups, syscalls
from tinyjail import policy as pol
from tinyjail.errors import UsageError

ALL_CAPS = {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_BPF", "CAP_SYS_MODULE", "CAP_SYS_BOOT", "CAP_SYSLOG"}
SAMPLES = Path(__file__).resolve().parent.parent / "sample_traces"

GROUPS_AND_SYMBOLS: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    "syscalls": [
        {"names": ["@system-service", "@file-system", "ioctl"], "action": "SCMP_ACT_ALLOW",
         "comment": "the service's everyday calls"},
        {"names": ["ptrace", "@swap"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": "AF_UNIX", "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": "0xf", "valueTwo": "SOCK_STREAM", "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["unshare"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": "CLONE_NEWUSER|CLONE_NEWNS", "valueTwo": 0,
                   "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["mmap", "mprotect"], "action": "SCMP_ACT_KILL_PROCESS",
         "args": [{"index": 2, "value": "PROT_WRITE|PROT_EXEC", "valueTwo": "PROT_WRITE|PROT_EXEC",
                   "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["openat"], "action": "SCMP_ACT_LOG",
         "args": [{"index": 2, "value": "O_ACCMODE", "valueTwo": "O_WRONLY", "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
    ],
    "x-mystery": {"kept": True},
}


def _compiled(policy: pol.Policy, caps: set[str] | None = None) -> list[tuple[Any, ...]]:
    """effective_rules by value (the symbolic spelling of an argument is not part of the filter)."""
    return [(r.name, r.action, r.errno_ret, tuple(a.key() for a in r.args))
            for r in pol.effective_rules(policy, caps=caps)]


def _assert_plain(obj: dict[str, Any]) -> None:
    """Only runtime-spec keys (plus rule comments), no @group, only integer argument values."""
    assert set(obj) <= {"defaultAction", "defaultErrnoRet", "architectures", "flags", "listenerPath",
                        "listenerMetadata", "syscalls"}
    for entry in obj["syscalls"]:
        assert set(entry) <= {"names", "action", "errnoRet", "args", "comment"}
        assert entry["names"] == sorted(set(entry["names"]))
        assert not any(n.startswith("@") for n in entry["names"])
        for arg in entry.get("args", []):
            assert isinstance(arg["value"], int) and isinstance(arg.get("valueTwo", 0), int)


# ----------------------------------------------------------------------------- library


def test_moby_profile_exports_to_plain_rules_with_the_same_filter(moby_profile: Path) -> None:
    moby = pol.load(moby_profile)
    for caps in (None, ALL_CAPS):
        obj = pol.to_dict(moby, portable=True, caps=caps)
        _assert_plain(obj)
        back = pol.from_dict(json.loads(json.dumps(obj)))
        assert pol.is_portable(back)
        assert _compiled(back) == _compiled(moby, caps)
        # the conditions were decided at export time: the result no longer depends on caps
        assert _compiled(back, ALL_CAPS) == _compiled(back)
        assert pol.effective_architectures(back) == pol.effective_architectures(moby)
    assert not pol.is_portable(moby)
    assert pol.evaluate(moby, "bpf") == ("SCMP_ACT_ERRNO", errno.EPERM)
    with_bpf = pol.to_portable(moby, caps={"CAP_BPF"})
    assert pol.evaluate(with_bpf, "bpf") == ("SCMP_ACT_ALLOW", None)
    assert pol.evaluate(pol.to_portable(moby), "bpf") == ("SCMP_ACT_ERRNO", errno.EPERM)
    # clone3 is ENOSYS without CAP_SYS_ADMIN: moby's excludes.caps with an errnoRet survives
    assert pol.evaluate(pol.to_portable(moby), "clone3") == ("SCMP_ACT_ERRNO", errno.ENOSYS)


def test_groups_and_symbols_are_written_out_and_compile_the_same() -> None:
    written = pol.from_dict(GROUPS_AND_SYMBOLS, source="p.json")
    assert not pol.is_portable(written)
    obj = pol.to_dict(written, portable=True)
    _assert_plain(obj)
    back = pol.from_dict(json.loads(pol.dumps(written, portable=True)))
    assert _compiled(back) == _compiled(written)
    assert pol.is_portable(back)
    # the as-written form is unchanged by default
    assert pol.to_dict(written)["syscalls"][0]["names"] == ["@system-service", "@file-system", "ioctl"]

    first = obj["syscalls"][0]
    members = groups.expand("@system-service") | groups.expand("@file-system") | {"ioctl"}
    # a name written explicitly leaves every group (its own entries alone decide it, argument
    # rules included); nothing else left the group rule
    explicit = {n for e in GROUPS_AND_SYMBOLS["syscalls"][1:] for n in e["names"]}
    overridden = explicit | groups.expand("@swap")
    assert {"socket", "openat", "mmap", "unshare"} <= members & overridden
    assert set(first["names"]) == members - overridden
    assert "mmap2" in first["names"]   # other ABIs' members stay: the file lists X86 too
    assert first["comment"] == "the service's everyday calls"
    by_name = {tuple(e["names"]): e for e in obj["syscalls"]}
    assert by_name[("socket",)]["args"] == [
        {"index": 0, "value": socket.AF_UNIX, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 0xF, "valueTwo": socket.SOCK_STREAM, "op": "SCMP_CMP_MASKED_EQ"},
    ]
    assert ("bpf",) in by_name and "x-mystery" not in obj   # unknown keys are not portable
    assert pol.to_dict(written)["x-mystery"] == {"kept": True}   # the as-written form keeps them
    for name, args in [("mkdir", ()), ("ptrace", ()), ("swapon", ()), ("read", ()),
                       ("socket", (socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)),
                       ("socket", (socket.AF_INET, socket.SOCK_STREAM)), ("mmap", (0, 0, 7)),
                       ("unshare", (0x10000000,)), ("unshare", (0x400,))]:
        assert pol.evaluate(back, name, args) == pol.evaluate(written, name, args), name


def test_an_overridden_group_member_keeps_only_the_argument_sets_it_wins() -> None:
    """A repeated argument index means OR: each condition is its own rule. When a stricter group
    rule wins one of them, the portable form keeps the others as separate rules."""
    written = pol.from_dict({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["@default"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
            {"names": ["@system-service"], "action": "SCMP_ACT_KILL_PROCESS",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
        ],
    })
    portable = pol.to_portable(written)
    assert _compiled(portable) == _compiled(written)
    getpid = [(r.action, [a.key() for a in r.args]) for r in portable.syscalls if "getpid" in r.names]
    assert getpid == [("SCMP_ACT_ALLOW", [(0, "SCMP_CMP_EQ", 2, 0)]),
                      ("SCMP_ACT_KILL_PROCESS", [(0, "SCMP_CMP_EQ", 1, 0)])]
    assert pol.evaluate(portable, "getpid", (1,)) == ("SCMP_ACT_KILL_PROCESS", None)
    assert pol.evaluate(portable, "getpid", (2,)) == ("SCMP_ACT_ALLOW", None)


def test_a_name_written_explicitly_leaves_its_groups_in_the_portable_form() -> None:
    """An explicit entry (here with an argument rule) alone decides its syscall: the group's
    rules for it, all argument sets included, are not written out."""
    written = pol.from_dict({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["@default"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
        ],
    })
    portable = pol.to_portable(written)
    assert _compiled(portable) == _compiled(written)
    getpid = [(r.action, [a.key() for a in r.args]) for r in portable.syscalls if "getpid" in r.names]
    assert getpid == [("SCMP_ACT_KILL_PROCESS", [(0, "SCMP_CMP_EQ", 1, 0)])]
    for policy in (written, portable):
        assert pol.evaluate(policy, "getpid", (1,)) == ("SCMP_ACT_KILL_PROCESS", None)
        assert pol.evaluate(policy, "getpid", (2,)) == ("SCMP_ACT_ERRNO", errno.EPERM)
        assert pol.evaluate(policy, "getppid", (2,)) == ("SCMP_ACT_ALLOW", None)


def test_portable_is_idempotent_and_plain_policies_are_unchanged() -> None:
    written = pol.from_dict(GROUPS_AND_SYMBOLS)
    once = pol.to_portable(written)
    assert pol.to_dict(pol.to_portable(once)) == pol.to_dict(once)
    plain = pol.from_dict({"defaultAction": "SCMP_ACT_KILL_PROCESS", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                           "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]})
    assert pol.is_portable(plain)
    assert pol.to_dict(plain, portable=True) == pol.to_dict(plain)


@pytest.mark.parametrize("profile", sorted(SAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_generated_profiles_are_portable(profile: Path) -> None:
    """Profiles written by `tinyjail profile`/`trace --profile` run in runc as they are."""
    loaded = pol.load(profile)
    assert pol.is_portable(loaded)
    assert pol.to_dict(loaded, portable=True) == pol.to_dict(loaded)


def test_profile_generator_output_is_portable() -> None:
    from tinyjail.tracer.profile import generate

    from tinyjail.timeline import load

    traces = [load(d) for d in sorted(SAMPLES.iterdir()) if (d / "meta.json").exists()]
    if not traces:
        pytest.skip("no sample traces")
    generated = generate(traces)
    assert pol.is_portable(generated), "generate() must not emit @groups, symbolic values or moby keys"


def test_save_portable_validates_and_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    out.write_text("precious")
    with pytest.raises(UsageError, match="already exists"):
        pol.save(pol.from_dict(GROUPS_AND_SYMBOLS), out, portable=True)
    assert out.read_text() == "precious"
    pol.save(pol.from_dict(GROUPS_AND_SYMBOLS), out, force=True, portable=True)
    _assert_plain(json.loads(out.read_text()))


# ----------------------------------------------------------------------------- CLI


def test_cli_export(run_cli, tmp_path: Path, moby_profile: Path) -> None:
    src, out = tmp_path / "p.json", tmp_path / "out.json"
    src.write_text(json.dumps(GROUPS_AND_SYMBOLS))
    res = run_cli("policy", "export", str(src), "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert "expanded @file-system @swap @system-service" in res.stdout
    symbolic = sum(isinstance(v, str) for e in GROUPS_AND_SYMBOLS["syscalls"] for a in e.get("args", [])
                   for v in (a["value"], a.get("valueTwo", 0)))
    assert f"{symbolic} symbolic values written as numbers" in res.stdout
    _assert_plain(json.loads(out.read_text()))
    assert _compiled(pol.load(out)) == _compiled(pol.load(src))

    before = out.read_text()
    res = run_cli("policy", "export", str(src), "-o", str(out))
    assert res.returncode == 2 and "already exists; use --force" in res.stderr
    assert out.read_text() == before
    assert run_cli("policy", "export", str(src), "-o", str(out), "--force").returncode == 0

    res = run_cli("policy", "export", str(moby_profile), "-o", "-", "--cap", "CAP_BPF")
    assert res.returncode == 0, res.stderr
    assert "moby conditions evaluated for x86_64" in res.stderr and "caps CAP_BPF" in res.stderr
    exported = pol.loads(res.stdout)
    assert pol.evaluate(exported, "bpf") == ("SCMP_ACT_ALLOW", None)
    assert _compiled(exported) == _compiled(pol.load(moby_profile), {"CAP_BPF"})

    res = run_cli("policy", "export", str(src), "-o", "-", "--cap", "sys_admin")
    assert res.returncode == 2 and "not a capability name" in res.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"defaultAction": "SCMP_ACT_ERRNO",
                               "syscalls": [{"names": ["@file-sytem"], "action": "SCMP_ACT_ALLOW"}]}))
    res = run_cli("policy", "export", str(bad), "-o", str(tmp_path / "never.json"))
    assert res.returncode == 2 and 'did you mean "@file-system"' in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "never.json").exists()


def test_cli_merge_portable(run_cli, tmp_path: Path) -> None:
    a, b, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "out.json"
    a.write_text(json.dumps(GROUPS_AND_SYMBOLS))
    b.write_text(json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOTTY}]}))
    res = run_cli("policy", "merge", str(a), str(b), "-o", str(out), "--portable")
    assert res.returncode == 0, res.stderr
    assert "conflict: ioctl:" in res.stderr and "(portable)" in res.stdout
    _assert_plain(json.loads(out.read_text()))
    merged = pol.load(out)
    assert pol.evaluate(merged, "ioctl") == ("SCMP_ACT_ERRNO", errno.ENOTTY)
    written, _ = pol.merge(pol.load(a), pol.load(b))
    assert _compiled(merged) == _compiled(written)
    res = run_cli("policy", "merge", str(a), str(b), "-o", str(tmp_path / "x.json"), "--cap", "CAP_BPF")
    assert res.returncode == 2 and "--cap only applies with --portable" in res.stderr


def test_cli_show_names_masked_values_including_zero(run_cli, tmp_path: Path) -> None:
    """A numeric MASKED_EQ is shown with the mask's name and valueTwo's name, 0 included
    (O_RDONLY is 0), also when only the mask was written symbolically."""
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["openat"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 2, "value": 3, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["open"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 1, "value": "O_ACCMODE", "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0x10000000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
    ]}))
    res = run_cli("policy", "show", str(p), env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    assert "a2 & O_ACCMODE == O_RDONLY" in res.stdout
    assert "a1 & O_ACCMODE == O_RDONLY" in res.stdout
    assert "a0 & CLONE_NEWUSER == 0" in res.stdout   # no clone flag is 0: the number stays


def test_every_group_member_is_a_valid_name() -> None:
    """Expanding a group must give names a policy file may list (else export would fail)."""
    for group in groups.GROUPS:
        for name in groups.expand(group):
            assert pol.is_valid_name(name), (group, name)
    assert groups.expand("@default") - set(syscalls.table())   # arch-specific members exist
