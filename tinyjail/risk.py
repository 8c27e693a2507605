"""Syscalls that widen a sandbox's attack surface, each with the one-line reason why.

Used to mark entries in `policy show`, the dashboard and `explain`, and by profile generation
to call out a dangerous syscall a workload was seen to make. The list follows the syscalls
that Docker's default profile, systemd's @privileged/@debug/@module/@mount/@obsolete groups and
kernel exploit history treat as privileged or risky; allowing one is sometimes necessary, but
it should be a decision, not an accident.
"""

from __future__ import annotations

_KEYS = "kernel keyring: shared across the user and a frequent source of kernel bugs"
_MODULE = "loads or unloads kernel code"
_CREDS = "changes user/group credentials (dangerous while the process holds privileges)"
_MOUNT = "changes the mount table: can hide or replace files, escape a chroot"
_NEWMOUNT = "new mount API: can build and attach mounts (container escape primitive)"
_KEXEC = "replaces the running kernel"
_XATTR_HANDLE = "opens files by handle, bypassing path checks (the 'shocker' container escape)"

RISK: dict[str, str] = {
    "ptrace": "reads/writes another process's memory and registers; can defeat a traced child's filter",
    "process_vm_readv": "reads another process's memory directly",
    "process_vm_writev": "writes another process's memory directly",
    "process_madvise": "acts on another process's memory",
    "pidfd_getfd": "steals a file descriptor from another process",
    "kcmp": "compares kernel objects of other processes (information leak, KASLR probing)",
    "bpf": "loads eBPF programs into the kernel: large attack surface, can read kernel memory",
    "perf_event_open": "kernel performance monitoring: side channels and a history of kernel bugs",
    "userfaultfd": "handles page faults in user space: widely used to win kernel race conditions",
    "io_uring_setup": "io_uring performs I/O that seccomp cannot see and has had many kernel bugs",
    "io_uring_enter": "io_uring submissions bypass per-syscall seccomp filtering",
    "io_uring_register": "io_uring registration: kernel attack surface, bypasses seccomp filtering",
    "keyctl": _KEYS,
    "add_key": _KEYS,
    "request_key": _KEYS,
    "kexec_load": _KEXEC,
    "kexec_file_load": _KEXEC,
    "init_module": _MODULE,
    "finit_module": _MODULE,
    "delete_module": _MODULE,
    "create_module": _MODULE,
    "mount": _MOUNT,
    "umount": _MOUNT,
    "umount2": _MOUNT,
    "pivot_root": _MOUNT,
    "chroot": "changes the root directory; with other privileges a classic escape",
    "mount_setattr": _MOUNT,
    "move_mount": _NEWMOUNT,
    "open_tree": _NEWMOUNT,
    "fsopen": _NEWMOUNT,
    "fsconfig": _NEWMOUNT,
    "fsmount": _NEWMOUNT,
    "fspick": _NEWMOUNT,
    "unshare": "creates namespaces: user namespaces expose kernel code normally reserved to root",
    "setns": "joins another namespace (possibly the host's)",
    "clone3": "can create namespaces, and seccomp cannot inspect its flags (they are in memory)",
    "open_by_handle_at": _XATTR_HANDLE,
    "name_to_handle_at": "produces file handles usable with open_by_handle_at; leaks inode information",
    "personality": "changes the execution domain (e.g. READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE weakens ASLR)",
    "iopl": "raw I/O port access: direct hardware access",
    "ioperm": "raw I/O port access: direct hardware access",
    "swapon": "adds swap: can expose memory contents to a device",
    "swapoff": "removes swap: denial of service",
    "reboot": "reboots or halts the machine",
    "acct": "turns process accounting on/off for the whole system",
    "lookup_dcookie": "kernel profiling interface leaking paths; obsolete",
    "quotactl": "manages disk quotas of the host",
    "quotactl_fd": "manages disk quotas of the host",
    "syslog": "reads or clears the kernel log (leaks kernel addresses)",
    "settimeofday": "sets the system clock for every process",
    "clock_settime": "sets the system clock for every process",
    "clock_adjtime": "adjusts the system clock for every process",
    "adjtimex": "adjusts the system clock for every process",
    "stime": "sets the system clock for every process",
    "vhangup": "hangs up the terminal of other processes",
    "modify_ldt": "edits the x86 local descriptor table: historic source of kernel bugs",
    "vm86": "virtual 8086 mode: legacy, historic source of kernel bugs",
    "vm86old": "virtual 8086 mode: legacy, historic source of kernel bugs",
    "uselib": "obsolete loader of a.out libraries",
    "nfsservctl": "obsolete kernel NFS server control",
    "_sysctl": "obsolete sysctl interface",
    "sysfs": "obsolete filesystem type query",
    "ustat": "obsolete filesystem statistics",
    "mbind": "changes NUMA memory policy (host resource control)",
    "set_mempolicy": "changes NUMA memory policy (host resource control)",
    "migrate_pages": "moves another process's pages between NUMA nodes",
    "move_pages": "moves another process's pages between NUMA nodes",
    "fanotify_init": "watches file access on whole mounts; needs CAP_SYS_ADMIN",
    "memfd_secret": "memory hidden from the kernel: hides code from inspection",
    "setuid": _CREDS,
    "setgid": _CREDS,
    "setresuid": _CREDS,
    "setresgid": _CREDS,
    "setreuid": _CREDS,
    "setregid": _CREDS,
    "setfsuid": _CREDS,
    "setfsgid": _CREDS,
    "setgroups": _CREDS,
    "capset": "changes the process's capabilities",
}
"""Syscall name -> why allowing it is dangerous (one line)."""

_VARIANTS = ("32", "_time64", "64")


def _base(name: str) -> str:
    if name in RISK:
        return name
    for suffix in _VARIANTS:
        if name.endswith(suffix) and name[: -len(suffix)] in RISK:
            return name[: -len(suffix)]
    return name


def is_dangerous(name: str) -> bool:
    """True when allowing ``name`` deserves a second look (variants like ``setuid32`` included)."""
    return _base(name) in RISK


def why(name: str) -> str | None:
    """The reason ``name`` is dangerous, or None."""
    return RISK.get(_base(name))


__all__ = ["RISK", "is_dangerous", "why"]
