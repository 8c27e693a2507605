"""`tinyjail profile TRACE... -o P.json`: write a deny-by-default OCI seccomp profile from traces."""

from __future__ import annotations

import click


@click.command()
@click.argument("traces", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="Profile file to write (OCI linux.seccomp JSON); '-' for stdout.",
)
@click.option(
    "--default",
    "default",
    type=click.Choice(["errno", "kill"]),
    default="errno",
    show_default=True,
    help="What unlisted syscalls get: errno = SCMP_ACT_ERRNO EPERM, kill = SCMP_ACT_KILL_PROCESS.",
)
@click.option(
    "--allow-lossy", is_flag=True, help="Accept traces that dropped events (the profile may miss syscalls)."
)
@click.option(
    "--allow-unknown",
    is_flag=True,
    help="Accept syscalls libseccomp cannot name (they stay denied by the default action).",
)
@click.option("--no-arg-rules", is_flag=True, help="Allow seen syscalls whatever their arguments.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def profile(
    traces: tuple[str, ...],
    output: str,
    default: str,
    allow_lossy: bool,
    allow_unknown: bool,
    no_arg_rules: bool,
    force: bool,
) -> None:
    """Write a profile allowing exactly the syscalls recorded in TRACE... (union), nothing else."""
    from rich.console import Console

    from tinyjail import policy as policy_mod
    from tinyjail.errors import TraceError
    from tinyjail.timeline import load
    from tinyjail.tracer.profile import event_count, generate, verify

    loaded = [load(t) for t in traces]
    pol = generate(
        loaded,
        default=default,
        allow_lossy=allow_lossy,
        infer_args=not no_arg_rules,
        allow_unknown=allow_unknown,
    )
    problems = [p for p in verify(pol, loaded) if "unknown to libseccomp" not in p]
    if problems:  # a bug, not bad input: never write a profile that would break what was recorded
        raise TraceError(f"generated profile would deny recorded calls: {'; '.join(problems[:3])}")
    if output == "-":
        click.echo(policy_mod.dumps(pol, portable=True), nl=False)
    else:
        policy_mod.save(pol, output, force=force, portable=True)
    err = Console(stderr=True, highlight=False)
    names = sorted({n for r in pol.syscalls for n in r.names})
    narrowed = sorted({n for r in pol.syscalls if r.args for n in r.names})
    default_text = pol.default_action + (" (EPERM)" if pol.default_errno_ret == 1 else "")
    where = "stdout" if output == "-" else output
    err.print(
        f"wrote {where}: {len(names)} syscalls allowed"
        + (f" ({len(narrowed)} with argument rules: {', '.join(narrowed)})" if narrowed else "")
        + f"; default {default_text}; {', '.join(pol.architectures)}"
    )
    lossy = [f"{t.name} ({t.dropped} dropped)" for t in loaded if t.lossy]
    if lossy:
        err.print(
            f"[bold yellow]warning:[/] built from lossy traces: {', '.join(lossy)}; it may miss syscalls"
        )
    err.print(f"checked: all {event_count(loaded)} recorded calls of {len(loaded)} trace(s) are allowed")
