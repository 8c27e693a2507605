"""`tinyjail policy check|show|export|merge|diff`: thin commands over `tinyjail.policy`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.text import Text

    from tinyjail.policy import Arg, Policy, SyscallRule

_ACTION_STYLE = {
    "SCMP_ACT_ALLOW": "green",
    "SCMP_ACT_LOG": "cyan",
    "SCMP_ACT_NOTIFY": "magenta",
    "SCMP_ACT_TRACE": "magenta",
    "SCMP_ACT_ERRNO": "yellow",
    "SCMP_ACT_TRAP": "red",
    "SCMP_ACT_KILL": "bold red",
    "SCMP_ACT_KILL_THREAD": "bold red",
    "SCMP_ACT_KILL_PROCESS": "bold red",
}


@click.group("policy")
def policy() -> None:
    """Check, show, export, merge and diff OCI seccomp policies (runtime-spec linux.seccomp,
    runc config.json or Docker/moby profiles)."""


@policy.command("check")
@click.argument("files", nargs=-1, required=True)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing for valid files.")
def check(files: tuple[str, ...], quiet: bool) -> None:
    """Validate policy FILES and report every problem (exit 2 if any file is invalid), including
    what `tinyjail run` would refuse to enforce (a rule libseccomp cannot express, a program over
    the kernel's 4096 instructions, an unsupported flag, SCMP_ACT_NOTIFY without a supervisor)."""
    from tinyjail import policy as pol
    from tinyjail.errors import PolicyError

    problems: list[str] = []
    for path in files:
        try:
            loaded = pol.load(path)
        except PolicyError as err:
            problems.extend(err.problems)
            continue
        refused = _enforcement_problems(loaded)
        if refused:
            problems.extend(refused)
            continue
        if quiet:
            continue
        for note in pol.notes(loaded):
            click.echo(f"note: {note}")
        rules = pol.effective_rules(loaded)
        allowed = {r.name for r in rules if r.action in pol.PERMIT_ACTIONS}
        default = pol.show_action(loaded.default_action, loaded.default_errno_ret)
        click.echo(f"{path}: ok ({len(loaded.syscalls)} entries, {len(rules)} compiled rules on x86_64, "
                   f"{len(allowed)} syscalls can pass, default {default})")
    if problems:
        raise PolicyError(problems)


def _enforcement_problems(loaded: Policy) -> list[str]:
    """What `tinyjail run` would refuse (exit 125) about a valid policy, one line each: the
    same plan, libseccomp build and program-size check as `run` (enforce mode), so a policy
    that checks ok is one run can load."""
    from tinyjail import enforce
    from tinyjail.errors import EnforceError, PolicyError

    try:
        enforce.build_filter(loaded)
    except EnforceError as err:
        return err.problems if isinstance(err, PolicyError) else [str(err)]
    return []


@policy.command("show")
@click.argument("file")
@click.option("--effective", is_flag=True,
              help="Show the compiled rules for this machine (groups expanded, moby conditions applied).")
@click.option("--cap", "caps", multiple=True, metavar="CAP_X",
              help="With --effective: a capability the container has (moby includes/excludes.caps).")
def show(file: str, effective: bool, caps: tuple[str, ...]) -> None:
    """Print a policy as a table: groups collapsed, dangerous syscalls marked, symbolic values."""
    from rich.console import Console
    from rich.table import Table

    from tinyjail import policy as pol
    from tinyjail import risk

    loaded = pol.load(file)
    console = Console()
    default = pol.show_action(loaded.default_action, loaded.default_errno_ret)
    head = f"[bold]{file}[/]  default [bold]{default}[/]"
    arches = pol.effective_architectures(loaded)
    head += f"  architectures {' '.join(a.removeprefix('SCMP_ARCH_') for a in arches)}"
    if loaded.flags:
        head += f"  flags {' '.join(loaded.flags)}"
    if loaded.listener_path:
        head += f"  listener {loaded.listener_path}"
    console.print(head)

    table = Table(show_lines=True, expand=True)
    table.add_column("#", justify="right", style="dim")
    table.add_column("action", no_wrap=True)
    table.add_column("syscalls (! = dangerous)", ratio=3)
    table.add_column("when", ratio=1, overflow="fold")
    rows = _effective_rows(loaded, caps) if effective else _written_rows(loaded)
    # what can pass is decided by the compiled rules (a name written explicitly takes its
    # group's members out of the group's rule), not by the rows as written
    passing = {r.name for r in pol.effective_rules(loaded, caps=caps) if r.action in pol.PERMIT_ACTIONS}
    dangerous = {n for n in passing if risk.is_dangerous(n)}
    for n, (action, errno_ret, names, args, when) in enumerate(rows):
        from rich.text import Text

        style = _ACTION_STYLE.get(action, "")
        shown = _names_text(names, action in pol.PERMIT_ACTIONS, dangerous)
        cond = " && ".join(_arg_text(names, a) for a in args)
        table.add_row(str(n), Text(pol.show_action(action, errno_ret), style=style), shown,
                      "; ".join(x for x in (cond, when) if x))
    console.print(table)
    if dangerous:
        from tinyjail.enforce import IO_URING

        console.print("[bold red]dangerous syscalls that can pass:[/]")
        for name in sorted(dangerous):
            extra = ""
            if name in IO_URING and not _named_literally(loaded, name):
                extra = (" [dim](tinyjail run refuses it unless a rule names it; "
                         "runc, podman and Docker let it pass)[/]")
            console.print(f"  [red]{name}[/]: {risk.why(name)}{extra}")


def _written_rows(loaded: Policy) -> list[_Row]:
    from tinyjail import groups
    from tinyjail.policy_model import condition_key, explicit_names, group_applies

    explicit = explicit_names(loaded.syscalls, by_conditions=True)
    rows = []
    for rule in loaded.syscalls:
        plain = [n for n in rule.names if not n.startswith("@")]
        written_groups = [n for n in rule.names if n.startswith("@")]
        names = written_groups + [n for n in groups.collapse(plain) if n not in written_groups]
        cond = condition_key(rule)
        overridden = sorted({m for g in written_groups for m in groups.expand(g)
                             if m not in plain and not group_applies(explicit, m, cond)})
        when = [_moby_text(rule)]
        if overridden:
            when.append(f"except {', '.join(overridden)} (named explicitly)")
        rows.append((rule.action, rule.errno_ret, names, list(rule.args), "; ".join(w for w in when if w)))
    return rows


_Row = tuple[str, "int | None", list[str], list["Arg"], str]


def _effective_rows(loaded: Policy, caps: tuple[str, ...]) -> list[_Row]:
    from tinyjail import groups
    from tinyjail import policy as pol

    bucket: dict[tuple[str, int | None, tuple[Arg, ...]], list[str]] = {}
    for rule in pol.effective_rules(loaded, caps=caps):
        bucket.setdefault((rule.action, rule.errno_ret, rule.args), []).append(rule.name)
    rows = []
    order = sorted(bucket.items(), key=lambda kv: (pol.strictness(kv[0][0]), str(kv[0])))
    for (action, errno_ret, args), names in order:
        rows.append((action, errno_ret, groups.collapse(names), list(args), ""))
    return rows


def _moby_text(rule: SyscallRule) -> str:
    parts = []
    for label, cond in (("only if", rule.includes), ("unless", rule.excludes)):
        for key, value in cond.items():
            shown = ",".join(value) if isinstance(value, list) else f"kernel>={value}"
            parts.append(f"{label} {key}={shown}" if key != "minKernel" else f"{label} {shown}")
    return "; ".join(parts)


def _arg_text(names: list[str], arg: Arg) -> str:
    """Arg condition text with numeric values rendered symbolically when tinyjail.symbols can
    (``a2 & O_ACCMODE == O_RDONLY``: a MASKED_EQ ``valueTwo`` of 0 is named too when its table
    has a name for 0)."""
    from dataclasses import replace

    syscall = next((n for n in names if not n.startswith("@")), None)
    if syscall is None:
        return arg.text()
    try:
        from tinyjail import symbols

        sym = arg.symbolic or symbols.render(syscall, arg.index, arg.value, arg.op)
        two = arg.symbolic_two
        if two is None and arg.op == "SCMP_CMP_MASKED_EQ":
            two = symbols.render(syscall, arg.index, arg.value_two, "SCMP_CMP_EQ")
    except Exception:   # display only: a missing/broken symbol table must not hide the policy
        return arg.text()
    return replace(arg, symbolic=sym, symbolic_two=two).text()


def _named_literally(loaded: Policy, name: str) -> bool:
    return any(name in rule.names for rule in loaded.syscalls)


def _names_text(names: list[str], permits: bool, dangerous: set[str]) -> Text:
    """Names of one row, a group with the count of its dangerous members that can pass
    (``dangerous``: those the compiled policy lets through)."""
    from rich.text import Text

    from tinyjail import groups, risk

    out = Text()
    for i, name in enumerate(names):
        if i:
            out.append(", ")
        if name.startswith("@"):
            bad = sorted(n for n in groups.expand(name) if n in dangerous)
            out.append(name, style="bold")
            if bad and permits:
                out.append(f" (!{len(bad)})", style="red")
        elif risk.is_dangerous(name):
            out.append(f"{name}!", style="red")
        else:
            out.append(name)
    return out


_CAP_OPTION_HELP = ("A capability the container will have (decides moby includes/excludes.caps; "
                    "default: none). Repeatable.")


def _check_caps(caps: tuple[str, ...]) -> tuple[str, ...]:
    """Capability names as moby writes them; a typo would silently pick other rules."""
    import re

    from tinyjail.errors import UsageError

    for cap in caps:
        if not re.fullmatch(r"CAP_[A-Z0-9_]+", cap):
            raise UsageError(f'--cap {cap}: not a capability name (like "CAP_SYS_ADMIN")')
    return caps


@policy.command("export")
@click.argument("file")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Where to write the portable policy ('-' for standard output).")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@click.option("--cap", "caps", multiple=True, metavar="CAP_X", help=_CAP_OPTION_HELP)
def export(file: str, output: str, force: bool, caps: tuple[str, ...]) -> None:
    """Write FILE as plain OCI runtime-spec JSON that runc, crun, podman and Docker take as-is:
    @groups expanded, symbolic values written as numbers, moby includes/excludes and archMap
    evaluated for this machine. The compiled filter stays the same."""
    from pathlib import Path

    from tinyjail import policy as pol
    from tinyjail.errors import UsageError

    _check_caps(caps)
    if output != "-" and Path(output).exists() and not force:
        raise UsageError(f"{output} already exists; use --force to overwrite it")
    loaded = pol.load(file)
    portable = pol.to_portable(loaded, caps=caps)
    if output == "-":
        click.echo(pol.dumps(portable), nl=False)
    else:
        pol.save(portable, output, force=force)
    where = "standard output" if output == "-" else output
    click.echo(f"wrote {where}: {_export_summary(loaded, portable, caps)}", err=output == "-")


def _export_summary(loaded: Policy, portable: Policy, caps: tuple[str, ...]) -> str:
    """What the export changed, in one line."""
    from tinyjail import policy as pol

    used = sorted({n for r in loaded.syscalls for n in r.names if n.startswith("@")})
    symbolic = sum((a.symbolic is not None) + (a.symbolic_two is not None)
                   for r in loaded.syscalls for a in r.args)
    compiled = len(pol.effective_rules(portable, caps=caps))
    parts = [f"{len(portable.syscalls)} entries, {compiled} compiled rules on x86_64"]
    if used:
        parts.append(f"expanded {' '.join(used)}")
    if symbolic:
        parts.append(f"{symbolic} symbolic values written as numbers")
    if loaded.arch_map is not None or any(r.includes or r.excludes for r in loaded.syscalls):
        kernel = ".".join(map(str, pol.running_kernel()))
        applied = sum(pol.conditions_hold(r, caps=caps) for r in loaded.syscalls)
        parts.append(f"moby conditions evaluated for x86_64, kernel {kernel}, caps "
                     f"{','.join(caps) or 'none'} ({applied} of {len(loaded.syscalls)} entries apply)")
    if pol.is_portable(loaded):
        parts.append("the input was already portable")
    return "; ".join(parts)


@policy.command("merge")
@click.argument("a")
@click.argument("b")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Where to write the union.")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@click.option("--portable", is_flag=True,
              help="Write plain runtime-spec JSON (as 'policy export' does) instead of keeping "
                   "@groups, symbolic values and moby keys.")
@click.option("--cap", "caps", multiple=True, metavar="CAP_X", help="With --portable: " + _CAP_OPTION_HELP)
def merge(a: str, b: str, output: str, force: bool, portable: bool, caps: tuple[str, ...]) -> None:
    """Write the union of policies A and B; where they disagree the stricter action wins."""
    from pathlib import Path

    from tinyjail import policy as pol
    from tinyjail.errors import UsageError

    _check_caps(caps)
    if caps and not portable:
        raise UsageError("--cap only applies with --portable (it decides which moby rules are written)")
    if Path(output).exists() and not force:
        raise UsageError(f"{output} already exists; use --force to overwrite it")
    merged, conflicts = pol.merge(pol.load(a), pol.load(b))
    for line in conflicts:
        click.echo(f"conflict: {line}", err=True)
    if portable:
        merged = pol.to_portable(merged, caps=caps)
    pol.save(merged, output, force=force)
    resolved = f", {len(conflicts)} conflicts resolved" if conflicts else ""
    click.echo(f"wrote {output}: {len(merged.syscalls)} entries, "
               f"{len(pol.effective_rules(merged, caps=caps))} compiled rules{resolved}"
               + (" (portable)" if portable else ""))


@policy.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("--cap", "caps", multiple=True, metavar="CAP_X", help="A capability the container has (moby).")
def diff(a: str, b: str, caps: tuple[str, ...]) -> None:
    """Compare the compiled rules of A and B. Exit 0 when they are the same, 1 when they
    differ (like diff(1)), 2 on bad input."""
    from tinyjail import policy as pol

    result = pol.diff(pol.load(a), pol.load(b), caps=caps)
    if result.default_changed:
        click.echo(f"default: {result.default_a} -> {result.default_b}")
    for name in result.only_in_a:
        click.echo(f"- {name}: {result.treatment_a[name]}  (only in {a}; {b} gives {result.default_b})")
    for name in result.only_in_b:
        click.echo(f"+ {name}: {result.treatment_b[name]}  (only in {b}; {a} gives {result.default_a})")
    for name, how_a, how_b in result.changed:
        click.echo(f"~ {name}: {how_a} -> {how_b}")
    if result.same:
        click.echo("no differences")
        return
    click.get_current_context().exit(1)
