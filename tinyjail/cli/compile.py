"""`tinyjail compile`: show exactly what `tinyjail run` would load (raw BPF, libseccomp PFC)."""

from __future__ import annotations

import sys

import click

from tinyjail.errors import UsageError


@click.command("compile")
@click.argument("policy_path", metavar="POLICY", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Where to write the raw BPF program (struct sock_filter array); '-' = stdout. "
                   "Default without --pfc: POLICY with the suffix .bpf.")
@click.option("--pfc", is_flag=True,
              help="Print libseccomp's pseudo filter code (human-readable) to stdout; "
                   "no file is written unless -o is given.")
@click.option("--mode", type=click.Choice(["enforce", "complain"]), default="enforce", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def compile_cmd(policy_path: str, output: str | None, pfc: bool, mode: str, force: bool) -> None:
    """Compile POLICY to the seccomp-bpf program tinyjail run loads, hardened defaults included,
    and write it to POLICY.bpf (or -o FILE); with --pfc print libseccomp's readable form of it
    instead (and write the program only when -o is given).

    Example: tinyjail compile app.json -o app.bpf --pfc
    """
    from pathlib import Path

    from tinyjail import enforce
    from tinyjail.newfile import check_new, write_new
    from tinyjail.policy import load

    if output is None and not pfc:
        output = str(Path(policy_path).with_suffix(".bpf"))
    if output == "-" and sys.stdout.isatty():
        raise UsageError("refusing to write binary BPF to a terminal; use -o FILE")
    if output not in (None, "-"):
        check_new(output, force)          # refuse a bad -o before compiling anything
    policy = load(policy_path)
    the_plan = enforce.plan(policy, mode)
    filt = enforce._libseccomp.build_from_plan(the_plan)
    data = enforce.bpf_bytes(filt)
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    elif output is not None:
        write_new(output, data, force=force)
    for line in the_plan.hardening:
        click.echo(f"tinyjail: hardened: {line}", err=True)
    if the_plan.ignored_arches:
        click.echo(f"tinyjail: note: arches this kernel cannot run are not compiled in: "
                   f"{', '.join(the_plan.ignored_arches)}", err=True)
    where = "stdout" if output == "-" else output
    if output:
        click.echo(f"tinyjail: {len(data) // 8} BPF instructions ({len(data)} bytes) written to {where}",
                   err=True)
    if pfc:
        click.echo(enforce.pfc_text(filt), nl=False)
