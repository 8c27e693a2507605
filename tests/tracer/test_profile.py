"""Profile generation: the union of what was recorded, deny-by-default, never narrower than a trace."""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthtrace import AT_FDCWD, Call, build, ls_like
from tinyjail.tracer.profile import INFERRED_SYSCALLS, generate, native_oci_arch, verify

from tinyjail import policy as P
from tinyjail import syscalls
from tinyjail.errors import TraceError
from tinyjail.symbols import parse
from tinyjail.timeline import Trace, save


def _denied(policy: P.Policy, name: str, *args: int) -> bool:
    action, _ = P.evaluate(policy, name, tuple(args) + (0,) * (6 - len(args)))
    return action in P.DENY_ACTIONS


def _all_names(policy: P.Policy) -> set[str]:
    return {n for rule in policy.syscalls for n in rule.names}


def assert_every_event_allowed(policy: P.Policy, trace: Trace) -> None:
    """Each row of the events table, evaluated one by one (not deduplicated)."""
    ev = trace.events
    cols = [f"arg{i}" for i in range(6)]
    for name, *args in zip(ev["name"].astype(str), *(ev[c] for c in cols), strict=True):
        action, ret = P.evaluate(policy, name, tuple(int(a) for a in args))
        assert action not in P.DENY_ACTIONS, f"{name}{tuple(hex(int(a)) for a in args)} -> {action} {ret}"


def second_trace() -> Trace:
    return build(
        [
            Call(
                "openat",
                [AT_FDCWD, 0x1000, "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC", 0o644],
                ret=3,
                path="/tmp/x",
            ),
            Call("fsync", [3]),
            Call("rename", [0x1000, 0x2000], path="/tmp/x"),
            Call("ioctl", [0, "FIONREAD", 0x3000], ret=0),
        ],
        command="cp",
    )


def test_union_of_traces_deny_by_default() -> None:
    a, b = ls_like(), second_trace()
    pol = generate([a, b])
    seen = set(a.events["name"].astype(str)) | set(b.events["name"].astype(str))
    assert _all_names(pol) == seen | {"execve"}
    assert pol.default_action == "SCMP_ACT_ERRNO" and pol.default_errno_ret == errno.EPERM
    assert pol.architectures == [native_oci_arch()] == ["SCMP_ARCH_X86_64"]
    assert_every_event_allowed(pol, a)
    assert_every_event_allowed(pol, b)
    assert verify(pol, [a, b]) == []
    # what nobody did falls to the default action, errno EPERM
    for never in ("ptrace", "mount", "bpf", "init_module", "kexec_load", "unshare"):
        assert P.evaluate(pol, never) == ("SCMP_ACT_ERRNO", errno.EPERM)
    # the command's own execve is allowed although the trace starts after it
    assert not _denied(pol, "execve")


def test_default_kill() -> None:
    pol = generate([ls_like()], default="kill")
    assert pol.default_action == "SCMP_ACT_KILL_PROCESS" and pol.default_errno_ret is None
    assert P.evaluate(pol, "ptrace")[0] == "SCMP_ACT_KILL_PROCESS"
    with pytest.raises(Exception, match="--default"):
        generate([ls_like()], default="allow")


def test_argument_rules_are_narrow_but_cover_what_was_seen() -> None:
    pol = generate([ls_like()])
    s = lambda nm, i, text: parse(nm, i, text)  # noqa: E731
    af_unix, af_inet, af_netlink = (s("socket", 0, f) for f in ("AF_UNIX", "AF_INET", "AF_NETLINK"))
    stream, dgram, raw = (s("socket", 1, t) for t in ("SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW"))
    cloexec = s("socket", 1, "SOCK_CLOEXEC")
    # seen: AF_UNIX stream, AF_INET dgram; flags and protocol do not matter
    assert not _denied(pol, "socket", af_unix, stream)
    assert not _denied(pol, "socket", af_unix, stream | cloexec, 0)
    assert not _denied(pol, "socket", af_inet, dgram, 17)
    assert not _denied(pol, "socket", af_unix | (0xDEAD << 32), stream)  # upper half of an int is ignored
    assert _denied(pol, "socket", af_netlink, raw)
    assert _denied(pol, "socket", af_unix, dgram)
    assert _denied(pol, "socket", af_inet, raw)
    # clone: threads/forks yes, namespaces no
    fork = s("clone", 0, "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD")
    thread = s("clone", 0, "CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM")
    assert not _denied(pol, "clone", fork) and not _denied(pol, "clone", thread)
    for ns in ("CLONE_NEWUSER", "CLONE_NEWNS", "CLONE_NEWNET", "CLONE_NEWPID"):
        assert _denied(pol, "clone", fork | s("clone", 0, ns)), ns
    # ioctl: the requests seen, on any fd; TIOCSTI (type into a terminal) not
    assert not _denied(pol, "ioctl", 7, s("ioctl", 1, "TCGETS"))
    assert _denied(pol, "ioctl", 1, s("ioctl", 1, "TIOCSTI"))
    # prctl options and personality values seen, nothing else
    assert not _denied(pol, "prctl", s("prctl", 0, "PR_SET_NAME"), 0x1234)
    assert _denied(pol, "prctl", s("prctl", 0, "PR_SET_SECCOMP"))
    assert not _denied(pol, "personality", 0xFFFFFFFF)
    assert _denied(pol, "personality", s("personality", 0, "READ_IMPLIES_EXEC"))
    # other syscalls are allowed whatever their arguments
    assert not _denied(pol, "openat", 12345, 0, 0o777)


def test_clone_with_namespaces_seen_stays_unrestricted() -> None:
    newns = "CLONE_NEWUSER|CLONE_NEWNS|SIGCHLD"
    trace = build([Call("clone", [newns, 0, 0, 0, 0], ret=7), Call("clone", ["SIGCHLD"], ret=8)])
    pol = generate([trace])
    (rule,) = [r for r in pol.syscalls if "clone" in r.names]
    assert rule.args == []
    assert_every_event_allowed(pol, trace)


def test_no_arg_rules_option() -> None:
    pol = generate([ls_like()], infer_args=False)
    assert all(not r.args for r in pol.syscalls)
    assert not _denied(pol, "socket", parse("socket", 0, "AF_NETLINK"), 3)


def test_lossy_trace_is_refused_unless_allowed() -> None:
    lossy = build([Call("getpid", ret=1)], dropped=17)
    with pytest.raises(TraceError) as info:
        generate([ls_like(), lossy])
    message = str(info.value)
    assert "\n" not in message and "17 events dropped" in message and "--allow-lossy" in message
    pol = generate([lossy], allow_lossy=True)
    assert "getpid" in _all_names(pol)


def test_syscalls_unknown_to_libseccomp() -> None:
    unknown_nr = next(n for n in range(400, 600) if syscalls.name(n).startswith("syscall_"))
    trace = build([Call("getpid", ret=1)])
    trace.events = trace.events.astype({"name": "string"})
    extra = trace.events.iloc[[0]].copy()
    extra["nr"], extra["name"] = unknown_nr, None  # the recorder leaves name missing or syscall_NNN
    import pandas as pd

    from tinyjail.timeline import EVENT_COLUMNS, conform

    trace.events = conform(pd.concat([trace.events, extra], ignore_index=True), EVENT_COLUMNS)
    with pytest.raises(TraceError, match=f"syscall_{unknown_nr}.*--allow-unknown"):
        generate([trace])
    pol = generate([trace], allow_unknown=True)
    assert _all_names(pol) == {"getpid", "execve"}
    assert any("unknown to libseccomp" in line for line in verify(pol, [trace]))


def test_json_round_trip_keeps_every_call_allowed(tmp_path: Path) -> None:
    trace = ls_like()
    pol = generate([trace])
    text = P.dumps(pol)
    obj = json.loads(text)
    assert obj["defaultAction"] == "SCMP_ACT_ERRNO" and obj["defaultErrnoRet"] == 1
    assert obj["architectures"] == ["SCMP_ARCH_X86_64"]
    masked = [a for r in obj["syscalls"] for a in r.get("args", [])]
    assert masked and all(a["op"] == "SCMP_CMP_MASKED_EQ" and "valueTwo" in a for a in masked)
    again = P.loads(text)
    assert_every_event_allowed(again, trace)
    assert _denied(again, "socket", parse("socket", 0, "AF_NETLINK"), 3)


# --- property: never narrower than what was seen --------------------------------------------------

_NAMES = sorted(n for n in syscalls.table("x86_64") if n not in ("execve",))
_U64 = st.one_of(st.integers(0, 64), st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1))


@st.composite
def _calls(draw: Callable) -> list[Call]:
    n = draw(st.integers(1, 25))
    out = []
    for _ in range(n):
        name = draw(st.one_of(st.sampled_from(INFERRED_SYSCALLS), st.sampled_from(_NAMES)))
        args = draw(st.lists(_U64, min_size=6, max_size=6))
        out.append(
            Call(name, args, pid=draw(st.sampled_from([10, 11])), ret=draw(st.sampled_from([0, 3, -1, -2])))
        )
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=_calls(), other=st.sampled_from(_NAMES), kill=st.booleans())
def test_property_every_recorded_call_is_allowed(calls: list[Call], other: str, kill: bool) -> None:
    trace = build(calls)
    pol = generate([trace], default="kill" if kill else "errno")
    assert_every_event_allowed(pol, trace)
    assert verify(pol, [trace]) == []
    if other not in {c.name for c in calls}:
        expected = ("SCMP_ACT_KILL_PROCESS", None) if kill else ("SCMP_ACT_ERRNO", errno.EPERM)
        assert P.evaluate(pol, other) == expected


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_writes_profile_and_refuses_to_overwrite(tmp_path: Path, run_cli: Callable) -> None:
    tdir = save(ls_like(), tmp_path / "ls.trace")
    out = tmp_path / "ls.json"
    done = run_cli("profile", str(tdir), "-o", str(out))
    assert done.returncode == 0, done.stderr
    pol = P.load(out)
    assert_every_event_allowed(pol, ls_like())
    assert "checked: all 24 recorded calls" in done.stderr
    before = out.read_text()
    again = run_cli("profile", str(tdir), "-o", str(out), "--default", "kill")
    assert again.returncode == 2 and out.read_text() == before
    assert (
        again.stderr.count("\n") == 1
        and "tinyjail: error:" in again.stderr
        and "Traceback" not in again.stderr
    )
    forced = run_cli("profile", str(tdir), "-o", str(out), "--default", "kill", "--force")
    assert forced.returncode == 0 and P.load(out).default_action == "SCMP_ACT_KILL_PROCESS"


def test_cli_lossy_and_missing_trace(tmp_path: Path, run_cli: Callable) -> None:
    tdir = save(build([Call("getpid", ret=1)], dropped=3), tmp_path / "lossy")
    done = run_cli("profile", str(tdir), "-o", str(tmp_path / "p.json"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--allow-lossy" in done.stderr
    assert not (tmp_path / "p.json").exists()
    ok = run_cli("profile", str(tdir), "-o", "-", "--allow-lossy")
    assert ok.returncode == 0 and "getpid" in json.loads(ok.stdout)["syscalls"][0]["names"]
    assert "lossy" in ok.stderr
    missing = run_cli("profile", str(tmp_path / "nope"), "-o", str(tmp_path / "p.json"))
    assert missing.returncode == 2 and "not a trace directory" in missing.stderr


def test_clone3_is_allowed_as_seen_and_flagged() -> None:
    trace = build([Call("clone3", [0x7FFD_0000, 88], ret=9), Call("clone", ["SIGCHLD"], ret=10)])
    pol = generate([trace])
    (own,) = [r for r in pol.syscalls if r.names == ["clone3"]]
    assert own.action == "SCMP_ACT_ALLOW" and not own.args and "cannot read" in (own.comment or "")
    assert_every_event_allowed(pol, trace)
    assert _denied(pol, "clone", parse("clone", 0, "CLONE_NEWUSER|SIGCHLD"))
