"""Argument filtering for real: each of the seven comparisons on each argument 0..5, AND inside a
rule, OR across rules. The sys helper sets exact register values; a matching rule answers with a
distinctive errno, everything else is allowed (default ALLOW)."""

from __future__ import annotations

import operator
from collections.abc import Callable

import pytest
from jailtools import call, nr, parse_calls

pytestmark = pytest.mark.root

# One harmless syscall per argument index, so one policy can test an op on all six at once.
PROBES = ("getpid", "getppid", "getuid", "geteuid", "getgid", "getegid")
MARK = 100  # errno answered by the rule on argument i is MARK + i

V = 0x1_0000_0010  # has bits in both 32-bit halves: libseccomp compares hi and lo words
MASK = 0xFFFF_0000_0000_00F0
DATUM = 0x1234_0000_0000_0030
VALUES = [0, V - 1, V, V + 1, 0x10, V | 0x8000_0000, 0xFFFF_FFFF_FFFF_FFFF]
MASK_VALUES = [DATUM, DATUM | 0xF, DATUM ^ 0x10, 0x30, DATUM | 0x0000_0001_0000_0000, 0]

OPS: dict[str, Callable[[int], bool]] = {
    "SCMP_CMP_NE": lambda x: operator.ne(x, V),
    "SCMP_CMP_LT": lambda x: x < V,
    "SCMP_CMP_LE": lambda x: x <= V,
    "SCMP_CMP_EQ": lambda x: x == V,
    "SCMP_CMP_GE": lambda x: x >= V,
    "SCMP_CMP_GT": lambda x: x > V,
    "SCMP_CMP_MASKED_EQ": lambda x: (x & MASK) == DATUM,
}


def _arg(index: int, op: str) -> dict[str, object]:
    if op == "SCMP_CMP_MASKED_EQ":
        return {"index": index, "value": MASK, "valueTwo": DATUM, "op": op}
    return {"index": index, "value": V, "op": op}


@pytest.mark.parametrize("op", list(OPS))
def test_each_comparison_on_each_argument(op: str, helpers, policy_file, jail) -> None:
    rules = [
        {"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": MARK + i, "args": [_arg(i, op)]}
        for i, name in enumerate(PROBES)
    ]
    policy = policy_file({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
    values = MASK_VALUES if op == "SCMP_CMP_MASKED_EQ" else VALUES
    calls, expected = [], []
    for i, name in enumerate(PROBES):
        for x in values:
            regs = [0] * 6
            regs[i] = x
            calls.append(call(name, *regs))
            expected.append((nr(name), MARK + i if OPS[op](x) else 0))
    proc = jail(policy, helpers["sys"], *calls)
    assert proc.returncode == 0, proc.stderr
    seen = [(n, err) for n, _ret, err in parse_calls(proc.stdout)]
    assert seen == expected
    # both outcomes occur for every op, so the test can tell a wrong comparison from no filter
    assert {e for _, e in expected} >= {0, MARK}


def test_conditions_in_one_rule_are_and(helpers, policy_file, jail) -> None:
    rule = {
        "names": ["getpid"],
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": 71,
        "args": [
            {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
            {"index": 3, "value": 2, "op": "SCMP_CMP_EQ"},
        ],
    }
    policy = policy_file({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
    proc = jail(
        policy,
        helpers["sys"],
        call("getpid", 1, 0, 0, 2),
        call("getpid", 1, 0, 0, 3),
        call("getpid", 0, 0, 0, 2),
        call("getpid", 1, 9, 9, 2, 9, 9),
    )
    assert [e for _, _, e in parse_calls(proc.stdout)] == [71, 0, 0, 71]


def test_rules_for_one_syscall_are_or(helpers, policy_file, jail) -> None:
    rules = [
        {
            "names": ["getpid"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 72,
            "args": [{"index": 0, "value": 5, "op": "SCMP_CMP_EQ"}],
        },
        {
            "names": ["getpid"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 73,
            "args": [{"index": 1, "value": 6, "op": "SCMP_CMP_EQ"}],
        },
    ]
    policy = policy_file({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
    proc = jail(policy, helpers["sys"], call("getpid", 5), call("getpid", 0, 6), call("getpid", 4, 7))
    assert [e for _, _, e in parse_calls(proc.stdout)] == [72, 73, 0]


def test_allowlist_with_argument_rule_kills_other_values(helpers, policy_file, jail) -> None:
    """Under a deny default, an ALLOW with conditions lets only matching calls through."""
    proc = jail(policy_file({"defaultAction": "SCMP_ACT_ALLOW"}), helpers["sys"], call("getpid"))
    assert proc.returncode == 0
    rules = [
        {
            "names": ["getpid"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 74,
            "args": [{"index": 2, "value": 0x0F, "valueTwo": 0x0A, "op": "SCMP_CMP_MASKED_EQ"}],
        },
        {
            "names": ["getppid"],
            "action": "SCMP_ACT_KILL_PROCESS",
            "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_GT"}],
        },
    ]
    policy = policy_file({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
    proc = jail(
        policy,
        helpers["sys"],
        call("getpid", 0, 0, 0x1A),
        call("getpid", 0, 0, 0x1B),
        call("getppid", 3),
        call("getppid", 4),
        call("getpid"),
    )
    assert [e for _, _, e in parse_calls(proc.stdout)] == [74, 0, 0]
    assert proc.returncode == 159
    assert f"getppid (syscall {nr('getppid')} on x86_64" in proc.stderr
