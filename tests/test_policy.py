"""The OCI seccomp policy model: reading (OCI, config.json, moby), validation, saving,
compiling, evaluation (checked against the real kernel), merge and diff, and the CLI."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tinyjail import groups, syscalls
from tinyjail import policy as pol
from tinyjail.errors import PolicyError, UsageError

ALL_CAPS = {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_BPF", "CAP_SYS_MODULE", "CAP_SYS_BOOT"}


def _policy(*entries: dict, default: str = "SCMP_ACT_ERRNO", **top: object) -> pol.Policy:
    return pol.from_dict({"defaultAction": default, "syscalls": list(entries), **top}, source="t.json")


def _problems(obj: object) -> list[str]:
    with pytest.raises(PolicyError) as err:
        pol.from_dict(obj, source="t.json")
    return err.value.problems


# ----------------------------------------------------------------------------- moby profile


def test_moby_profile_loads_and_round_trips(moby_profile: Path) -> None:
    loaded = pol.load(moby_profile)
    raw = json.loads(moby_profile.read_text())
    assert len(loaded.syscalls) == len(raw["syscalls"])
    assert loaded.arch_map == raw["archMap"]
    again = pol.from_dict(pol.to_dict(loaded))
    for caps in (None, ALL_CAPS):
        assert pol.effective_rules(again, caps=caps) == pol.effective_rules(loaded, caps=caps)
    assert pol.to_dict(again) == pol.to_dict(loaded)
    # every entry's names survive as written
    assert [r.names for r in again.syscalls] == [e["names"] for e in raw["syscalls"]]


def test_moby_conditions_are_evaluated(moby_profile: Path) -> None:
    moby = pol.load(moby_profile)
    eperm = ("SCMP_ACT_ERRNO", errno.EPERM)
    assert pol.evaluate(moby, "read") == ("SCMP_ACT_ALLOW", None)
    assert pol.evaluate(moby, "mount") == eperm
    # includes.caps: allowed only when the container has the capability
    assert pol.evaluate(moby, "bpf") == eperm
    assert pol.evaluate(moby, "bpf", caps={"CAP_BPF"}) == ("SCMP_ACT_ALLOW", None)
    # excludes.caps with an errnoRet: clone3 gets ENOSYS unless CAP_SYS_ADMIN
    assert pol.evaluate(moby, "clone3") == ("SCMP_ACT_ERRNO", errno.ENOSYS)
    assert pol.evaluate(moby, "clone3", caps={"CAP_SYS_ADMIN"}) == ("SCMP_ACT_ALLOW", None)
    # includes.minKernel: ptrace needs kernel >= 4.8
    assert pol.evaluate(moby, "ptrace", kernel=(6, 1)) == ("SCMP_ACT_ALLOW", None)
    assert pol.evaluate(moby, "ptrace", kernel=(4, 4)) == eperm
    # includes.arches: arch_prctl only on amd64/x32
    assert pol.evaluate(moby, "arch_prctl") == ("SCMP_ACT_ALLOW", None)
    # argument rules: clone without namespace flags, socket families, personality values
    sigchld = 17
    assert pol.evaluate(moby, "clone", (sigchld,)) == ("SCMP_ACT_ALLOW", None)
    assert pol.evaluate(moby, "clone", (sigchld | 0x10000000,)) == eperm  # CLONE_NEWUSER
    assert pol.evaluate(moby, "socket", (1,)) == ("SCMP_ACT_ALLOW", None)  # AF_UNIX
    assert pol.evaluate(moby, "socket", (40,)) == eperm  # AF_VSOCK
    assert pol.evaluate(moby, "personality", (0,)) == ("SCMP_ACT_ALLOW", None)
    assert pol.evaluate(moby, "personality", (0x0400000,)) == eperm  # READ_IMPLIES_EXEC
    assert pol.allowed(moby, "socket") and not pol.allowed(moby, "kexec_load")


def test_moby_names_newer_than_libseccomp_are_noted_not_compiled(moby_profile: Path) -> None:
    moby = pol.load(moby_profile)
    newer = {n for r in moby.syscalls for n in r.names if not syscalls.is_known(n)}
    compiled = {r.name for r in pol.effective_rules(moby)}
    assert not newer & compiled
    if newer:
        assert any(all(n in line for n in newer) for line in pol.notes(moby))


def test_unknown_to_libseccomp_lists_the_entries_that_apply() -> None:
    if syscalls.is_known("mseal") or syscalls.is_known("statmount"):
        pytest.skip("the installed libseccomp knows mseal/statmount")
    p = _policy(
        {"names": ["mseal"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["read", "statmount"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
        default="SCMP_ACT_ALLOW",
    )
    statmount = pol.Unknown("$.syscalls[1].names[1]", "statmount", ("statmount",), "SCMP_ACT_ERRNO",
                            errno.ENOSYS)
    assert pol.unknown_to_libseccomp(p) == [statmount]
    with_cap = pol.unknown_to_libseccomp(p, caps={"CAP_SYS_ADMIN"})
    assert [(u.path, u.names, u.action) for u in with_cap] == [
        ("$.syscalls[0].names[0]", ("mseal",), "SCMP_ACT_ALLOW"),
        (statmount.path, ("statmount",), "SCMP_ACT_ERRNO"),
    ]
    assert "statmount" not in {r.name for r in pol.effective_rules(p)}


def test_runc_config_json_and_old_moby_name_form(tmp_path: Path) -> None:
    seccomp = {
        "defaultAction": "SCMP_ACT_KILL_PROCESS",
        "syscalls": [{"name": "read", "action": "SCMP_ACT_ALLOW"}],
    }
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"ociVersion": "1.0.2", "process": {}, "linux": {"seccomp": seccomp}}))
    loaded = pol.load(cfg)
    assert loaded.default_action == "SCMP_ACT_KILL_PROCESS"
    assert loaded.syscalls[0].names == ["read"]
    assert pol.evaluate(loaded, "read") == ("SCMP_ACT_ALLOW", None)
    cfg.write_text(json.dumps({"ociVersion": "1.0.2", "linux": {"namespaces": []}}))
    with pytest.raises(PolicyError, match=r"config.json: \$\.linux: this config.json has no seccomp"):
        pol.load(cfg)


# ----------------------------------------------------------------------------- validation

VALIDATION_CASES = [
    # (syscall entry, JSON path of the problem, text expected in the message)
    (
        {"names": ["opne"], "action": "SCMP_ACT_ALLOW"},
        "$.syscalls[0].names[0]",
        'unknown syscall "opne" (did you mean "open"?)',
    ),
    ({"names": ["SYS_read"], "action": "SCMP_ACT_ALLOW"}, "$.syscalls[0].names[0]", 'did you mean "read"'),
    (
        {"names": ["@file-sytem"], "action": "SCMP_ACT_ALLOW"},
        "$.syscalls[0].names[0]",
        'unknown syscall group "@file-sytem" (did you mean "@file-system"?)',
    ),
    (
        {"names": ["read"], "action": "SCMP_ACT_ALOW"},
        "$.syscalls[0].action",
        'unknown action "SCMP_ACT_ALOW" (did you mean "SCMP_ACT_ALLOW"?)',
    ),
    ({"names": ["read"], "action": "allow"}, "$.syscalls[0].action", 'did you mean "SCMP_ACT_ALLOW"'),
    (
        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1},
        "$.syscalls[0].errnoRet",
        "errnoRet only applies to SCMP_ACT_ERRNO",
    ),
    (
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5000},
        "$.syscalls[0].errnoRet",
        "out of range 0..4095",
    ),
    (
        {
            "names": ["read"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}],
        },
        "$.syscalls[0].args[0].index",
        "index 6 is out of range 0..5",
    ),
    (
        {
            "names": ["read"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQQ"}],
        },
        "$.syscalls[0].args[0].op",
        'unknown operator "SCMP_CMP_EQQ" (did you mean "SCMP_CMP_EQ"?)',
    ),
    (
        {
            "names": ["read"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}],
        },
        "$.syscalls[0].args[0].value",
        "write 18446744073709551615 for -1",
    ),
    (
        {
            "names": ["read"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 2**64, "op": "SCMP_CMP_EQ"}],
        },
        "$.syscalls[0].args[0].value",
        "out of range",
    ),
    (
        {
            "names": ["read"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 1.5, "op": "SCMP_CMP_EQ"}],
        },
        "$.syscalls[0].args[0].value",
        "must be an integer",
    ),
    (
        {
            "names": ["read"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": True, "op": "SCMP_CMP_EQ"}],
        },
        "$.syscalls[0].args[0].value",
        "got a boolean",
    ),
    (
        {
            "names": ["read"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "vaule": 1, "op": "SCMP_CMP_EQ"}],
        },
        "$.syscalls[0].args[0].vaule",
        'did you mean "value"',
    ),
    ({"names": "read", "action": "SCMP_ACT_ALLOW"}, "$.syscalls[0].names", "expected an array"),
    ({"names": [], "action": "SCMP_ACT_ALLOW"}, "$.syscalls[0].names", "empty"),
    (
        {"names": [7], "action": "SCMP_ACT_ALLOW"},
        "$.syscalls[0].names[0]",
        "expected a syscall name, got a number",
    ),
    ({"action": "SCMP_ACT_ALLOW"}, "$.syscalls[0]", 'missing "names"'),
    ({"names": ["read"]}, "$.syscalls[0]", 'missing "action"'),
    (
        {"name": "read", "names": ["read"], "action": "SCMP_ACT_ALLOW"},
        "$.syscalls[0]",
        'both "name" and "names"',
    ),
    (
        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["sys_admin"]}},
        "$.syscalls[0].includes.caps[0]",
        "not a capability name",
    ),
    (
        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd46"]}},
        "$.syscalls[0].includes.arches[0]",
        'did you mean "amd64"',
    ),
    (
        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "four"}},
        "$.syscalls[0].includes.minKernel",
        "kernel version",
    ),
    (
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": "AF_UNX", "op": "SCMP_CMP_EQ"}],
        },
        "$.syscalls[0].args[0].value",
        "AF_UNIX",
    ),
    ("read", "$.syscalls[0]", "expected an object"),
    # unknown keys in a rule or an argument would silently drop a condition: errors with a hint
    (
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "conditions": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
        "$.syscalls[0].conditions",
        'unknown key "conditions" (did you mean "args"?)',
    ),
    (
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "arguments": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
        "$.syscalls[0].arguments",
        'did you mean "args"?',
    ),
    ({"names": ["read"], "action": "SCMP_ACT_ALLOW", "x-why": "io"}, "$.syscalls[0].x-why",
     'unknown key "x-why" (expected one of: names, name, action, errnoRet, args, comment, includes, '
     'excludes; put remarks in "comment")'),
    ({"syscall": ["read"], "action": "SCMP_ACT_ALLOW"}, "$.syscalls[0].syscall", 'did you mean "names"?'),
    ({"names": ["read"], "action": "SCMP_ACT_ERRNO", "errno": 5}, "$.syscalls[0].errno",
     'did you mean "errnoRet"?'),
    (
        {"names": ["read"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 1, "operator": "SCMP_CMP_EQ"}]},
        "$.syscalls[0].args[0].operator",
        'unknown key "operator" (did you mean "op"?)',
    ),
    (
        {"names": ["read"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 1, "value2": 3, "op": "SCMP_CMP_MASKED_EQ"}]},
        "$.syscalls[0].args[0].value2",
        'did you mean "valueTwo"?',
    ),
    (
        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "excludes": {"capabilities": ["CAP_SYS_ADMIN"]}},
        "$.syscalls[0].excludes.capabilities",
        'did you mean "caps"?',
    ),
]


@pytest.mark.parametrize(("entry", "path", "message"), VALIDATION_CASES)
def test_validation_names_path_and_problem(entry: object, path: str, message: str) -> None:
    problems = _problems({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [entry]})
    assert any(p.startswith(f"t.json: {path}: ") and message in p for p in problems), problems


TOP_LEVEL_CASES = [
    ({"syscalls": []}, "$", 'missing "defaultAction"'),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}, "$.defaultErrnoRet", "only applies"),
    (
        {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_46"]},
        "$.architectures[0]",
        'did you mean "SCMP_ARCH_X86_64"',
    ),
    (
        {"defaultAction": "SCMP_ACT_ERRNO", "architectures": "SCMP_ARCH_X86_64"},
        "$.architectures",
        "expected an array",
    ),
    (
        {"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOGG"]},
        "$.flags[0]",
        'did you mean "SECCOMP_FILTER_FLAG_LOG"',
    ),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscals": []}, "$.syscals", 'did you mean "syscalls"'),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscall": []}, "$.syscall", 'did you mean "syscalls"'),
    ({"defaultAction": "SCMP_ACT_ERRNO", "rules": []}, "$.rules",
     'unknown key "rules" (did you mean "syscalls"?)'),
    ({"defaultaction": "SCMP_ACT_ERRNO"}, "$.defaultaction", 'did you mean "defaultAction"'),
    ({"defaultAction": "SCMP_ACT_ERRNO", "arches": []}, "$.arches", 'did you mean "architectures"'),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": {}}, "$.syscalls", "expected an array"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": 3}, "$.listenerPath", "expected a string"),
    (
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X3"]}],
        },
        "$.archMap[0].subArchitectures[0]",
        'did you mean "SCMP_ARCH_X32"',
    ),
    ([], "$", "expected a JSON object"),
]


@pytest.mark.parametrize(("obj", "path", "message"), TOP_LEVEL_CASES)
def test_top_level_validation(obj: object, path: str, message: str) -> None:
    problems = _problems(obj)
    assert any(p.startswith(f"t.json: {path}: ") and message in p for p in problems), problems


@pytest.mark.parametrize(
    "obj",
    [
        {1: 2},
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": 5, "arches": 7}}
            ],
        },
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {
                    "names": ["read"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": "", "op": "SCMP_CMP_EQ"}],
                }
            ],
        },
        {"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": 5, "subArchitectures": 5}]},
    ],
)
def test_odd_shapes_are_problems_not_crashes(obj: object) -> None:
    assert _problems(obj)


def test_every_problem_is_reported_at_once() -> None:
    problems = _problems(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read", "opne", "wirte"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["close"], "action": "SCMP_ACT_NOPE"},
                {
                    "names": ["dup"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 9, "value": 1, "op": "BAD"}],
                },
            ],
        }
    )
    paths = [p.split(": ")[1] for p in problems]
    assert paths == [
        "$.syscalls[0].names[1]",
        "$.syscalls[0].names[2]",
        "$.syscalls[1].action",
        "$.syscalls[2].args[0].index",
        "$.syscalls[2].args[0].op",
    ]


def test_conflicting_actions_for_the_same_call_are_rejected() -> None:
    problems = _problems(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["write"], "action": "SCMP_ACT_KILL_PROCESS"},
            ],
        }
    )
    assert problems == [
        't.json: $.syscalls[1].names[0]: "write" is already SCMP_ACT_ALLOW at '
        "$.syscalls[0].names[1] (no argument conditions); it cannot also be SCMP_ACT_KILL_PROCESS"
    ]
    # a different errno is a different action too
    assert _problems(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            ],
        }
    )
    # different arguments, or different moby conditions, are not a conflict
    _policy(
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW"},
        {
            "names": ["socket"],
            "action": "SCMP_ACT_KILL",
            "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}],
        },
    )
    _policy(
        {"names": ["clone3"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
    )


def test_conflicts_are_reported_even_when_other_entries_are_broken() -> None:
    problems = _problems({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["opne"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["write"], "action": "SCMP_ACT_KILL_PROCESS"},
    ]})
    assert problems == [
        't.json: $.syscalls[1].names[0]: unknown syscall "opne" (did you mean "open"?)',
        't.json: $.syscalls[2].names[0]: "write" is already SCMP_ACT_ALLOW at $.syscalls[0].names[1] '
        "(no argument conditions); it cannot also be SCMP_ACT_KILL_PROCESS",
    ]


def test_two_groups_that_disagree_give_one_line_per_pair_of_entries() -> None:
    shared = sorted(groups.expand("@file-system") & groups.expand("@system-service"))
    assert len(shared) > 4
    problems = _problems({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["@file-system"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["@system-service"], "action": "SCMP_ACT_KILL_PROCESS"},
    ]})
    assert problems == [
        f"t.json: $.syscalls[1].names[0]: @system-service and @file-system (at $.syscalls[0].names[0]) "
        f"share {len(shared)} syscalls ({', '.join(shared[:4])}, ...) with different actions: "
        "SCMP_ACT_ALLOW there, SCMP_ACT_KILL_PROCESS here (no argument conditions); name the ones you "
        "mean explicitly (an explicit name overrides its groups)",
    ]
    mount = sorted(groups.expand("@mount") & groups.expand("@privileged"))
    problems = _problems({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["@mount"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["read", "@privileged"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
    ]})
    assert problems == [
        f"t.json: $.syscalls[1].names[1]: @privileged and @mount (at $.syscalls[0].names[0]) share "
        f"{len(mount)} syscalls ({', '.join(mount)}) with different actions: SCMP_ACT_ALLOW there, "
        "SCMP_ACT_ERRNO(EPERM) here (no argument conditions); name the ones you mean explicitly (an "
        "explicit name overrides its groups)",
    ]


def test_foreign_top_level_keys_are_kept_and_noted() -> None:
    """moby and the runtime spec define no extension keys; a top-level key that is no misspelling
    of a known one is kept as written (runc ignores it too) and noted."""
    loaded = pol.from_dict(
        {"defaultAction": "SCMP_ACT_ERRNO", "x-owner": "team-a",
         "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "comment": "io"}]},
        source="t.json",
    )
    out = pol.to_dict(loaded)
    assert out["x-owner"] == "team-a" and out["syscalls"][0]["comment"] == "io"
    assert pol.notes(loaded) == [
        "t.json: $.x-owner: unknown key kept as written (tinyjail and runc ignore it)"]


def test_moby_rule_keys_stay_valid(moby_profile: Path) -> None:
    raw = json.loads(moby_profile.read_text())
    used = {key for entry in raw["syscalls"] for key in entry}
    assert used <= set(pol.RULE_KEYS) and {"comment", "includes", "excludes"} <= used
    assert not [n for n in pol.notes(pol.load(moby_profile)) if "unknown key" in n]


def test_duplicate_json_keys_are_reported() -> None:
    with pytest.raises(PolicyError, match=r"\$\.defaultAction: key written twice"):
        pol.loads('{"defaultAction": "SCMP_ACT_ALLOW", "defaultAction": "SCMP_ACT_ERRNO"}', "t.json")


# ----------------------------------------------------------------------------- files


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "t.json: empty file"),
        (b"  \n ", "t.json: empty file"),
        (
            b'{"defaultAction": "SCMP_ACT_ERRNO",\n "syscalls": [\n  {"names": ["read"],, }]}',
            "t.json:3:22: not valid JSON",
        ),
        (b"\x7fELF\x02\x01\x01\x00\x00", "t.json: binary file (NUL byte at offset 7)"),
        (b'{"defaultAction": "\xff\xfe"}', "t.json: not UTF-8 text (byte 0xff at offset 19)"),
        (b'{"defaultAction": NaN}', "NaN is not valid JSON"),
        (b"[" * 100000, "nested too deeply"),
    ],
)
def test_bad_files_give_one_clear_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "t.json"
    path.write_bytes(content)
    with pytest.raises(PolicyError) as err:
        pol.load(str(path).replace(str(path), str(path)))
    assert len(err.value.problems) == 1
    assert message in err.value.problems[0].replace(str(path), "t.json")


def test_missing_directory_and_huge_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such file"):
        pol.load(tmp_path / "nope.json")
    with pytest.raises(PolicyError, match="is a directory"):
        pol.load(tmp_path)
    huge = tmp_path / "huge.json"
    huge.write_text('{"defaultAction": "SCMP_ACT_ERRNO", "x": "' + "a" * pol.MAX_FILE_BYTES + '"}')
    with pytest.raises(PolicyError, match="larger than 4 MiB"):
        pol.load(huge)


def test_save_never_overwrites_without_force(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    p = _policy({"names": ["read"], "action": "SCMP_ACT_ALLOW"})
    pol.save(p, out)
    assert pol.load(out).syscalls[0].names == ["read"]
    other = _policy({"names": ["write"], "action": "SCMP_ACT_ALLOW"})
    with pytest.raises(UsageError, match="already exists; use --force"):
        pol.save(other, out)
    assert pol.load(out).syscalls[0].names == ["read"]
    pol.save(other, out, force=True)
    assert pol.load(out).syscalls[0].names == ["write"]
    bad = pol.Policy(syscalls=[pol.SyscallRule(names=["nosuchcall"], action="SCMP_ACT_ALLOW")])
    with pytest.raises(PolicyError, match='unknown syscall "nosuchcall"'):
        pol.save(bad, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


# ----------------------------------------------------------------------------- as written vs compiled


def test_groups_and_symbols_kept_as_written_and_compiled() -> None:
    p = _policy(
        {"names": ["@file-system"], "action": "SCMP_ACT_ALLOW"},
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": "AF_UNIX", "op": "SCMP_CMP_EQ"}],
        },
        {
            "names": ["mmap"],
            "action": "SCMP_ACT_ALLOW",
            "args": [
                {
                    "index": 2,
                    "value": "PROT_WRITE|PROT_EXEC",
                    "valueTwo": "PROT_EXEC",
                    "op": "SCMP_CMP_MASKED_EQ",
                }
            ],
        },
    )
    out = pol.to_dict(p)
    assert out["syscalls"][0]["names"] == ["@file-system"]
    assert out["syscalls"][1]["args"][0]["value"] == "AF_UNIX"
    assert out["syscalls"][2]["args"][0]["valueTwo"] == "PROT_EXEC"
    compiled = pol.effective_rules(p)
    native = set(syscalls.table())
    assert {r.name for r in compiled if not r.args} == groups.expand("@file-system") & native
    import socket

    (sock_rule,) = [r for r in compiled if r.name == "socket"]
    assert sock_rule.args[0].value == socket.AF_UNIX and sock_rule.args[0].symbolic == "AF_UNIX"
    assert pol.evaluate(p, "socket", (socket.AF_UNIX,)) == ("SCMP_ACT_ALLOW", None)
    assert pol.evaluate(p, "socket", (socket.AF_INET,)) == ("SCMP_ACT_ERRNO", errno.EPERM)


def test_explicit_name_overrides_its_group() -> None:
    p = _policy(
        {"names": ["@system-service"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["ptrace"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EIO},
    )
    assert pol.evaluate(p, "ptrace") == ("SCMP_ACT_KILL_PROCESS", None)
    assert pol.evaluate(p, "read") == ("SCMP_ACT_ERRNO", errno.EIO)
    assert pol.evaluate(p, "openat") == ("SCMP_ACT_ALLOW", None)


def test_explicit_argument_rules_are_not_cancelled_by_a_group() -> None:
    """The group's unconditional ALLOW no longer reaches socket: only AF_UNIX passes."""
    import socket

    p = _policy(
        {"names": ["@system-service"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": "AF_UNIX", "op": "SCMP_CMP_EQ"}]},
        default="SCMP_ACT_KILL_PROCESS",
    )
    (rule,) = [r for r in pol.effective_rules(p) if r.name == "socket"]
    assert [a.key() for a in rule.args] == [(0, "SCMP_CMP_EQ", socket.AF_UNIX, 0)]
    assert pol.evaluate(p, "socket", (socket.AF_UNIX, socket.SOCK_STREAM)) == ("SCMP_ACT_ALLOW", None)
    assert pol.evaluate(p, "socket", (socket.AF_INET, socket.SOCK_DGRAM)) == ("SCMP_ACT_KILL_PROCESS", None)
    assert pol.evaluate(p, "connect") == ("SCMP_ACT_ALLOW", None)
    assert pol.allowed(p, "socket")


def test_explicit_name_that_does_not_apply_leaves_the_name_to_its_group() -> None:
    """A moby condition that does not hold removes the explicit entry: the group decides again."""
    p = _policy(
        {"names": ["@privileged"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["acct"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PACCT"]}},
        default="SCMP_ACT_ALLOW",
    )
    assert pol.evaluate(p, "acct") == ("SCMP_ACT_KILL_PROCESS", None)
    assert pol.evaluate(p, "acct", caps={"CAP_SYS_PACCT"}) == ("SCMP_ACT_ALLOW", None)


def test_groups_disagreeing_only_on_names_written_explicitly_are_no_conflict() -> None:
    shared = sorted(groups.expand("@mount") & groups.expand("@privileged"))
    p = _policy(
        {"names": ["@mount"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["@privileged"], "action": "SCMP_ACT_ERRNO"},
        {"names": shared, "action": "SCMP_ACT_KILL_PROCESS"},
    )
    assert all(pol.evaluate(p, name) == ("SCMP_ACT_KILL_PROCESS", None) for name in shared)
    assert pol.evaluate(p, "mount") == ("SCMP_ACT_ALLOW", None)


def test_repeated_argument_index_is_an_or_like_runc() -> None:
    p = _policy(
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [
                {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
            ],
        }
    )
    assert len([r for r in pol.effective_rules(p) if r.name == "personality"]) == 2
    for value, action in ((0, "SCMP_ACT_ALLOW"), (8, "SCMP_ACT_ALLOW"), (4, "SCMP_ACT_ERRNO")):
        assert pol.evaluate(p, "personality", (value,))[0] == action


def test_rules_equal_to_default_and_foreign_names_are_dropped() -> None:
    p = _policy(
        {"names": ["read", "mmap2", "getuid32"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["write"], "action": "SCMP_ACT_ERRNO"},
    )
    assert [r.name for r in pol.effective_rules(p)] == ["read"]
    assert {r.name for r in pol.effective_rules(p, arch="x86")} == {"read", "mmap2", "getuid32"}


# ----------------------------------------------------------------------------- evaluate, table-driven

_OPS_CASES = [
    # op, value, valueTwo, argument -> matches?
    ("SCMP_CMP_NE", 5, 0, 5, False),
    ("SCMP_CMP_NE", 5, 0, 6, True),
    ("SCMP_CMP_LT", 5, 0, 4, True),
    ("SCMP_CMP_LT", 5, 0, 5, False),
    ("SCMP_CMP_LE", 5, 0, 5, True),
    ("SCMP_CMP_LE", 5, 0, 6, False),
    ("SCMP_CMP_EQ", 5, 0, 5, True),
    ("SCMP_CMP_EQ", 5, 0, 4, False),
    ("SCMP_CMP_EQ", 2**63, 0, 2**63, True),
    ("SCMP_CMP_EQ", 2**32 + 5, 0, 5, False),
    ("SCMP_CMP_GE", 5, 0, 5, True),
    ("SCMP_CMP_GE", 5, 0, 4, False),
    ("SCMP_CMP_GT", 5, 0, 6, True),
    ("SCMP_CMP_GT", 5, 0, 5, False),
    ("SCMP_CMP_GT", 5, 0, 2**40, True),
    ("SCMP_CMP_MASKED_EQ", 0xF0, 0x30, 0x3F, True),
    ("SCMP_CMP_MASKED_EQ", 0xF0, 0x30, 0x4F, False),
    ("SCMP_CMP_MASKED_EQ", 0x7E020000, 0, 17, True),
    ("SCMP_CMP_MASKED_EQ", 0x7E020000, 0, 0x10000011, False),
]


@pytest.mark.parametrize(("op", "value", "two", "arg", "hit"), _OPS_CASES)
def test_evaluate_each_operator(op: str, value: int, two: int, arg: int, hit: bool) -> None:
    p = _policy(
        {
            "names": ["getpriority"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno.EACCES,
            "args": [{"index": 1, "value": value, "valueTwo": two, "op": op}],
        },
        default="SCMP_ACT_ALLOW",
    )
    expected = ("SCMP_ACT_ERRNO", errno.EACCES) if hit else ("SCMP_ACT_ALLOW", None)
    assert pol.evaluate(p, "getpriority", (0, arg)) == expected
    assert pol.Arg(1, value, op, two).matches((0, arg)) is hit


@pytest.mark.parametrize(
    ("action", "errno_ret", "expected"),
    [
        ("SCMP_ACT_KILL_PROCESS", None, ("SCMP_ACT_KILL_PROCESS", None)),
        ("SCMP_ACT_KILL_THREAD", None, ("SCMP_ACT_KILL_THREAD", None)),
        ("SCMP_ACT_KILL", None, ("SCMP_ACT_KILL", None)),
        ("SCMP_ACT_TRAP", None, ("SCMP_ACT_TRAP", None)),
        ("SCMP_ACT_ERRNO", None, ("SCMP_ACT_ERRNO", errno.EPERM)),
        ("SCMP_ACT_ERRNO", 0, ("SCMP_ACT_ERRNO", 0)),
        ("SCMP_ACT_ERRNO", 38, ("SCMP_ACT_ERRNO", 38)),
        ("SCMP_ACT_TRACE", 7, ("SCMP_ACT_TRACE", 7)),
        ("SCMP_ACT_LOG", None, ("SCMP_ACT_LOG", None)),
        ("SCMP_ACT_NOTIFY", None, ("SCMP_ACT_NOTIFY", None)),
    ],
)
def test_evaluate_every_action(action: str, errno_ret: int | None, expected: tuple) -> None:
    entry: dict[str, object] = {"names": ["uname"], "action": action}
    if errno_ret is not None:
        entry["errnoRet"] = errno_ret
    p = _policy(entry, default="SCMP_ACT_ALLOW")
    assert pol.evaluate(p, "uname") == expected
    assert pol.evaluate(p, "getpid") == ("SCMP_ACT_ALLOW", None)
    assert pol.allowed(p, "uname") is (action in pol.PERMIT_ACTIONS)


def test_foreign_abi_needs_the_architecture() -> None:
    p = _policy({"names": ["read"], "action": "SCMP_ACT_ALLOW"})
    assert pol.evaluate(p, "read", arch="x86") == ("SCMP_ACT_KILL_PROCESS", None)
    q = _policy(
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"}, architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    )
    assert pol.evaluate(q, "read", arch="x86") == ("SCMP_ACT_ALLOW", None)


# ----------------------------------------------------------------------------- against the kernel

_CHILD = r"""
import ctypes, json, os, sys
import pyseccomp as s
spec = json.loads(sys.argv[1])
def act(a, e):
    return s.ALLOW if a == "SCMP_ACT_ALLOW" else s.ERRNO(e)
f = s.SyscallFilter(act(*spec["default"]))
for name, a, e, args in spec["rules"]:
    f.add_rule(act(a, e), name, *[s.Arg(i, getattr(s, op[9:]), v, v2) for i, op, v, v2 in args])
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
out = []
f.load()
for nr, args in spec["calls"]:
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_ulong(a) for a in args])
    out.append([r, ctypes.get_errno()])
os.write(1, json.dumps(out).encode())
"""

# Distinct errnos that getpriority/umask/getpgid never return on their own.
_E1, _E2, _E3 = errno.ENOTNAM, errno.EISNAM, errno.EREMOTEIO

KERNEL_POLICIES = [
    [  # overlapping rules on different arguments, different errnos
        {
            "names": ["getpriority"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": _E1,
            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}],
        },
        {
            "names": ["getpriority"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": _E2,
            "args": [{"index": 1, "value": 1000, "op": "SCMP_CMP_GT"}],
        },
        {
            "names": ["getpriority"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": _E3,
            "args": [
                {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 7, "op": "SCMP_CMP_EQ"},
            ],
        },
    ],
    [  # an ALLOW carve-out inside a broader ERRNO on another argument
        {
            "names": ["getpriority"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": _E1,
            "args": [{"index": 1, "value": 0xFF00, "valueTwo": 0x1200, "op": "SCMP_CMP_MASKED_EQ"}],
        },
        {
            "names": ["getpriority"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}],
        },
        {
            "names": ["umask"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": _E2,
            "args": [{"index": 0, "value": 0o777, "op": "SCMP_CMP_NE"}],
        },
    ],
    [  # unconditional rule next to conditional ones
        {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": _E1},
        {
            "names": ["getpriority"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": _E3,
            "args": [{"index": 1, "value": 5, "op": "SCMP_CMP_LE"}],
        },
        {
            "names": ["getpriority"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": _E2,
            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_GE"}],
        },
    ],
]
KERNEL_CALLS = (
    [("getpriority", (w, who)) for w in (0, 1, 2, 3) for who in (0, 5, 7, 1001, 0x1234, 0x12FF, 2**33)]
    + [("umask", (m,)) for m in (0o22, 0o777)]
    + [("getpgid", (0,))]
)


@pytest.mark.parametrize("entries", KERNEL_POLICIES, ids=["overlap", "carve-out", "unconditional"])
def test_evaluate_matches_the_kernel(entries: list[dict]) -> None:
    """Load the compiled rules as a real filter in a child process and make each call: the
    errno the kernel returns is the one evaluate() predicts."""
    p = _policy(*entries, default="SCMP_ACT_ALLOW")
    rules = [
        [r.name, r.action, r.errno_ret, [[a.index, a.op, a.value, a.value_two] for a in r.args]]
        for r in pol.effective_rules(p)
    ]
    spec = {
        "default": ["SCMP_ACT_ALLOW", None],
        "rules": rules,
        "calls": [[syscalls.number(name), list(args)] for name, args in KERNEL_CALLS],
    }
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(spec)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    seen = json.loads(res.stdout)
    for (name, args), (ret, err) in zip(KERNEL_CALLS, seen, strict=True):
        action, want = pol.evaluate(p, name, args)
        filtered = ret == -1 and err in (_E1, _E2, _E3)
        if action == "SCMP_ACT_ERRNO":
            assert filtered and err == want, (
                f"{name}{args}: kernel gave {ret}/{err}, evaluate {action}({want})"
            )
        else:
            assert not filtered, f"{name}{args}: kernel refused with errno {err}, evaluate said {action}"


# ----------------------------------------------------------------------------- merge / diff


def test_merge_union_stricter_wins_and_reports() -> None:
    a = pol.from_dict(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["@basic-io"], "action": "SCMP_ACT_ALLOW"},
                {
                    "names": ["socket"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 0, "value": "AF_UNIX", "op": "SCMP_CMP_EQ"}],
                },
            ],
        },
        source="a.json",
    )
    b = pol.from_dict(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["openat", "read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["write"], "action": "SCMP_ACT_KILL_PROCESS"},
            ],
        },
        source="b.json",
    )
    merged, report = pol.merge(a, b)
    assert len(report) == 1
    assert report[0].startswith(
        "write: a.json has SCMP_ACT_ALLOW, b.json has SCMP_ACT_KILL_PROCESS; SCMP_ACT_KILL_PROCESS wins"
    )
    assert pol.evaluate(merged, "write") == ("SCMP_ACT_KILL_PROCESS", None)
    for name in groups.expand("@basic-io") - {"write"} & set(syscalls.table()):
        assert pol.evaluate(merged, name) == ("SCMP_ACT_ALLOW", None), name
    assert pol.evaluate(merged, "openat") == ("SCMP_ACT_ALLOW", None)
    assert pol.evaluate(merged, "socket", (1,)) == ("SCMP_ACT_ALLOW", None)
    (with_args,) = [e for e in pol.to_dict(merged)["syscalls"] if "args" in e]
    assert with_args["args"][0]["value"] == "AF_UNIX"
    # merging is symmetric in outcome
    merged_ba, _ = pol.merge(b, a)
    assert set(pol.effective_rules(merged_ba)) == set(pol.effective_rules(merged))


def test_merge_keeps_groups_as_written_and_the_overrides_of_each_side() -> None:
    """B names ioctl explicitly, which A has through @system-service: the merged policy keeps
    A's group as written (B's explicit ioctl takes it out of the group), and members A overrode
    explicitly stay overridden."""
    a = pol.from_dict({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["@system-service"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES},
    ]}, source="a.json")
    b = pol.from_dict({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOTTY}]}, source="b.json")
    merged, report = pol.merge(a, b)
    assert report == ["ioctl: a.json has SCMP_ACT_ALLOW, b.json has SCMP_ACT_ERRNO(ENOTTY); "
                      "SCMP_ACT_ERRNO(ENOTTY) wins"]
    assert ["@system-service"] in [r.names for r in merged.syscalls]
    assert pol.evaluate(merged, "ioctl") == ("SCMP_ACT_ERRNO", errno.ENOTTY)
    assert pol.evaluate(merged, "mkdirat") == ("SCMP_ACT_ERRNO", errno.EACCES)
    assert pol.evaluate(merged, "openat") == ("SCMP_ACT_ALLOW", None)
    explicit_mkdir = [r for r in merged.syscalls if "mkdirat" in r.names]
    assert [r.action for r in explicit_mkdir] == ["SCMP_ACT_ERRNO"]


def test_merge_keeps_a_groups_treatment_of_a_name_the_other_side_restricts() -> None:
    """A restricts socket to AF_UNIX explicitly; B allows it through @system-service. In one
    policy A's explicit name would take socket away from B's group, so the merge names it
    explicitly for B too: the union still allows every socket, as B did."""
    a = pol.from_dict({"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": "AF_UNIX", "op": "SCMP_CMP_EQ"}]}]}, source="a.json")
    b = pol.from_dict({"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [
        {"names": ["@system-service"], "action": "SCMP_ACT_ALLOW"}]}, source="b.json")
    for merged, report in (pol.merge(a, b), pol.merge(b, a)):
        assert report == []
        assert pol.evaluate(merged, "socket", (2, 2)) == ("SCMP_ACT_ALLOW", None)
        assert pol.evaluate(merged, "openat") == ("SCMP_ACT_ALLOW", None)
        assert ["@system-service", "socket"] in [r.names for r in merged.syscalls]   # not written out


def test_merge_of_two_groups_that_disagree_names_the_member_explicitly() -> None:
    a = pol.from_dict({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["@mount"], "action": "SCMP_ACT_ALLOW"}]}, source="a.json")
    b = pol.from_dict({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["@privileged"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EROFS}]}, source="b.json")
    shared = sorted(groups.expand("@mount") & groups.expand("@privileged"))
    assert shared == ["chroot", "pivot_root"]
    merged, report = pol.merge(a, b)
    assert len(report) == len(shared)
    suffix = "(now named explicitly, which overrides @mount, @privileged)"
    assert all(line.endswith(suffix) for line in report)
    assert [r.names for r in merged.syscalls] == [["@mount"], ["@privileged", *shared]]
    for name in shared:
        assert pol.evaluate(merged, name) == ("SCMP_ACT_ERRNO", errno.EROFS), name
    assert pol.evaluate(merged, "mount") == ("SCMP_ACT_ALLOW", None)
    assert pol.evaluate(merged, "acct") == ("SCMP_ACT_ERRNO", errno.EROFS)


def test_merge_with_itself_changes_nothing(moby_profile: Path) -> None:
    moby = pol.load(moby_profile)
    merged, report = pol.merge(moby, moby)
    assert report == []
    for caps in (None, ALL_CAPS):
        assert pol.effective_rules(merged, caps=caps) == pol.effective_rules(moby, caps=caps)


def test_diff() -> None:
    a = _policy({"names": ["read", "write", "ptrace"], "action": "SCMP_ACT_ALLOW"})
    b = _policy(
        {"names": ["read", "openat"], "action": "SCMP_ACT_ALLOW"},
        {
            "names": ["write"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}],
        },
    )
    d = pol.diff(a, b)
    assert d.only_in_a == ["ptrace"] and d.only_in_b == ["openat"]
    assert d.changed == [("write", "SCMP_ACT_ALLOW", "SCMP_ACT_ALLOW if a0 == 1")]
    assert not d.default_changed and not d.same
    assert pol.diff(a, a).same


# ----------------------------------------------------------------------------- CLI


def test_cli_check_typo_prints_path_and_suggestion(run_cli, tmp_path: Path) -> None:
    bad = tmp_path / "typo.json"
    bad.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["read", "opne"], "action": "SCMP_ACT_ALLOW"}],
            }
        )
    )
    res = run_cli("policy", "check", str(bad))
    assert res.returncode == 2
    assert (
        res.stderr
        == f'tinyjail: error: {bad}: $.syscalls[0].names[1]: unknown syscall "opne" (did you mean "open"?)\n'
    )
    assert "Traceback" not in res.stderr + res.stdout


def test_cli_check_ok_and_bad_files(run_cli, tmp_path: Path, moby_profile: Path) -> None:
    res = run_cli("policy", "check", str(moby_profile))
    assert res.returncode == 0, res.stderr
    assert f"{moby_profile}: ok" in res.stdout
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\x00\x01\x02")
    res = run_cli("policy", "check", str(binary), str(tmp_path / "missing.json"), str(tmp_path))
    assert res.returncode == 2
    lines = res.stderr.splitlines()
    assert len(lines) == 3 and all(line.startswith("tinyjail: error: ") for line in lines)
    assert "binary file" in lines[0] and "no such file" in lines[1] and "is a directory" in lines[2]


def test_cli_show_marks_groups_danger_and_symbols(run_cli, tmp_path: Path) -> None:
    p = tmp_path / "p.json"
    members = sorted(groups.expand("@file-system") & set(syscalls.table()))
    p.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {"names": [*members, "ptrace"], "action": "SCMP_ACT_ALLOW"},
                    {
                        "names": ["socket"],
                        "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}],
                    },
                ],
            }
        )
    )
    res = run_cli("policy", "show", str(p), env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    assert "@file-system" in res.stdout and "openat" not in res.stdout
    assert "ptrace!" in res.stdout and "dangerous syscalls that can pass" in res.stdout
    assert "a0 == AF_UNIX" in res.stdout


def test_cli_show_counts_only_what_can_pass(run_cli, tmp_path: Path) -> None:
    """A dangerous member named explicitly with a denying action no longer counts as passing
    through its group; io_uring through a group is flagged as refused by tinyjail run only."""
    p = tmp_path / "p.json"
    base = {"defaultAction": "SCMP_ACT_KILL_PROCESS",
            "syscalls": [{"names": ["@system-service"], "action": "SCMP_ACT_ALLOW"}]}
    p.write_text(json.dumps(base))
    env = {"COLUMNS": "400", "PATH": "/usr/bin:/bin"}
    before = run_cli("policy", "show", str(p), env=env).stdout
    base["syscalls"].append({"names": ["keyctl", "setuid"], "action": "SCMP_ACT_ERRNO"})
    p.write_text(json.dumps(base))
    after = run_cli("policy", "show", str(p), env=env).stdout

    def count(out: str) -> int:
        return int(out.split("@system-service (!", 1)[1].split(")", 1)[0])

    passing = before.split("dangerous syscalls that can pass:", 1)[1]
    assert "  keyctl:" in passing and "  setuid:" in passing
    assert count(after) == count(before) - 2
    tail = after.split("dangerous syscalls that can pass:", 1)[1]
    assert "  keyctl:" not in tail and "  setuid:" not in tail
    assert "io_uring_setup" in tail and "tinyjail run refuses it unless a rule names it" in tail


def test_cli_merge_refuses_to_overwrite(run_cli, tmp_path: Path) -> None:
    a, b, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "out.json"
    a.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}],
            }
        )
    )
    b.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["write"], "action": "SCMP_ACT_KILL_PROCESS"}],
            }
        )
    )
    out.write_text("precious")
    res = run_cli("policy", "merge", str(a), str(b), "-o", str(out))
    assert res.returncode == 2 and "already exists; use --force" in res.stderr
    assert out.read_text() == "precious"
    res = run_cli("policy", "merge", str(a), str(b), "-o", str(out), "--force")
    assert res.returncode == 0, res.stderr
    assert "conflict: write:" in res.stderr
    merged = pol.load(out)
    assert pol.evaluate(merged, "write") == ("SCMP_ACT_KILL_PROCESS", None)
    assert pol.evaluate(merged, "read") == ("SCMP_ACT_ALLOW", None)


def test_cli_diff_exit_codes(run_cli, tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(
        json.dumps(
            {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}
        )
    )
    b.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}],
            }
        )
    )
    res = run_cli("policy", "diff", str(a), str(a))
    assert res.returncode == 0 and "no differences" in res.stdout
    res = run_cli("policy", "diff", str(a), str(b))
    assert (
        res.returncode == 1
        and f"+ write: SCMP_ACT_ALLOW  (only in {b}; {a} gives SCMP_ACT_ERRNO(EPERM))" in res.stdout
    )
    res = run_cli("policy", "diff", str(a), str(tmp_path / "nope.json"))
    assert res.returncode == 2 and "no such file" in res.stderr
