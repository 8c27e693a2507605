"""The exec half of a launch, shared by `tinyjail run` and `tinyjail trace`.

Everything that can fail or allocate is prepared in the parent before fork (the command's
path, execve's argument arrays, the compiled filter); the forked child only resets signal
state, optionally waits for a go-ahead, loads the filter and calls execve. It reports a
failure to the parent on ``status_w`` (``L<errno>``: the filter did not load; ``E<errno>``:
execve failed) and exits 125/126/127 like a shell would.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import shutil
import signal
from collections.abc import Iterable, Sequence
from typing import Any

from tinyjail.errors import TinyjailError, UsageError

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
"""Signals sent to tinyjail that it passes on to CMD."""
SI_KERNEL = 0x80
"""si_code of a signal the terminal sent to the whole foreground group: CMD has it already."""


class CommandNotFound(TinyjailError):
    """CMD does not exist (exit 127) or is not executable (exit 126), as a shell reports it."""

    exit_code = 127


def resolve_command(argv: Sequence[str], usage: str = "tinyjail run --policy P.json -- CMD [ARGS]") -> str:
    """The path execve will run for ``argv[0]`` (PATH searched like a shell)."""
    if not argv:
        raise UsageError(f"no command given ({usage})")
    cmd = argv[0]
    path = cmd if "/" in cmd else shutil.which(cmd)
    if path is None or not os.path.exists(path):
        raise CommandNotFound(f"{cmd}: command not found")
    if not os.access(path, os.X_OK) or os.path.isdir(path):
        err = CommandNotFound(f"{cmd}: permission denied (not an executable file)")
        err.exit_code = 126
        raise err
    return path


class Execve:
    """execve with its argument arrays built before fork, so the child allocates nothing."""

    def __init__(self, path: str, argv: Sequence[str], env: dict[str, str] | None) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self._fn = libc.execve
        strings = ctypes.POINTER(ctypes.c_char_p)
        self._fn.argtypes = (ctypes.c_char_p, strings, strings)
        self._fn.restype = ctypes.c_int
        environ = os.environ if env is None else env
        self._path = os.fsencode(path)
        self._argv = (ctypes.c_char_p * (len(argv) + 1))(*[os.fsencode(a) for a in argv], None)
        pairs = [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in environ.items()]
        self._envp = (ctypes.c_char_p * (len(pairs) + 1))(*pairs, None)

    def __call__(self) -> int:
        self._fn(self._path, self._argv, self._envp)
        return ctypes.get_errno()


def exec_child(
    filt: Any, execve: Execve, status_w: int, old_mask: Iterable[int], go_r: int | None = None
) -> None:
    """Runs in the forked child: restore signals, wait for ``go_r`` (if given), load ``filt``
    (if any), exec. Never returns."""
    code = 125
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # Python ignores these; CMD must not inherit that
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        if go_r is not None:
            os.read(go_r, 1)
            os.close(go_r)
        if filt is not None:
            try:
                filt.load()
            except OSError as err:
                os.write(status_w, b"L%d" % (err.errno or 0))
                os._exit(125)
        eno = execve()
        code = 127 if eno == errno.ENOENT else 126
        os.write(status_w, b"E%d" % eno)
    except BaseException:
        with contextlib.suppress(BaseException):
            os.write(status_w, b"L0")
    finally:
        os._exit(code)


def read_status(fd: int) -> bytes:
    """Everything the child wrote on its status pipe: empty when execve succeeded (CLOEXEC)."""
    chunks: list[bytes] = []
    while True:
        data = os.read(fd, 64)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def exit_status(wait_status: int) -> int:
    """CMD's exit status as a shell gives it: 128+N when signal N killed it."""
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


__all__ = [
    "FORWARDED",
    "SI_KERNEL",
    "CommandNotFound",
    "Execve",
    "exec_child",
    "exit_status",
    "read_status",
    "resolve_command",
]
