"""Ready-made argument rules for the usual least-privilege restrictions.

Each helper returns `SyscallRule`s for an allowlist policy (default action denies): the call
is allowed only when its arguments match, and everything else falls to the default action.
Values keep their symbolic spelling (``Arg.symbolic``) so a saved policy reads
``"value": "AF_UNIX"`` and `tinyjail policy show` can print it back by name.

Rules for the same syscall are OR-ed by libseccomp and the conditions inside one rule are
AND-ed; libseccomp 2.5 cannot test the same argument twice in one rule, which is why
"not both PROT_WRITE and PROT_EXEC" is written as two rules.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from tinyjail import symbols
from tinyjail.policy import Arg, SyscallRule

ALLOW = "SCMP_ACT_ALLOW"
EQ = "SCMP_CMP_EQ"
MASKED_EQ = "SCMP_CMP_MASKED_EQ"

SOCK_TYPE_BITS = 0xFFFFFFFF & ~(socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
"""Every bit of socket()'s 32-bit type except SOCK_NONBLOCK/SOCK_CLOEXEC: ``(type & this) ==
SOCK_STREAM`` accepts the type with any of those two flags and nothing else (the kernel's own
SOCK_TYPE_MASK is not in any UAPI header, and the kernel refuses other bits anyway)."""

LOW_32_BITS = 0xFFFFFFFF
"""ioctl's request is an ``unsigned int`` in the kernel: upper bits of the register are ignored
there, so the filter must ignore them too (a sign-extended request must not slip through a
deny rule, nor be refused by an allow rule)."""


def _arg(syscall: str, index: int, value: str | int, op: str = EQ, value_two: str | int = 0) -> Arg:
    """An Arg whose values may be symbolic; the text is kept for display and saving."""

    def resolve(v: str | int) -> tuple[int, str | None]:
        if isinstance(v, int):
            return v, None
        return symbols.parse(syscall, index, v), v.strip()

    number, text = resolve(value)
    number_two, text_two = resolve(value_two)
    return Arg(index=index, value=number, op=op, value_two=number_two, symbolic=text,
               symbolic_two=text_two if op == MASKED_EQ else None)


def socket_families(
    families: Iterable[str | int], types: Iterable[str | int] | None = None
) -> list[SyscallRule]:
    """Allow ``socket`` only for these address families (and, when given, these socket types,
    whatever SOCK_NONBLOCK/SOCK_CLOEXEC flags come with them)."""
    families = list(families)
    if not families:
        raise ValueError("socket_families needs at least one family (e.g. AF_UNIX)")
    type_list = list(types) if types is not None else [None]
    rules: list[SyscallRule] = []
    for family in families:
        for sock_type in type_list:
            args = [_arg("socket", 0, family)]
            if sock_type is not None:
                args.append(_arg("socket", 1, SOCK_TYPE_BITS, MASKED_EQ, sock_type))
            rules.append(SyscallRule(names=["socket"], action=ALLOW, args=args,
                                     comment=_comment("socket", args)))
    return rules


def namespace_flags() -> tuple[str, int]:
    """All CLONE_NEW* flags that clone() accepts, as text and as a number. CLONE_NEWTIME is
    left out: its bit lies in clone()'s exit-signal byte (only clone3/unshare take it)."""
    table = symbols.symbol_set("clone", 0)
    assert table is not None
    names = sorted((n for n in table.values if n.startswith("CLONE_NEW")), key=lambda n: table.values[n])
    value = 0
    for n in names:
        value |= table.values[n]
    return "|".join(names), value


def clone_without_namespaces() -> list[SyscallRule]:
    """Allow ``clone`` only when no CLONE_NEW* flag is set (threads and fork keep working).

    clone3 passes its flags in a struct that seccomp cannot read, so it cannot be filtered
    this way: the enforcer answers clone3 with ENOSYS whenever clone has argument rules, and
    glibc then falls back to clone.
    """
    text, _ = namespace_flags()
    args = [_arg("clone", 0, text, MASKED_EQ, 0)]
    return [SyscallRule(names=["clone"], action=ALLOW, args=args, comment="clone without new namespaces")]


DEFAULT_PERSONALITIES: tuple[str, ...] = (
    "PER_LINUX", "PER_LINUX32", "UNAME26", "PER_LINUX32|UNAME26", "0xffffffff",
)
"""What container runtimes allow: the Linux personalities and 0xffffffff (query only)."""


def personality(values: Iterable[str | int] = DEFAULT_PERSONALITIES) -> list[SyscallRule]:
    """Allow ``personality`` only with these exact values (e.g. refuse READ_IMPLIES_EXEC or
    ADDR_NO_RANDOMIZE, which weaken exploit mitigations)."""
    rules = []
    for v in values:
        args = [_arg("personality", 0, v)]
        rules.append(SyscallRule(names=["personality"], action=ALLOW, args=args,
                                 comment=_comment("personality", args)))
    return rules


def prctl_options(options: Iterable[str | int]) -> list[SyscallRule]:
    """Allow ``prctl`` only for these options (PR_SET_NAME, PR_SET_NO_NEW_PRIVS, ...)."""
    rules = []
    for option in options:
        args = [_arg("prctl", 0, option)]
        rules.append(SyscallRule(names=["prctl"], action=ALLOW, args=args, comment=_comment("prctl", args)))
    return rules


def ioctl_requests(requests: Iterable[str | int]) -> list[SyscallRule]:
    """Allow ``ioctl`` only for these requests (TCGETS, TIOCGWINSZ, FIONREAD, ...), compared on
    the low 32 bits as the kernel does."""
    rules = []
    for request in requests:
        args = [_arg("ioctl", 1, LOW_32_BITS, MASKED_EQ, request)]
        rules.append(SyscallRule(names=["ioctl"], action=ALLOW, args=args, comment=_comment("ioctl", args)))
    return rules


def no_write_exec_mappings(
    syscalls: Iterable[str] = ("mmap", "mprotect", "pkey_mprotect"),
) -> list[SyscallRule]:
    """Allow ``mmap``/``mprotect`` unless PROT_WRITE and PROT_EXEC are asked for together
    (W^X): one rule for "no PROT_WRITE", one for "no PROT_EXEC", OR-ed."""
    rules = []
    for name in syscalls:
        for bit in ("PROT_WRITE", "PROT_EXEC"):
            args = [_arg(name, 2, bit, MASKED_EQ, 0)]
            rules.append(SyscallRule(names=[name], action=ALLOW, args=args,
                                     comment=f"{name} without {bit} (never writable and executable)"))
    return rules


READ_ONLY_MASK = "O_ACCMODE|O_CREAT|O_TRUNC"
"""O_RDONLY is 0, so "read only" is judged on the access mode bits; O_CREAT and O_TRUNC are
in the mask too because O_RDONLY|O_CREAT creates a file and O_RDONLY|O_TRUNC truncates one."""


RUNC_EXEC_FIFO_FLAGS = "O_WRONLY|O_CLOEXEC"
"""runc 1.1 loads the filter, then opens its exec fifo with these flags before execve: a
read-only policy meant for runc must also allow exactly this (see notes/audit.md)."""


def openat_read_only(include_open: bool = True, also_exact: Iterable[str | int] = ()) -> list[SyscallRule]:
    """Allow ``openat`` (and ``open``) only for reading: (flags & O_ACCMODE|O_CREAT|O_TRUNC)
    == O_RDONLY. ``also_exact`` adds flag values allowed as they are (e.g.
    `RUNC_EXEC_FIFO_FLAGS`). ``openat2`` passes its flags in a struct and cannot be checked."""
    targets = [("openat", 2)] + ([("open", 1)] if include_open else [])
    extra = list(also_exact)
    rules = []
    for name, index in targets:
        args = [_arg(name, index, READ_ONLY_MASK, MASKED_EQ, "O_RDONLY")]
        rules.append(SyscallRule(names=[name], action=ALLOW, args=args, comment=f"{name} read-only"))
        for flags in extra:
            args = [_arg(name, index, flags)]
            rules.append(SyscallRule(names=[name], action=ALLOW, args=args, comment=_comment(name, args)))
    return rules


def _comment(name: str, args: list[Arg]) -> str:
    return f"{name} if " + " && ".join(a.text() for a in args)


__all__ = [
    "DEFAULT_PERSONALITIES",
    "READ_ONLY_MASK",
    "RUNC_EXEC_FIFO_FLAGS",
    "clone_without_namespaces",
    "ioctl_requests",
    "namespace_flags",
    "no_write_exec_mappings",
    "openat_read_only",
    "personality",
    "prctl_options",
    "socket_families",
]
