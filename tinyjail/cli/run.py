"""`tinyjail run`: run a command under a policy, in enforce or complain mode.

Kept light (no pandas, bcc or dash; rich only for the complain table) because its start-up
time is part of every run.
"""

from __future__ import annotations

import click

from tinyjail.errors import TinyjailError


@click.command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option("--policy", "-p", "policy_path", required=True, type=click.Path(dir_okay=False),
              help="OCI seccomp policy (linux.seccomp object, runc config.json or moby profile).")
@click.option("--mode", type=click.Choice(["enforce", "complain"]), default="enforce", show_default=True,
              help="enforce: refuse as the policy says; complain: log would-be denials and let CMD run.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="complain mode: write the would-be-denied syscalls as JSON to this file.")
@click.option("--force", is_flag=True, help="Overwrite an existing --report file.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(policy_path: str, mode: str, report_path: str | None, force: bool, command: tuple[str, ...]) -> int:
    """Run COMMAND under the policy; exits with COMMAND's status (128+N on signal N, 159 on a
    seccomp kill, 125 when the filter cannot be applied: then COMMAND never ran).

    Example: tinyjail run --policy app.json --mode complain --report r.json -- ./app --flag
    """
    from tinyjail import enforce
    from tinyjail.enforce.complain import check_writable
    from tinyjail.policy import load

    if report_path is not None:
        if mode != "complain":
            raise click.UsageError("--report needs --mode complain")
        check_writable(report_path, force)     # before CMD runs: a bad path must not cost its result
    policy = load(policy_path)
    result = enforce.run(policy, list(command), mode,
                         on_note=lambda line: click.echo(f"tinyjail: {line}", err=True))
    for line in result.messages:
        click.echo(f"tinyjail: {line}", err=True)
    if result.report is not None:
        from rich.console import Console

        enforce.complain.render(result.report, Console(stderr=True))
        if report_path is not None:
            try:
                written = enforce.write_report(result.report, report_path, force)
            except TinyjailError as err:   # CMD ran: its status is still what we exit with
                click.echo(f"tinyjail: error: {err}; the report was not written", err=True)
            else:
                click.echo(f"tinyjail: report written to {written}", err=True)
    return result.exit_status
