"""Which processes belong to the command: fork and exec events from the kernel's proc connector.

Audit records name a pid only. To count the calls of CMD and all its descendants, and no
one else's (other programs on the box run filters too), we listen to the proc connector
(NETLINK_CONNECTOR, CN_IDX_PROC), which reports every fork and exec synchronously. Taking
the events in order, the family is the root pid plus every process forked by a member, so
a grandchild that lived for a microsecond is still counted. Needs CAP_NET_ADMIN; without
it the family is the root pid alone (`complete` is False and callers say so).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import threading
from dataclasses import dataclass, field

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
PROC_EVENT_FORK = 0x1
PROC_EVENT_EXEC = 0x2
PROC_EVENT_EXIT = 0x80000000
NLMSG_DONE = 3

_NLMSGHDR = struct.Struct("=IHHII")
_CN_MSG = struct.Struct("=IIIIHH")
_EVENT_HEAD = struct.Struct("=IIQ")     # what, cpu, timestamp_ns
_FORK = struct.Struct("=IIII")          # parent_pid, parent_tgid, child_pid, child_tgid
_EXEC = struct.Struct("=II")            # process_pid, process_tgid
_EXIT = struct.Struct("=IIII")          # process_pid, process_tgid, exit_code, exit_signal
_HEAD = _NLMSGHDR.size + _CN_MSG.size


@dataclass
class ProcessFamily:
    """Collects fork/exec events from before the command is forked until `close`."""

    complete: bool = False
    error: str | None = None
    # (FORK, parent_tgid, child_tgid) | (EXEC, tgid, tgid) | (EXIT, tgid, signal)
    _events: list[tuple[int, int, int]] = field(default_factory=list)
    _sock: socket.socket | None = None
    _stop_r: int = -1
    _stop_w: int = -1
    _thread: threading.Thread | None = None
    _root: int | None = None

    def start(self) -> ProcessFamily:
        """Subscribe to the proc connector; on failure keep going with the root pid only."""
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
            try:
                sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            sock.bind((0, CN_IDX_PROC))
            self._send_op(sock, PROC_CN_MCAST_LISTEN)
        except OSError as err:
            self.error = f"proc connector unavailable ({err.strerror or err}); only CMD's own pid is followed"
            return self
        self._sock = sock
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)
        self.complete = True
        self._thread = threading.Thread(target=self._loop, name="tinyjail-family", daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _send_op(sock: socket.socket, op: int) -> None:
        body = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, 4, 0) + struct.pack("=I", op)
        sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), NLMSG_DONE, 0, 0, 0) + body)

    def _loop(self) -> None:
        assert self._sock is not None
        fd = self._sock.fileno()
        while True:
            ready, _, _ = select.select([fd, self._stop_r], [], [])
            if fd in ready:
                self._drain()
            if self._stop_r in ready:
                self._drain()
                return

    def _drain(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError as err:      # ENOBUFS: the kernel dropped events
                self.complete = False
                self.error = f"proc connector lost events ({err.strerror or err})"
                continue
            self._parse(data)

    def _parse(self, data: bytes) -> None:
        off = 0
        while off + _HEAD + _EVENT_HEAD.size <= len(data):
            length = _NLMSGHDR.unpack_from(data, off)[0]
            what = _EVENT_HEAD.unpack_from(data, off + _HEAD)[0]
            body = off + _HEAD + _EVENT_HEAD.size
            if what == PROC_EVENT_FORK:
                _, ptgid, _, ctgid = _FORK.unpack_from(data, body)
                if ptgid != ctgid:            # a new thread is not a new process
                    self._events.append((PROC_EVENT_FORK, ptgid, ctgid))
            elif what == PROC_EVENT_EXEC:
                _, tgid = _EXEC.unpack_from(data, body)
                self._events.append((PROC_EVENT_EXEC, tgid, tgid))
            elif what == PROC_EVENT_EXIT:
                _, tgid, code, _ = _EXIT.unpack_from(data, body)
                if code & 0x7F:                  # died of a signal (a thread too): (tgid, signal)
                    self._events.append((PROC_EVENT_EXIT, tgid, code & 0x7F))
            if length <= 0:
                break
            off += (length + 3) & ~3

    def set_root(self, pid: int) -> None:
        """The pid of the forked command (events before the fork cannot involve it)."""
        self._root = pid

    def close(self) -> None:
        """Read what is left and stop listening."""
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(timeout=5)
            self._thread = None
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._send_op(self._sock, PROC_CN_MCAST_IGNORE)
            self._sock.close()
            self._sock = None
        for fd in (self._stop_r, self._stop_w):
            if fd >= 0:
                os.close(fd)
        self._stop_r = self._stop_w = -1

    def members(self) -> set[int]:
        """The root pid and every process it or its descendants forked (tgids)."""
        if self._root is None:
            return set()
        family = {self._root}
        for what, parent, child in list(self._events):
            if what == PROC_EVENT_FORK and parent in family:
                family.add(child)
        return family

    def killed_by(self, sig: int) -> bool:
        """True when a thread or process of the family died of signal ``sig`` (e.g. SIGSYS)."""
        members = self.members()
        return any(what == PROC_EVENT_EXIT and tgid in members and signo == sig
                   for what, tgid, signo in list(self._events))

    def execed(self, pid: int) -> bool:
        """True when ``pid`` called execve successfully (only known when `complete`)."""
        return any(what == PROC_EVENT_EXEC and tgid == pid for what, tgid, _ in list(self._events))

    def __enter__(self) -> ProcessFamily:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
