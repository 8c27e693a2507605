"""`tinyjail explain SYSCALL`: what a syscall does, where traces made it, whether a policy allows it."""

from __future__ import annotations

import click


@click.command()
@click.argument("syscall")
@click.option(
    "-t",
    "--trace",
    "traces",
    multiple=True,
    type=click.Path(path_type=str),
    help="Trace directory to look the syscall up in (repeatable).",
)
@click.option(
    "-p",
    "--policy",
    "policy_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="Policy to evaluate the syscall (and every recorded call of it) against.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
def explain(syscall: str, traces: tuple[str, ...], policy_path: str | None, as_json: bool) -> None:
    """Explain SYSCALL (open, SYS_open, __NR_open or 2)."""
    from tinyjail import syscalls

    name = syscalls.canonical_name(syscall)  # unknown name: one line with a suggestion, exit 2
    from tinyjail.timeline import load
    from tinyjail.tracer.explain import explain as explain_syscall
    from tinyjail.tracer.explain import render

    pol = None
    if policy_path is not None:
        from tinyjail.policy import load as load_policy

        pol = load_policy(policy_path)
    loaded = [load(t) for t in traces]
    expl = explain_syscall(name, loaded, pol)
    if as_json:
        import dataclasses
        import json

        click.echo(json.dumps(dataclasses.asdict(expl), indent=2))
        return
    render(expl)
