"""`tinyjail trace`: record every syscall of CMD and its children; optionally write its profile.

Thin: the recording is `tinyjail.tracer.record_to`, the profile `tinyjail.tracer.profile.generate`,
the Chrome export `tinyjail.tracer.chrome.export`. CMD keeps the terminal; tinyjail's own lines
go to stderr and it exits with CMD's status.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from tinyjail.errors import UsageError


def _default_output(cmd: str) -> str:
    return f"trace-{os.path.basename(cmd) or 'cmd'}-{time.strftime('%Y%m%d-%H%M%S')}"


@click.command(context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})
@click.option("-o", "--output", type=click.Path(path_type=str), help="Trace directory to write.")
@click.option("--profile", "profile_out", type=click.Path(dir_okay=False, path_type=str),
              help="Also write a deny-by-default OCI seccomp profile from this trace.")
@click.option("--policy", type=click.Path(dir_okay=False, path_type=str),
              help="Run CMD under this policy (see --mode) and record its seccomp log/denials.")
@click.option("--mode", type=click.Choice(["complain", "enforce"]), default=None,
              help="With --policy: complain logs what the policy would deny (default), enforce denies it.")
@click.option("--no-stacks", is_flag=True, help="Do not take user stacks (call sites).")
@click.option("--durations", is_flag=True,
              help="Also hook syscall entry: ts = entry time and duration_ns measured (costs more per "
                   "syscall); by default calls are recorded at exit with duration_ns = -1.")
@click.option("--allow-lossy", is_flag=True, help="Write --profile even when events were dropped.")
@click.option("--force", is_flag=True, help="Overwrite an existing trace directory / profile file.")
@click.option("--export-chrome", nargs=2, type=click.Path(path_type=str), default=None,
              metavar="TRACE OUT.json", help="Convert a recorded trace to Chrome/Perfetto JSON and exit.")
@click.option("--ring-pages", type=int, default=None, hidden=True,
              help="Event ring size in pages (a power of two); tests use a tiny one to force drops.")
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED)
def trace(
    output: str | None,
    profile_out: str | None,
    policy: str | None,
    mode: str | None,
    no_stacks: bool,
    durations: bool,
    allow_lossy: bool,
    force: bool,
    export_chrome: tuple[str, str] | None,
    ring_pages: int | None,
    cmd: tuple[str, ...],
) -> int:
    """Record every syscall of CMD (all threads, forks and execs) with eBPF.

    \b
    tinyjail trace -o T -- CMD [ARGS]          record into directory T
    tinyjail trace --profile P.json -- CMD     ... and write its profile
    tinyjail trace --export-chrome T out.json  open T in ui.perfetto.dev
    """
    if export_chrome is not None:
        if cmd:
            raise UsageError("--export-chrome takes no command")
        from tinyjail.timeline import load
        from tinyjail.tracer.chrome import export

        src, dest = export_chrome
        export(load(src), dest, force=force)   # refuses an existing name (a dangling link too)
        click.echo(f"wrote {dest} (open it in ui.perfetto.dev or chrome://tracing)", err=True)
        return 0
    if not cmd:
        raise UsageError("no command given: tinyjail trace [-o TRACE] -- CMD [ARGS]")
    if mode is not None and policy is None:
        raise UsageError("--mode needs --policy P")
    if profile_out is not None and Path(profile_out).exists() and not force:
        raise UsageError(f"{profile_out}: already exists; pass --force to overwrite")
    pol = None
    if policy is not None:
        from tinyjail import policy as policy_mod

        pol = policy_mod.load(policy)
    out = output or _default_output(cmd[0])

    from tinyjail.tracer.recorder import record_to

    result = record_to(list(cmd), out, stacks=not no_stacks, policy=pol, mode=mode, progress=True,
                       force=force, ring_pages=ring_pages, durations=durations)
    for line in result.messages:
        click.echo(line, err=True)
    rate = result.events / result.seconds if result.seconds > 0 else 0.0
    click.echo(
        f"trace: {result.path} ({result.events:,} syscalls, {result.unique_syscalls} distinct, "
        f"{rate:,.0f}/s, dropped {result.dropped}); exit status {result.exit_status}",
        err=True,
    )
    if result.dropped:
        click.echo(f"warning: LOSSY trace: {result.dropped} events were dropped in the kernel "
                  "(ring buffer full); a profile from it may miss syscalls", err=True)
    if pol is not None:
        click.echo(f"seccomp: {result.seccomp_records} audit record(s) from the policy's filter "
                  f"({result.meta.get('mode')} mode) are in the trace's seccomp table", err=True)
    if profile_out is not None:
        from tinyjail import policy as policy_mod
        from tinyjail.timeline import load
        from tinyjail.tracer.profile import generate

        generated = generate([load(result.path)], allow_lossy=allow_lossy)
        policy_mod.save(generated, profile_out, force=force, portable=True)
        click.echo(f"profile: {profile_out} ({len(generated.syscalls)} rules)", err=True)
    # Everything is written and closed: skip the interpreter's teardown of pandas/pyarrow/bcc
    # (0.1-0.15 s of module finalization) and leave with CMD's status right away.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(result.exit_status)
