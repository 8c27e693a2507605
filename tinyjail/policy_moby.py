"""moby (Docker) profile semantics: ``includes``/``excludes`` conditions on capabilities,
architectures and kernel version, and ``archMap``. They are decided for the running machine
when a policy is compiled or exported (see notes/policy-format.md, "moby conditions")."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from tinyjail.policy_model import Policy, SyscallRule

MOBY_ARCHES: tuple[str, ...] = (
    "386", "amd64", "arm", "arm64", "loong64", "mips", "mipsle", "mips64", "mips64le", "mips64n32",
    "mips64len32", "ppc", "ppc64", "ppc64le", "riscv64", "s390", "s390x", "x32", "x86", "sparc64",
)
"""Go architecture names used by moby's ``includes.arches``/``excludes.arches``."""

GO_ARCH: dict[str, tuple[str, ...]] = {"x86_64": ("amd64",), "x86": ("386", "x86"), "x32": ("x32", "amd64")}
"""tinyjail ABI -> the moby arch names that select it."""


def running_kernel() -> tuple[int, int]:
    """(major, minor) of the running kernel, for moby's ``minKernel``."""
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _kernel_at_least(version: str, kernel: tuple[int, int]) -> bool:
    parts = tuple(int(x) for x in version.split(".")[:2])
    return kernel >= parts


def conditions_hold(rule: SyscallRule, arch: str = "x86_64", caps: Iterable[str] | None = None,
                    kernel: tuple[int, int] | None = None) -> bool:
    """Whether a moby rule applies: ``includes`` all true (every listed cap granted, arch listed,
    kernel >= minKernel) and no ``excludes`` true (no listed cap granted, arch not listed,
    kernel < minKernel). ``caps`` are the capabilities the container gets (default: none)."""
    granted = set(caps or ())
    kern = kernel or running_kernel()
    go_names = GO_ARCH.get(arch, (arch,))
    inc, exc = rule.includes, rule.excludes
    if inc.get("caps") and not set(inc["caps"]) <= granted:
        return False
    if inc.get("arches") and not set(inc["arches"]) & set(go_names[:1]):
        return False
    if inc.get("minKernel") and not _kernel_at_least(inc["minKernel"], kern):
        return False
    if exc.get("caps") and set(exc["caps"]) & granted:
        return False
    if exc.get("arches") and set(exc["arches"]) & set(go_names[:1]):
        return False
    return not (exc.get("minKernel") and _kernel_at_least(exc["minKernel"], kern))


def effective_architectures(policy: Policy, native: str = "SCMP_ARCH_X86_64") -> list[str]:
    """The OCI architectures a filter covers: ``architectures`` as written, else moby's archMap
    entry for ``native`` plus its sub-architectures, else just ``native``."""
    if policy.architectures:
        return list(policy.architectures)
    for entry in policy.arch_map or []:
        if entry.get("architecture") == native:
            return [native, *entry.get("subArchitectures", [])]
    return [native]
