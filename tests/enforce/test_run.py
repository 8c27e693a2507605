"""`tinyjail run` for real: every action type, exit statuses, signals, stdin/stdout, moby's profile,
the start-up message, and that `run` stays free of pandas/bcc/dash."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from jailtools import call, nr, parse_calls

from tinyjail import syscalls
from tinyjail.audit import SeccompAuditReader

pytestmark = pytest.mark.root

ALLOW_ALL = {"defaultAction": "SCMP_ACT_ALLOW"}


def test_allow_runs_the_command_with_its_stdio_and_status(policy_file, jail) -> None:
    proc = jail(
        policy_file(ALLOW_ALL), "/bin/sh", "-c", "read x; echo got:$x; echo err >&2; exit 7", input="hello\n"
    )
    assert proc.stdout == "got:hello\n"
    assert proc.stderr == "err\n"
    assert proc.returncode == 7


def test_errno_action_value_reaches_the_child(helpers, policy_file, jail) -> None:
    policy = policy_file(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV},
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"},
            ],
        }
    )
    proc = jail(policy, helpers["sys"], call("getpid"), call("getppid"), call("getuid"))
    assert proc.returncode == 0
    got = parse_calls(proc.stdout)
    assert [(n, r, e) for n, r, e in got[:2]] == [
        (nr("getpid"), -1, errno.EXDEV),
        (nr("getppid"), -1, errno.EPERM),
    ]
    assert got[2][1] == os.getuid() and got[2][2] == 0


def test_kill_process_exits_159_naming_the_syscall_and_the_rule_to_add(policy_file, jail, tmp_path) -> None:
    policy = policy_file(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}],
        }
    )
    target = tmp_path / "d"
    proc = jail(policy, "/bin/mkdir", str(target))
    assert proc.returncode == 159
    assert not target.exists()
    assert f"mkdir (syscall {nr('mkdir')} on x86_64" in proc.stderr
    assert '{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW"}' in proc.stderr


def test_default_kill_means_the_whole_process(helpers, policy_file, jail) -> None:
    """OCI SCMP_ACT_KILL is kill-thread; as a default tinyjail makes it kill the process, so a
    thread hitting it takes the whole program down (exit 159), not just itself."""
    others = sorted(
        n
        for n in syscalls.table()
        if n not in ("getpid", "io_uring_setup", "io_uring_enter", "io_uring_register")
    )
    policy = policy_file(
        {"defaultAction": "SCMP_ACT_KILL", "syscalls": [{"names": others, "action": "SCMP_ACT_ALLOW"}]}
    )
    proc = jail(policy, helpers["thread_kill"], str(nr("getpid")))
    assert proc.returncode == 159, proc.stdout + proc.stderr
    assert "main thread alive" not in proc.stdout
    assert "getpid" in proc.stderr


def test_kill_thread_rule_kills_only_the_thread(helpers, policy_file, jail) -> None:
    policy = policy_file(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_KILL_THREAD"}],
        }
    )
    proc = jail(policy, helpers["thread_kill"], str(nr("getpid")))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "main thread alive\n"
    assert "stopped by seccomp (kill_thread) at getpid" in proc.stderr


def test_trap_delivers_sigsys_to_the_handler(helpers, policy_file, jail) -> None:
    policy = policy_file(
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_TRAP"}]}
    )
    proc = jail(policy, helpers["trap"], str(nr("getppid")))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"SIGSYS {int(signal.SIGSYS)} syscall={nr('getppid')} ")


def test_trace_without_tracer_is_enosys(helpers, policy_file, jail) -> None:
    policy = policy_file(
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_TRACE"}]}
    )
    proc = jail(policy, helpers["sys"], call("getpid"))
    assert parse_calls(proc.stdout) == [(nr("getpid"), -1, errno.ENOSYS)]


def test_log_action_allows_and_leaves_an_audit_record(helpers, policy_file, jail) -> None:
    policy = policy_file(
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_LOG"}]}
    )
    with SeccompAuditReader() as reader:
        proc = jail(policy, helpers["sys"], call("getpid"), call("getpid"))
        reader.barrier()
        records = reader.records()
    got = parse_calls(proc.stdout)
    pid = got[0][1]
    assert pid > 0 and got[0][2] == 0  # allowed: the real pid came back
    mine = [r for r in records if r.pid == pid]
    assert [(r.name, r.action) for r in mine] == [("getpid", "log")] * 2


def test_notify_is_refused_without_a_supervisor(policy_file, jail, tmp_path) -> None:
    policy = policy_file(
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_NOTIFY"}]}
    )
    marker = tmp_path / "ran"
    proc = jail(policy, "/usr/bin/touch", str(marker))
    assert proc.returncode == 125
    assert "SCMP_ACT_NOTIFY" in proc.stderr and "supervisor" in proc.stderr
    assert not marker.exists()


def test_exec_refused_by_the_policy_says_so(policy_file, jail, tmp_path) -> None:
    marker = tmp_path / "ran"
    proc = jail(policy_file({"defaultAction": "SCMP_ACT_KILL_PROCESS"}), "/usr/bin/touch", str(marker))
    assert proc.returncode == 159
    assert f"execve (syscall {nr('execve')} on x86_64" in proc.stderr
    assert "never started" in proc.stderr and "must allow execve" in proc.stderr
    assert not marker.exists()


def test_startup_syscall_denied_gets_the_startup_hint(policy_file, jail) -> None:
    policy = policy_file(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["brk"], "action": "SCMP_ACT_KILL_PROCESS"}],
        }
    )
    proc = jail(policy, "/bin/true")
    assert proc.returncode == 159
    assert "brk (syscall" in proc.stderr and "start-up" in proc.stderr


def test_errno_default_without_execve_says_why_it_exits_126(policy_file, jail, tmp_path) -> None:
    """The refused execve leaves no audit record and the child's report of it is a write() the filter
    refuses too: tinyjail asks the policy instead."""
    only_exit = [{"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"}]
    policy = policy_file({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": only_exit})
    marker = tmp_path / "ran"
    proc = jail(policy, "/usr/bin/touch", str(marker))
    assert proc.returncode == 126
    assert "cannot execute /usr/bin/touch: the policy refuses execve (SCMP_ACT_ERRNO)" in proc.stderr
    assert "must allow execve" in proc.stderr
    assert "the filter covers the loader's own start-up syscalls" in proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize(
    ("refused", "status", "named"),
    [
        (["mmap"], 128 + signal.SIGSEGV, "refuses mmap,"),  # ld.so crashes
        (["openat", "write", "writev"], 127, "refuses openat,"),  # ld.so's own message is refused too
    ],
)
def test_loader_call_refused_with_an_errno_gets_the_startup_hint(
    refused: list[str], status: int, named: str, policy_file, jail
) -> None:
    policy = policy_file(
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": refused, "action": "SCMP_ACT_ERRNO"}]}
    )
    proc = jail(policy, "/bin/true")
    assert proc.returncode == status
    assert named in proc.stderr
    assert "the filter covers the loader's own start-up syscalls" in proc.stderr


def test_a_command_failing_by_itself_gets_no_startup_hint(policy_file, jail) -> None:
    for script, status in (("exit 127", 127), ("exit 126", 126), ("kill -SEGV $$", 128 + signal.SIGSEGV)):
        proc = jail(policy_file(ALLOW_ALL), "/bin/sh", "-c", script)
        assert proc.returncode == status
        assert proc.stderr == ""


def test_signal_death_maps_to_128_plus_n(policy_file, jail) -> None:
    proc = jail(policy_file(ALLOW_ALL), "/bin/sh", "-c", "kill -KILL $$")
    assert proc.returncode == 128 + signal.SIGKILL


def test_missing_command_is_127_and_one_line(policy_file, jail) -> None:
    proc = jail(policy_file(ALLOW_ALL), "no-such-command-tj")
    assert proc.returncode == 127
    assert proc.stderr.strip().splitlines() == ["tinyjail: error: no-such-command-tj: command not found"]


def test_bad_policy_is_exit_2_one_line(tmp_path, jail) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["opne"], "action": "SCMP_ACT_ALLOW"}]}'
    )
    proc = jail(bad, "/bin/true")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "opne" in proc.stderr and "open" in proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT])
def test_signals_sent_to_tinyjail_reach_the_command(
    sig: signal.Signals, policy_file, tinyjail_cmd, tmp_path
) -> None:
    script = tmp_path / "waiter.py"
    script.write_text(
        "import signal, sys, time\n"
        "def h(n, f):\n    print('got', n, flush=True); sys.exit(40)\n"
        f"signal.signal({int(sig)}, h)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\nsys.exit(1)\n"
    )
    proc = subprocess.Popen(
        [*tinyjail_cmd, "run", "--policy", str(policy_file(ALLOW_ALL)), "--", sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert out == f"got {int(sig)}\n", err
    assert proc.returncode == 40


def test_sigterm_kills_a_command_without_handler_128_plus_15(policy_file, tinyjail_cmd) -> None:
    proc = subprocess.Popen(
        [*tinyjail_cmd, "run", "--policy", str(policy_file(ALLOW_ALL)), "--", "sleep", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    proc.terminate()
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM


def test_moby_default_profile_runs_a_shell(moby_profile: Path, jail) -> None:
    proc = jail(moby_profile, "/bin/sh", "-c", "echo ok")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok\n"


def test_moby_default_profile_refuses_unshare_and_keyctl(moby_profile: Path, jail, helpers) -> None:
    proc = jail(moby_profile, "unshare", "-U", "true")
    assert proc.returncode != 0
    assert "Operation not permitted" in proc.stderr
    proc = jail(moby_profile, helpers["sys"], call("keyctl", 0), call("getpid"))
    got = parse_calls(proc.stdout)
    assert got[0] == (nr("keyctl"), -1, errno.EPERM)
    assert got[1][1] > 0
    # the control: without the filter the same keyctl call is answered by the kernel itself
    free = subprocess.run([helpers["sys"], call("keyctl", 0)], capture_output=True, text=True, check=True)
    assert parse_calls(free.stdout)[0][2] != errno.EPERM


def test_run_imports_no_pandas_bcc_or_dash(policy_file) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "tinyjail",
            "run",
            "--policy",
            str(policy_file(ALLOW_ALL)),
            "--",
            "/bin/true",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    modules = {
        line.split("|")[-1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "tinyjail" in modules and "pyseccomp" in modules  # the table was really collected
    assert not modules & {"pandas", "bcc", "dash", "plotly", "numpy", "pyarrow"}


def test_report_option_needs_complain_mode(policy_file, jail, tmp_path) -> None:
    proc = jail(policy_file(ALLOW_ALL), "/bin/true", options=("--report", str(tmp_path / "r.json")))
    assert proc.returncode == 2
    assert "--report needs --mode complain" in proc.stderr
    assert not (tmp_path / "r.json").exists()


@pytest.mark.timeout(60)
def test_notify_filter_answered_by_a_supervisor() -> None:
    """With a supervisor (here: a small script, through pyseccomp's notify API) a NOTIFY filter built
    by tinyjail works: the supervisor sees the call and chooses its result. `tinyjail run` itself has
    no supervisor and refuses NOTIFY (above); a supervised mode belongs to a later issue.

    The filter is loaded into a thread of a separate process, never into the pytest process: a
    thread left waiting on a listener that nobody answers would hang the whole suite."""
    script = textwrap.dedent(
        """
        import ctypes, os, sys, threading
        import pyseccomp
        from tinyjail import enforce, syscalls
        from tinyjail.policy import Policy, SyscallRule

        GETPPID = syscalls.number("getppid")
        rule = SyscallRule(["getppid"], "SCMP_ACT_NOTIFY")
        policy = Policy(default_action="SCMP_ACT_ALLOW", syscalls=[rule])
        filt = enforce.build_filter(policy, supervised=True)
        got = []
        loaded = threading.Event()
        libc = ctypes.CDLL(None, use_errno=True)  # ctypes drops the GIL while the call waits for us

        def supervised_thread():  # a filter binds to the thread that loads it (no TSYNC)
            enforce.apply_in_child(filt)
            loaded.set()
            got.append(libc.syscall(GETPPID))

        worker = threading.Thread(target=supervised_thread, daemon=True)
        worker.start()
        assert loaded.wait(timeout=10)  # the listener fd exists once the filter is loaded
        note = filt.receive_notify()
        assert note.syscall == GETPPID, note.syscall
        filt.respond_notify(pyseccomp.NotificationResponse(error=0, flags=0, id=note.id, val=4242))
        worker.join(timeout=10)
        print("worker got", got, "main got", os.getppid() == 4242, flush=True)
        os._exit(0)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "worker got [4242] main got False"


def test_ctrl_c_on_a_terminal_reaches_the_command_once(policy_file, tinyjail_cmd, tmp_path) -> None:
    """Ctrl-C makes the terminal signal the whole foreground group: CMD has it already, so tinyjail
    must not forward a second copy (si_code SI_KERNEL)."""
    import pty
    import select

    script = tmp_path / "count.py"
    script.write_text(
        "import signal, sys, time\n"
        "seen = []\n"
        "signal.signal(signal.SIGINT, lambda n, f: seen.append(n))\n"
        "print('ready', flush=True)\n"
        "while not seen: time.sleep(0.01)\n"
        "time.sleep(1.0)\n"
        "print('sigints', len(seen), flush=True)\n"
        "sys.exit(3)\n"
    )
    argv = [*tinyjail_cmd, "run", "--policy", str(policy_file(ALLOW_ALL)), "--", sys.executable, str(script)]
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    out = b""

    def read_until(token: bytes, timeout: float = 30) -> None:
        nonlocal out
        deadline = time.monotonic() + timeout
        while token not in out and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    data = os.read(fd, 1024)
                except OSError:  # EIO: every process holding the terminal has exited
                    return
                if not data:
                    return
                out += data

    read_until(b"ready")
    os.write(fd, b"\x03")  # the terminal's interrupt character
    read_until(b"never printed: read to the end", timeout=30)  # returns at EOF (EIO) when CMD is done
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert b"sigints 1" in out, out
    assert os.waitstatus_to_exitcode(status) == 3
