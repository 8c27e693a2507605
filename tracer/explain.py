"""Answer "why does my program make this syscall, and will my policy let it?" for one syscall.

`explain` gathers everything tinyjail knows about one syscall into an `Explanation`: what it does,
its systemd groups and risk, and from the traces how often it was made, by which processes, from
which call sites (symbolized stacks), with which arguments, and what a policy decides for each
recorded call. The CLI and the dashboard both render this one dataclass.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tinyjail import syscalls
from tinyjail.timeline import present as _present

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console, RenderableType

    from tinyjail.policy import Policy
    from tinyjail.timeline import Trace

TOP = 8
"""How many call sites, processes, paths and argument values are listed."""

FRAMES_SHOWN = 4
"""Innermost frames printed per call site (the syscall wrapper and its callers)."""

RELATIVES: tuple[frozenset[str], ...] = tuple(
    frozenset(family)
    for family in (
        {"open", "openat", "openat2", "creat", "open_by_handle_at", "open_tree"},
        {"stat", "lstat", "fstat", "newfstatat", "statx", "stat64", "lstat64", "fstat64", "fstatat64"},
        {"statfs", "fstatfs", "statfs64", "fstatfs64", "ustat"},
        {"access", "faccessat", "faccessat2"},
        {"read", "pread64", "readv", "preadv", "preadv2"},
        {"write", "pwrite64", "writev", "pwritev", "pwritev2"},
        {"sendfile", "copy_file_range", "splice", "tee", "vmsplice"},
        {"getdents", "getdents64", "readdir"},
        {"mmap", "mmap2", "mremap", "munmap", "mprotect", "pkey_mprotect"},
        {"fork", "vfork", "clone", "clone3"},
        {"execve", "execveat"},
        {"wait4", "waitid", "waitpid"},
        {"exit", "exit_group"},
        {"dup", "dup2", "dup3"},
        {"pipe", "pipe2"},
        {"poll", "ppoll", "select", "_newselect", "pselect6", "epoll_wait", "epoll_pwait", "epoll_pwait2"},
        {"epoll_create", "epoll_create1", "epoll_ctl"},
        {"eventfd", "eventfd2"},
        {"signalfd", "signalfd4"},
        {"inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch"},
        {"unlink", "unlinkat", "rmdir"},
        {"rename", "renameat", "renameat2"},
        {"mkdir", "mkdirat", "mknod", "mknodat"},
        {"link", "linkat", "symlink", "symlinkat"},
        {"readlink", "readlinkat"},
        {"chmod", "fchmod", "fchmodat", "fchmodat2"},
        {"chown", "fchown", "lchown", "fchownat", "chown32", "fchown32", "lchown32"},
        {"utime", "utimes", "utimensat", "futimesat"},
        {"truncate", "ftruncate", "truncate64", "ftruncate64"},
        {"sync", "fsync", "fdatasync", "syncfs", "sync_file_range"},
        {"chdir", "fchdir", "getcwd"},
        {"socket", "socketpair", "socketcall"},
        {"accept", "accept4"},
        {"send", "sendto", "sendmsg", "sendmmsg"},
        {"recv", "recvfrom", "recvmsg", "recvmmsg"},
        {"rt_sigaction", "sigaction", "signal"},
        {"rt_sigprocmask", "sigprocmask"},
        {"rt_sigreturn", "sigreturn"},
        {"kill", "tkill", "tgkill", "pidfd_send_signal"},
        {"getrlimit", "setrlimit", "prlimit64", "ugetrlimit"},
        {"futex", "futex_waitv", "futex_wait", "futex_wake", "futex_requeue"},
        {"time", "gettimeofday", "clock_gettime", "clock_getres"},
        {"nanosleep", "clock_nanosleep"},
        {"getuid", "geteuid", "getresuid", "getgid", "getegid", "getresgid"},
        {"setuid", "setreuid", "setresuid", "setgid", "setregid", "setresgid", "setgroups"},
        {"getpid", "gettid", "getppid"},
        {"getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr"},
        {"setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr"},
        {"mount", "umount", "umount2", "fsmount", "move_mount", "mount_setattr"},
        {"fcntl", "fcntl64"},
        {"lseek", "_llseek"},
        {"ioctl", "fcntl"},
        {"prctl", "arch_prctl"},
        {"sched_getaffinity", "sched_setaffinity"},
        {"set_robust_list", "get_robust_list"},
        {"bpf", "perf_event_open"},
    )
)
"""Families of syscalls that do the same job (an old call and its newer *at/64/2 variants, ...)."""


_UMBRELLA_GROUPS = frozenset({"@known", "@system-service", "@default"})
"""Groups too broad to make two syscalls relatives (@known is every syscall)."""


@dataclass
class CallSite:
    """One distinct user stack (or, past the stack sampling limit, one instruction pointer)."""

    frames: list[str]
    count: int
    first_ts: int
    """CLOCK_MONOTONIC ns of the first call from here."""
    first_offset_ns: int
    """The same, relative to the start of its trace."""
    trace: str
    stack_id: int = -1


@dataclass
class ProcessUse:
    pid: int
    comm: str
    count: int


@dataclass
class ArgValues:
    """The decoded values of one argument: (symbolic text, count), most frequent first."""

    index: int
    values: list[tuple[str, int]]
    distinct: int


@dataclass
class Verdict:
    """What a policy does with the syscall: its plain verdict and over every recorded call."""

    policy: str
    action: str
    """The action for this syscall; with argument rules, the one when none of them matches."""
    errno: int | None
    conditional: bool
    """Some rule decides the syscall only for certain argument values."""
    conditional_actions: list[str] = field(default_factory=list)
    """The actions of those argument rules (distinct, sorted)."""
    recorded_allowed: int = 0
    recorded_denied: int = 0
    denied_examples: list[str] = field(default_factory=list)


@dataclass
class Relative:
    name: str
    count: int
    why: str


@dataclass
class Explanation:
    """Everything `tinyjail explain` prints about one syscall (see `render`)."""

    name: str
    number: int | None
    description: str
    groups: list[str]
    risk: str | None
    dangerous: bool
    traces: list[str] = field(default_factory=list)
    lossy: list[str] = field(default_factory=list)
    count: int = 0
    failed: list[tuple[str, int]] = field(default_factory=list)
    processes: list[ProcessUse] = field(default_factory=list)
    call_sites: list[CallSite] = field(default_factory=list)
    call_sites_total: int = 0
    paths: list[tuple[str, int]] = field(default_factory=list)
    args: list[ArgValues] = field(default_factory=list)
    relatives: list[Relative] = field(default_factory=list)
    verdict: Verdict | None = None

    @property
    def seen(self) -> bool:
        return self.count > 0


def explain(name: str | int, traces: Sequence[Trace] = (), policy: Policy | None = None) -> Explanation:
    """Explain syscall ``name`` (``SYS_open``, ``open``, ``__NR_open`` or ``2``).

    Raises UsageError (with a "did you mean") for a name libseccomp does not know.
    """
    from tinyjail import descriptions, risk
    from tinyjail.groups import groups_of

    canon = syscalls.canonical_name(name)
    expl = Explanation(
        name=canon,
        number=syscalls.number(canon),
        description=descriptions.describe(canon),
        groups=list(groups_of(canon)),
        risk=risk.RISK.get(canon),
        dangerous=risk.is_dangerous(canon),
        traces=[t.name for t in traces],
        lossy=[f"{t.name} ({t.dropped} dropped)" for t in traces if t.lossy],
    )
    for trace in traces:
        _add_trace(expl, trace)
    _finish(expl)
    if traces and not expl.seen:
        expl.relatives = relatives_seen(canon, traces)
    if policy is not None:
        expl.verdict = _verdict(canon, traces, policy)
    return expl


def relatives_seen(name: str, traces: Sequence[Trace]) -> list[Relative]:
    """Syscalls of the traces that do a similar job: its family first, then members of its smallest
    shared systemd groups; most calls first, ties by name (sets iterate in a per-run order)."""
    from tinyjail.groups import expand, groups_of

    counts: dict[str, int] = {}
    for trace in traces:
        vc = trace.events["name"].astype("string").value_counts()
        for nm, c in vc.items():
            counts[str(nm)] = counts.get(str(nm), 0) + int(c)
    out: list[Relative] = []
    family = set().union(*(f for f in RELATIVES if name in f)) - {name}
    for nm in sorted(family & counts.keys(), key=lambda n: (-counts[n], n)):
        out.append(Relative(nm, counts[nm], "same job"))
    taken = {r.name for r in out} | {name}
    budget = 5  # group mates shown at most, from the smallest (most specific) group on
    specific = [g for g in groups_of(name) if g not in _UMBRELLA_GROUPS]
    for group in sorted(specific, key=lambda g: (len(expand(g)), g)):
        mates = sorted((expand(group) & counts.keys()) - taken, key=lambda n: (-counts[n], n))
        for nm in mates[:budget]:
            out.append(Relative(nm, counts[nm], f"also in {group}"))
            taken.add(nm)
            budget -= 1
    return out


def format_frame(module: Any, symbol: Any, offset: Any, file: Any, line: Any, ip: int) -> str:
    """``libc.so.6!__open64+0x4b io/open64.c:41`` (the parts that are known)."""
    mod = os.path.basename(str(module)) if _present(module) else "[unknown]"
    if _present(symbol):
        off = int(offset) if _present(offset) else 0
        text = f"{mod}!{symbol}+{off:#x}"
    elif _present(offset) and int(offset) >= 0:
        text = f"{mod}+{int(offset):#x}"
    else:
        text = f"{mod}@{ip:#x}"
    if _present(file):
        text += f" {file}" + (f":{int(line)}" if _present(line) and int(line) >= 0 else "")
    return text


# --- gathering ----------------------------------------------------------------------------------


def _add_trace(expl: Explanation, trace: Trace) -> None:
    ev = trace.events
    if not len(ev):
        return
    mine = ev[ev["name"].astype("string") == expl.name]
    if not len(mine):
        return
    expl.count += len(mine)
    start = _trace_start(trace)

    errs = mine["errno"].astype("string").dropna().value_counts()
    expl.failed.extend((str(k), int(v)) for k, v in errs.items())

    procs = mine.astype({"comm": "string"}).groupby(["pid", "comm"], observed=True).size()
    for key, count in procs.items():
        assert isinstance(key, tuple)
        pid, comm = key
        expl.processes.append(ProcessUse(int(pid), str(comm), int(count)))

    expl.call_sites.extend(_call_sites(mine, trace, start))

    paths = mine["path"].astype("string").dropna()
    expl.paths.extend((str(k), int(v)) for k, v in paths.value_counts().items())

    for index in range(6):
        values = _decoded(expl.name, index, mine[f"arg{index}"])
        if values is not None:
            expl.args.append(values)


def _call_sites(mine: pd.DataFrame, trace: Trace, start: int) -> list[CallSite]:
    """Events grouped by stack id; the events without a stack by their instruction pointer."""
    sites: list[CallSite] = []
    stacks = trace.stacks
    with_stack = mine[mine["stack_id"] >= 0]
    if len(with_stack):
        agg = with_stack.groupby("stack_id").agg(count=("ts", "size"), first=("ts", "min"))
        for sid, row in agg.iterrows():
            frames = stacks[stacks["stack_id"] == int(sid)].sort_values("depth")
            shown = [
                format_frame(f.module, f.symbol, f.offset, f.file, f.line, int(f.ip))
                for f in frames.head(FRAMES_SHOWN).itertuples(index=False)
            ]
            if not shown:
                shown = ["[stack not symbolized]"]
            sites.append(
                CallSite(
                    shown,
                    int(row["count"]),
                    int(row["first"]),
                    int(row["first"]) - start,
                    trace.name,
                    int(sid),
                )
            )
    without = mine[mine["stack_id"] < 0]
    if len(without):
        agg = without.groupby("ip").agg(count=("ts", "size"), first=("ts", "min"))
        for ip, row in agg.iterrows():
            frame = stacks[stacks["ip"] == ip].head(1)  # known from a stack taken at the same ip
            if len(frame):
                f = next(frame.itertuples(index=False))
                label = format_frame(f.module, f.symbol, f.offset, f.file, f.line, int(ip))
            else:
                label = f"ip {int(ip):#x}"
            sites.append(
                CallSite(
                    [f"{label} (no stack taken)"],
                    int(row["count"]),
                    int(row["first"]),
                    int(row["first"]) - start,
                    trace.name,
                )
            )
    return sites


def _decoded(name: str, index: int, column: pd.Series) -> ArgValues | None:
    """The symbolic values of one argument column, or None when no symbols apply to it."""
    from tinyjail.symbols import render

    counts = column.astype("uint64").value_counts()
    rendered: list[tuple[str, int]] = []
    any_symbolic = False
    for value, count in counts.items():
        try:
            text = render(name, index, int(value), "SCMP_CMP_EQ")
        except (ValueError, KeyError):
            text = None
        any_symbolic = any_symbolic or text is not None
        rendered.append((text if text is not None else hex(int(value)), int(count)))
    if not any_symbolic:
        return None
    return ArgValues(index=index, values=rendered, distinct=len(rendered))


def _finish(expl: Explanation) -> None:
    """Merge the per-trace pieces and keep the top entries."""
    expl.failed = _merged(expl.failed)
    expl.paths = _merged(expl.paths)
    procs: dict[tuple[int, str], int] = {}
    for p in expl.processes:
        procs[(p.pid, p.comm)] = procs.get((p.pid, p.comm), 0) + p.count
    expl.processes = [
        ProcessUse(pid, comm, n) for (pid, comm), n in sorted(procs.items(), key=lambda kv: -kv[1])
    ]
    expl.call_sites = _merged_sites(expl.call_sites)
    expl.call_sites_total = len(expl.call_sites)
    expl.call_sites = sorted(expl.call_sites, key=lambda s: (-s.count, s.first_ts))[:TOP]
    merged_args: dict[int, dict[str, int]] = {}
    for a in expl.args:
        bucket = merged_args.setdefault(a.index, {})
        for text, n in a.values:
            bucket[text] = bucket.get(text, 0) + n
    expl.args = [
        ArgValues(i, sorted(v.items(), key=lambda kv: -kv[1])[:TOP], len(v))
        for i, v in sorted(merged_args.items())
    ]


def _merged_sites(sites: list[CallSite]) -> list[CallSite]:
    """One site per (trace, symbolized frames): the same code path in several processes (each with
    its own address-space layout, so its own stack ids and ips) is one call site."""
    merged: dict[tuple[str, tuple[str, ...]], CallSite] = {}
    for site in sites:
        key = (site.trace, tuple(site.frames))
        have = merged.get(key)
        if have is None:
            merged[key] = CallSite(
                list(site.frames), site.count, site.first_ts, site.first_offset_ns, site.trace, site.stack_id
            )
            continue
        have.count += site.count
        if site.first_ts < have.first_ts:
            have.first_ts, have.first_offset_ns, have.stack_id = (
                site.first_ts,
                site.first_offset_ns,
                site.stack_id,
            )
    return list(merged.values())


def _merged(pairs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    acc: dict[str, int] = {}
    for k, n in pairs:
        acc[k] = acc.get(k, 0) + n
    return sorted(acc.items(), key=lambda kv: -kv[1])


def _verdict(name: str, traces: Sequence[Trace], policy: Policy) -> Verdict:
    from tinyjail.tracer.profile import seen_calls

    from tinyjail.policy import DENY_ACTIONS, effective_rules, evaluate

    rules = [r for r in effective_rules(policy) if r.name == name]
    action, ret = otherwise_action(policy, name)
    verdict = Verdict(policy=policy.source or "<policy>", action=action, errno=ret,
                      conditional=any(r.args for r in rules),
                      conditional_actions=sorted({r.action for r in rules if r.args}))
    shapes = seen_calls(traces, detail=lambda n: n == name).get(name, [])
    # Only the argument slots some rule compares can change the verdict: judge each distinct
    # projection once (a 1M-event `read` has ~1M distinct buffer addresses but one projection).
    checked = {a.index for r in rules for a in r.args}
    judged: dict[tuple[int, ...], tuple[str, int | None]] = {}
    for shape in shapes:
        key = tuple(v if i in checked else 0 for i, v in enumerate(shape.args))
        if key not in judged:
            judged[key] = evaluate(policy, name, key)
        act, err = judged[key]
        if act in DENY_ACTIONS:
            verdict.recorded_denied += shape.count
            if len(verdict.denied_examples) < 3:
                args = ", ".join(hex(a) for a in shape.args[:4])
                verdict.denied_examples.append(f"{name}({args}, ...) -> {act}" + (f" ({err})" if err else ""))
        else:
            verdict.recorded_allowed += shape.count
    return verdict


def otherwise_action(policy: Policy, name: str) -> tuple[str, int | None]:
    """(action, errno) for a call of ``name`` that none of its argument rules matches.

    That is the name's unconditional rule if the compiled policy has one, else the default
    action. Evaluating some fixed arguments (all zero) would instead answer with whichever
    argument rule those values happen to satisfy.
    """
    from tinyjail.policy import effective_rules, evaluate, ret_errno

    rules = [r for r in effective_rules(policy) if r.name == name]
    if not any(r.args for r in rules):
        return evaluate(policy, name)   # no argument rule: any arguments give the answer
    plain = [r for r in rules if not r.args]
    if plain:
        return plain[0].action, ret_errno(plain[0].action, plain[0].errno_ret)
    return policy.default_action, ret_errno(policy.default_action, policy.default_errno_ret)


def _trace_start(trace: Trace) -> int:
    starts = [int(df["ts"].min()) for df in (trace.events, trace.processes) if len(df)]
    return min(starts) if starts else 0


# --- rendering ----------------------------------------------------------------------------------


def renderable(expl: Explanation) -> RenderableType:
    """The explanation as rich renderables (the CLI prints it; tests render it to text)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[RenderableType] = []
    head = Text()
    head.append(expl.name, style="bold")
    head.append(
        f" (x86_64 #{expl.number})" if expl.number is not None else " (not an x86_64 syscall)", style="dim"
    )
    head.append(f": {expl.description}")
    parts.append(head)
    parts.append(Text(f"groups: {', '.join(expl.groups) if expl.groups else '(none)'}"))
    if expl.risk:
        parts.append(Text(f"risk: {expl.risk}", style="bold red" if expl.dangerous else "yellow"))
    else:
        parts.append(Text("risk: no special risk recorded", style="dim"))
    for lossy in expl.lossy:
        parts.append(Text(f"warning: lossy trace {lossy}: counts below may be low", style="bold yellow"))

    if expl.traces:
        parts.append(Text(""))
        where = ", ".join(expl.traces)
        if not expl.seen:
            parts.append(Text(f"not called in {where}", style="bold"))
            if expl.relatives:
                rel = ", ".join(f"{r.name} ({r.count}x, {r.why})" for r in expl.relatives)
                parts.append(Text(f"nearest relatives seen: {rel}"))
            else:
                parts.append(Text("no relative of it was called either"))
        else:
            failed = sum(n for _, n in expl.failed)
            line = f"{expl.count} calls in {where}"
            if failed:
                line += f"; {failed} failed (" + ", ".join(f"{e} {n}" for e, n in expl.failed[:4]) + ")"
            parts.append(Text(line, style="bold"))
            procs = ", ".join(f"{p.comm}[{p.pid}] {p.count}" for p in expl.processes[:TOP])
            more = f" and {len(expl.processes) - TOP} more" if len(expl.processes) > TOP else ""
            parts.append(Text(f"processes: {procs}{more}"))
            if expl.call_sites:
                sites = Table(
                    title=f"call sites (top {len(expl.call_sites)} of {expl.call_sites_total})",
                    title_justify="left",
                    show_edge=False,
                )
                sites.add_column("calls", justify="right")
                sites.add_column("first at", justify="right")
                sites.add_column("stack (innermost first)")
                for s in expl.call_sites:
                    sites.add_row(
                        str(s.count), f"{s.first_offset_ns / 1e6:.3f} ms", Text("\n".join(s.frames))
                    )
                parts.append(sites)
            if expl.paths:
                paths = Table(title="paths", title_justify="left", show_edge=False)
                paths.add_column("calls", justify="right")
                paths.add_column("path")
                for p, n in expl.paths[:TOP]:
                    paths.add_row(str(n), Text(p))
                if len(expl.paths) > TOP:
                    paths.add_row("", f"... {len(expl.paths) - TOP} more")
                parts.append(paths)
            for a in expl.args:
                vals = ", ".join(f"{t} ({n})" for t, n in a.values)
                more = f", ... {a.distinct - len(a.values)} more" if a.distinct > len(a.values) else ""
                parts.append(Text(f"arg{a.index}: {vals}{more}"))
    if expl.verdict is not None:
        parts.append(Text(""))
        parts.append(_verdict_text(expl))
    return Group(*parts)


def _verdict_text(expl: Explanation) -> RenderableType:
    from rich.text import Text

    from tinyjail.policy import DENY_ACTIONS, PERMIT_ACTIONS

    v = expl.verdict
    assert v is not None
    denies = v.action in DENY_ACTIONS
    act = v.action + (f" (errno {v.errno})" if v.errno is not None and v.action == "SCMP_ACT_ERRNO" else "")
    text = Text()
    text.append(f"policy {v.policy}: ")
    if v.conditional and denies and any(a in PERMIT_ACTIONS for a in v.conditional_actions):
        text.append(f"allowed only for some argument values (otherwise {act})", style="yellow")
    elif v.conditional:
        text.append(f"{' or '.join(v.conditional_actions)} for some argument values (otherwise {act})",
                    style="yellow")
    else:
        text.append(("denies it: " if denies else "allows it: ") + act, style="red" if denies else "green")
    recorded = v.recorded_allowed + v.recorded_denied
    if recorded:
        if v.recorded_denied:
            text.append(f"; denies {v.recorded_denied} of {recorded} recorded calls", style="bold red")
            for ex in v.denied_examples:
                text.append(f"\n  {ex}")
        else:
            text.append(f"; allows all {recorded} recorded calls", style="green")
    return text


def render(expl: Explanation, console: Console | None = None) -> None:
    """Print the explanation (to stdout unless ``console`` is given)."""
    from rich.console import Console

    (console or Console()).print(renderable(expl))


__all__ = [
    "RELATIVES",
    "ArgValues",
    "CallSite",
    "Explanation",
    "ProcessUse",
    "Relative",
    "Verdict",
    "explain",
    "format_frame",
    "otherwise_action",
    "relatives_seen",
    "render",
    "renderable",
]
