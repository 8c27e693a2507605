"""The `tinyjail` command line: a thin, lazily-loaded click layer over the library.

Each command lives in its own module under `tinyjail.cli` and is imported only when it is
invoked, so `tinyjail run` never pays for pandas, bcc or dash. Library errors
(`tinyjail.errors.TinyjailError`) become one-line messages and their exit code; an OSError that
escaped every wrapper becomes `tinyjail: error: REASON: PATH` and exit 2 (TINYJAIL_DEBUG=1 shows
its traceback instead).
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from tinyjail import __version__
from tinyjail.errors import PolicyError, TinyjailError, describe_os_error

# name -> (module under tinyjail.cli, attribute, one-line help). Help is listed here so that
# `tinyjail --help` does not import every command.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "trace": ("trace", "trace", "Record every syscall of a command and its children with eBPF."),
    "profile": ("profile", "profile", "Write an OCI seccomp profile from one or more traces."),
    "explain": ("explain", "explain", "What a syscall does, where it is called, if a policy allows it."),
    "run": ("run", "run", "Run a command under a policy (enforce or complain mode)."),
    "compile": ("compile", "compile_cmd", "Compile a policy to raw BPF (and libseccomp's PFC text)."),
    "policy": ("policy", "policy", "Check, show, merge and diff OCI seccomp policies."),
    "groups": ("groups", "groups", "List syscall groups, their members, or the groups of a syscall."),
    "dashboard": ("dashboard", "dashboard", "Serve the web dashboard of traces and policies on loopback."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module = importlib.import_module(f"tinyjail.cli.{spec[0]}")
        cmd = getattr(module, spec[1])
        assert isinstance(cmd, click.Command)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinyjail")
def cli() -> None:
    """tinyjail: find the syscalls a program really needs, then lock it to exactly those."""


def fail(err: TinyjailError) -> None:
    """Print a library error the way every command does: one line per problem, no traceback."""
    lines = err.problems if isinstance(err, PolicyError) else [str(err)]
    for line in lines:
        click.echo(f"tinyjail: error: {line}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and `python -m tinyjail`; always exits."""
    try:
        rv = cli.main(args=argv, prog_name="tinyjail", standalone_mode=False)
    except TinyjailError as err:
        fail(err)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as err:   # last resort: a path tinyjail failed to wrap is still bad input, not a crash
        if os.environ.get("TINYJAIL_DEBUG", "") not in ("", "0"):
            raise
        click.echo(f"tinyjail: error: {describe_os_error(err)}", err=True)
        sys.exit(2)
    sys.exit(rv if isinstance(rv, int) else 0)
