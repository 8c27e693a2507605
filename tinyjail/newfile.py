"""Writing a file the user named: atomically, never through a symlink, never over a file without ``force``.

tinyjail runs as root, so a predictable temporary name or an ``open()`` that follows symlinks lets
anyone who can write to the target directory send the bytes to a file of their choosing. The data
goes to a fresh `tempfile.mkstemp` file (random name, O_CREAT|O_EXCL|O_NOFOLLOW) in the target
directory, then takes the final name with ``os.replace`` (``force``) or ``os.link`` (which fails on
anything already there, a dangling symlink included, so a file created meanwhile is never clobbered).
Either way a symlink at the final name is replaced, never written through.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from tinyjail.errors import UsageError

_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS}


def check_new(path: str | os.PathLike[str], force: bool = False) -> Path:
    """Refuse now what `new_file` would refuse (an existing name without ``force``, a missing or
    unwritable directory) by creating and removing a probe file: for checks before a long job."""
    p = Path(path)
    _refuse_existing(p, force)
    fd, tmp = _create_temp(p)
    os.close(fd)
    os.unlink(tmp)
    return p


@contextmanager
def new_file(path: str | os.PathLike[str], *, force: bool = False, binary: bool = False) -> Iterator[IO[Any]]:
    """A file object to write ``path`` through; the name appears, complete, only when the block ends
    without an exception. Raises UsageError (one line naming ``path``) for every refusal or OSError."""
    p = Path(path)
    _refuse_existing(p, force)
    fd, tmp = _create_temp(p)
    done = False
    try:
        try:
            os.fchmod(fd, 0o644 & ~_umask())     # what open() would give, never group/world-writable
            with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as fh:
                fd = -1
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            _commit(tmp, p, force)
            done = True
        except OSError as err:
            raise _error(p, err, "cannot write") from None
    finally:
        if fd >= 0:
            os.close(fd)
        if not done:
            Path(tmp).unlink(missing_ok=True)


def write_new(path: str | os.PathLike[str], data: str | bytes, *, force: bool = False) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` as `new_file` does; returns the path."""
    with new_file(path, force=force, binary=isinstance(data, bytes)) as fh:
        fh.write(data)
    return Path(path)


def _refuse_existing(p: Path, force: bool) -> None:
    """Anything at ``p`` (a dangling symlink too) without ``force``; with it, only a regular file
    or a symlink to one (or to nothing) may be replaced, never a directory or a device."""
    try:
        mode = os.lstat(p).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return                            # nothing there; `_create_temp` names a bad directory
    except OSError as err:
        raise _error(p, err, "cannot write") from None
    if stat.S_ISLNK(mode):
        try:
            mode = os.stat(p).st_mode     # only to decide; the write never follows the link
        except OSError:
            mode = stat.S_IFREG           # dangling: nothing is behind it
    if stat.S_ISDIR(mode):
        raise UsageError(f"{p}: is a directory")
    if not stat.S_ISREG(mode):
        raise UsageError(f"{p}: is not a regular file; it is never replaced, choose another name")
    if not force:
        raise UsageError(f"{p}: already exists; use --force to overwrite it")


def _create_temp(p: Path) -> tuple[int, str]:
    import tempfile

    directory = p.parent
    try:
        return tempfile.mkstemp(dir=directory, prefix=f".{p.name[:100]}.", suffix=".tmp")
    except OSError as err:
        if not directory.exists():
            raise UsageError(f"{p}: directory {directory} does not exist") from None
        if not directory.is_dir():
            raise UsageError(f"{p}: {directory} is not a directory") from None
        raise _error(p, err, f"cannot create a file in {directory}") from None


def _commit(tmp: str, p: Path, force: bool) -> None:
    if force:
        os.replace(tmp, p)
        return
    try:
        os.link(tmp, p)                   # EEXIST on anything at p, without following it
    except FileExistsError:
        raise UsageError(f"{p}: already exists; use --force to overwrite it") from None
    except OSError as err:
        if err.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(p):            # a file system without hard links: last check, then rename
            raise UsageError(f"{p}: already exists; use --force to overwrite it") from None
        os.replace(tmp, p)
        return
    os.unlink(tmp)


def _umask() -> int:
    """The process umask, read without changing it (os.umask would race other threads' creations)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _error(p: Path, err: OSError, what: str) -> UsageError:
    if err.errno == errno.EISDIR:
        return UsageError(f"{p}: is a directory")
    return UsageError(f"{p}: {what}: {err.strerror or err}")
