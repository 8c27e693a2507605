"""Run a command under a seccomp filter: fork, load the filter in the child, exec, wait.

Everything that can fail is done in the parent before fork (building and generating the
filter, resolving CMD, preparing execve's arrays), so a broken policy never runs anything
and the child only calls ``seccomp_load`` and ``execve``. libseccomp's load sets
no_new_privs first (SCMP_FLTATR_CTL_NNP, on by default and set explicitly), which the kernel
requires of an unprivileged filter and which stops a setuid CMD from gaining privileges.

The filter covers ``execve`` itself and everything CMD does after it (the dynamic loader's
brk/mmap/openat... included), so a policy must allow CMD's start-up too.

Signals: SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to tinyjail are forwarded to CMD. The ones
a terminal sends to the whole foreground group (Ctrl-C, si_code SI_KERNEL) already reached
CMD and are not sent twice. tinyjail exits with CMD's status, 128+N when a signal N killed it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tinyjail.errors import BackendUnavailable, EnforceError
from tinyjail.policy import Policy

from . import _libseccomp
from .complain import ComplainReport, build_report, policy_logged_names
from .family import ProcessFamily
from .launch import FORWARDED, SI_KERNEL, Execve, exec_child, exit_status, read_status, resolve_command

EXIT_SIGSYS = 128 + signal.SIGSYS

STARTUP_SYSCALLS = frozenset({
    "execve", "execveat", "brk", "arch_prctl", "mmap", "mprotect", "munmap", "openat", "open", "read",
    "pread64", "close", "fstat", "newfstatat", "stat", "access", "faccessat", "faccessat2", "set_tid_address",
    "set_robust_list", "rseq", "prlimit64", "getrandom", "readlink", "uname",
})
"""What a dynamically linked program calls before main (ld.so and libc start-up)."""

LOADER_SYSCALLS = ("mmap", "arch_prctl", "openat", "read", "pread64", "close", "newfstatat", "mprotect")
"""The start-up calls whose refusal stops ld.so before main (measured on Debian 12's glibc: mmap ->
SIGSEGV, the others -> exit 127). Refused with an errno they leave no audit record to name."""

STARTUP_HINT = ("the filter covers the loader's own start-up syscalls (ld.so and libc: execve, brk, mmap, "
                "openat, ...), so a policy must allow them")

_LOADER_DEATHS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGABRT})
_ALLOWING = frozenset({"SCMP_ACT_ALLOW", "SCMP_ACT_LOG"})


@dataclass
class Denial:
    """A call the filter refused with a kill or trap, from the kernel's audit record."""

    name: str
    nr: int
    arch: str
    pid: int
    ip: int
    action: str
    before_exec: bool
    comm: str = ""

    def json_rule(self) -> str:
        """The line to add to ``syscalls`` (or the architecture to list) so the policy allows it."""
        if self.arch != "x86_64":
            from tinyjail.syscalls import ARCHES

            oci = ARCHES[self.arch].oci if self.arch in ARCHES else self.arch
            return f'"architectures": ["SCMP_ARCH_X86_64", "{oci}"]'
        return json.dumps({"names": [self.name], "action": "SCMP_ACT_ALLOW"})


@dataclass
class RunResult:
    """What happened to CMD. ``exit_status`` is what `tinyjail run` exits with."""

    exit_status: int
    wait_status: int
    signal: int | None
    execed: bool
    denials: list[Denial] = field(default_factory=list)
    report: ComplainReport | None = None
    messages: list[str] = field(default_factory=list)   # lines for stderr, already worded
    seconds: float = 0.0


def _open_audit() -> Any:
    """The kernel audit reader (tinyjail.audit), or a BackendUnavailable explaining why not."""
    try:
        from tinyjail.audit import SeccompAuditReader
    except ImportError as err:  # the module is part of tinyjail; a broken install
        raise BackendUnavailable(f"tinyjail.audit cannot be imported: {err}") from err
    reader = SeccompAuditReader()
    reader.__enter__()
    return reader


def apply_in_child(filt: Any) -> None:
    """Load a filter built by `build_filter` in the current (forked, about to exec) process.

    For other launchers (the tracer's recording under a policy). no_new_privs is set by
    libseccomp first. Raises EnforceError; the caller must then not exec.
    """
    try:
        filt.load()
    except OSError as err:
        raise EnforceError(f"the kernel refused to load the filter ({err.strerror or err})") from err


def preexec_fn(policy: Policy, mode: str = "enforce") -> Callable[[], None]:
    """A ``subprocess.Popen(preexec_fn=...)`` that loads ``policy``'s filter; built now, in the parent,
    so a bad policy fails before anything is started."""
    filt = _libseccomp.build_filter(policy, mode)
    return lambda: apply_in_child(filt)


def run(
    policy: Policy,
    argv: Sequence[str],
    mode: str = "enforce",
    *,
    env: dict[str, str] | None = None,
    need_audit: bool | None = None,
    before_start: Callable[[], None] | None = None,
) -> RunResult:
    """Run ``argv`` under ``policy`` and wait for it; see the module docstring.

    Raises EnforceError (exit 125, CMD never ran) when the filter cannot be built or loaded,
    CommandNotFound when CMD is missing, BackendUnavailable when complain mode cannot read
    audit records.
    """
    filt = _libseccomp.build_filter(policy, mode)           # fail closed before anything runs
    path = resolve_command(argv)
    execve = Execve(path, argv, env)
    if before_start is not None:
        before_start()      # the filter is built and CMD found: what is said now precedes CMD
    if need_audit is None:
        need_audit = mode == "complain"

    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    watched = {*FORWARDED, signal.SIGCHLD}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)   # helper threads inherit it
    family = ProcessFamily()
    reader: Any = None
    messages: list[str] = []
    try:
        family.start()
        try:
            reader = _open_audit()
        except BackendUnavailable as err:
            if need_audit:
                family.close()
                raise
            messages.append(f"note: {err} (a denied syscall cannot be named)")
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            exec_child(filt, execve, status_w, old_mask)
        family.set_root(pid)
        os.close(status_w)
        status_w = -1
        wait_status = _wait(pid)
        seconds = time.monotonic() - started
        failure = read_status(status_r)
    finally:
        if status_w >= 0:
            os.close(status_w)
        os.close(status_r)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    records: list[Any] = []
    lost = 0
    try:
        if failure.startswith(b"L"):
            eno = int(failure[1:] or 0)
            why = os.strerror(eno) if eno else "internal error in the child"
            src = policy.source or "<policy>"
            raise EnforceError(f"{src}: the kernel refused to load the filter ({why}); {argv[0]} was not run")
        if reader is not None:
            sigsys = os.WIFSIGNALED(wait_status) and os.WTERMSIG(wait_status) == signal.SIGSYS
            if sigsys:
                _await_kill_record(reader, family)
            if sigsys or mode == "complain" or not family.complete or family.killed_by(signal.SIGSYS):
                reader.close()                 # drains every record queued so far
            else:
                # Nothing was killed by seccomp: no record is needed, so do not wait for the drain.
                threading.Thread(target=reader.close, name="tinyjail-audit-close", daemon=True).start()
            records = list(reader.records())
            lost = int(getattr(reader, "lost", 0))
            messages.extend(f"note: {w}" for w in getattr(reader, "warnings", []))
    finally:
        family.close()

    members = family.members()
    mine = [r for r in records if r.pid in members]
    execed = family.execed(pid) if family.complete else not failure
    if not family.complete and family.error and mode == "complain":
        messages.append(f"note: {family.error}")
    result = RunResult(exit_status(wait_status), wait_status,
                       os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else None, execed,
                       messages=messages, seconds=seconds)
    if failure.startswith(b"E"):
        eno = int(failure[1:] or 0)
        result.exit_status = 127 if eno == errno.ENOENT else 126
        result.messages.append(
            f"cannot execute {path}: {os.strerror(eno)}"
            + (" (the filter refused execve: the policy must allow execve, tinyjail execs CMD under it)"
               if eno in (errno.EPERM, errno.EACCES, errno.ENOSYS) else "")
        )
    elif not failure and mode == "enforce" and result.signal != signal.SIGSYS:
        result.messages.extend(_silent_start_messages(policy, result, path, argv[0], family.complete))
    result.denials = _denials(mine, pid, family, execed)
    if result.signal == signal.SIGSYS:
        result.messages.extend(_sigsys_messages(result, argv[0]))
    else:
        for d in result.denials:
            result.messages.append(
                f"note: process {d.pid} ({d.comm}) was stopped by seccomp ({d.action}) at {d.name} "
                f"({d.arch} syscall {d.nr}); to allow it: {d.json_rule()}"
            )
    if mode == "complain":
        result.report = build_report(mine, argv, policy, policy_logged_names(policy), result.exit_status,
                                     family_complete=family.complete)
        result.report.lost = lost
    return result


def _wait(pid: int) -> int:
    """Wait for ``pid`` while forwarding signals (all watched signals are blocked here)."""
    watched = {*FORWARDED, signal.SIGCHLD}
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return status
        info = signal.sigwaitinfo(watched)
        if info.si_signo == signal.SIGCHLD:
            continue
        if info.si_code == SI_KERNEL:   # from the terminal to the whole group: CMD has it already
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, info.si_signo)




_KILL_ACTIONS = ("kill_process", "kill_thread", "trap")


def _await_kill_record(reader: Any, family: ProcessFamily, timeout: float = 2.0) -> None:
    """The audit record of a kill can trail the child's death by a few ms; wait for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        members = family.members()
        if any(r.action in _KILL_ACTIONS and r.pid in members for r in reader.records()):
            return
        time.sleep(0.01)


def _denials(records: list[Any], root: int, family: ProcessFamily, execed: bool) -> list[Denial]:
    out = []
    for r in records:
        if r.action in _KILL_ACTIONS:
            before = r.pid == root and (not execed or r.name in ("execve", "execveat"))
            out.append(Denial(r.name, r.nr, r.arch, r.pid, r.ip, r.action, before, r.comm))
    return out


def _sigsys_messages(result: RunResult, cmd: str) -> list[str]:
    if not result.denials:
        return [f"{cmd} was killed by SIGSYS (a seccomp kill or trap), but no audit record names the syscall"]
    d = result.denials[-1]
    nr = d.nr & ~0x40000000 if d.arch == "x32" else d.nr
    lines = [f"{cmd} was killed by seccomp: {d.name} (syscall {nr} on {d.arch}, pid {d.pid}, "
             f"ip {d.ip:#x}) is not allowed by the policy ({d.action})"]
    if d.arch != "x86_64":
        lines.append(f"the call used the {d.arch} ABI, which the policy does not list; "
                     f"to allow it add: {d.json_rule()}")
    else:
        lines.append(f"to allow it, add to \"syscalls\": {d.json_rule()}")
    if d.before_exec:
        lines.append(f"{cmd} never started: the filter is loaded before execve, so the policy must allow "
                     "execve and the program's start-up syscalls")
    elif d.name in STARTUP_SYSCALLS and d.pid == result.denials[0].pid:
        lines.append(f"note: {STARTUP_HINT}")
    return lines


def _silent_start_messages(policy: Policy, result: RunResult, path: str, cmd: str, known: bool) -> list[str]:
    """Why CMD died at start-up without a word, when the policy refused with an errno (no audit record).

    The child's own report of a failed execve is a write() the filter may refuse too, and ld.so's
    "error while loading shared libraries" likewise; `tinyjail.policy.evaluate` tells, without
    running anything, whether execve or a loader call is what the policy refuses. ``known``: the
    proc connector followed CMD, so ``result.execed`` is exact."""
    crashed = result.signal in _LOADER_DEATHS
    if not (crashed or result.exit_status in (126, 127) or (known and not result.execed)):
        return []
    from tinyjail.policy import evaluate

    action = evaluate(policy, "execve")[0]
    if action not in _ALLOWING and not (known and result.execed):
        return [f"cannot execute {path}: the policy refuses execve ({action}); the filter is loaded before "
                f"execve, so {cmd} never started: the policy must allow execve",
                f"note: {STARTUP_HINT}"]
    if not (crashed or result.exit_status == 127) or (known and not result.execed):
        return []
    refused = [n for n in LOADER_SYSCALLS if evaluate(policy, n)[0] not in _ALLOWING]
    if not refused:
        return []
    how = (f"was killed by {signal.Signals(result.signal).name}" if result.signal
           else f"exited {result.exit_status}")
    return [f"note: {cmd} {how}; the policy refuses {', '.join(refused)}, which the program's start-up "
            f"needs: {STARTUP_HINT}"]
