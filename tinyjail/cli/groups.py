"""`tinyjail groups [@GROUP] [--of SYSCALL]`: systemd's syscall groups."""

from __future__ import annotations

import click


@click.command("groups")
@click.argument("group", required=False)
@click.option("--of", "of", metavar="SYSCALL", help="List the groups that contain SYSCALL.")
@click.option("--names", "names_only", is_flag=True, help="With GROUP: print bare names, one per line.")
def groups(group: str | None, of: str | None, names_only: bool) -> None:
    """List the syscall groups (systemd 252) with their sizes, the members of GROUP, or the
    groups of a syscall (--of). Members the x86_64 ABI lacks are shown dimmed."""
    from rich.console import Console
    from rich.table import Table

    from tinyjail import groups as grp
    from tinyjail import syscalls
    from tinyjail.errors import UsageError

    console = Console()
    native = syscalls.table("x86_64")
    if group is not None and of is not None:
        raise UsageError("give either a GROUP or --of SYSCALL, not both")
    if of is not None:
        name = syscalls.canonical_name(of)
        direct = set(grp.direct_groups_of(name))
        found = grp.groups_of(name)
        if not found:
            click.echo(f"{name} is in no group")
            return
        table = Table(title=f"groups containing {name}")
        table.add_column("group", no_wrap=True)
        table.add_column("how")
        table.add_column("description")
        for g in found:
            how = "listed" if g in direct else "via " + ", ".join(
                n for n in grp.GROUPS[g] if n.startswith("@") and name in grp.expand(n))
            table.add_row(g, how, grp.GROUP_HELP[g])
        console.print(table)
        return
    if group is not None:
        from tinyjail import risk
        from tinyjail.descriptions import describe

        key = group if group.startswith("@") else f"@{group}"
        members = sorted(grp.expand(key))   # UsageError with a suggestion when unknown
        if names_only:
            for name in members:
                click.echo(name)
            return
        nested = [n for n in grp.GROUPS[key] if n.startswith("@")]
        title = f"{key}: {grp.GROUP_HELP[key]} ({len(members)} syscalls"
        title += f", includes {', '.join(nested)})" if nested else ")"
        table = Table(title=title)
        table.add_column("syscall", no_wrap=True)
        table.add_column("x86_64", justify="right")
        table.add_column("what it does / why it is dangerous", overflow="fold")
        for name in members:
            nr = native.get(name)
            why = risk.why(name)
            text = describe(name) + (f"  [red]! {why}[/]" if why else "")
            style = "" if nr is not None else "dim"
            shown = f"[red]{name}[/]" if why else name
            table.add_row(shown, "-" if nr is None else str(nr), text, style=style)
        console.print(table)
        return
    table = Table(title="syscall groups (systemd 252); use inside a policy's names, e.g. \"@file-system\"")
    table.add_column("group", no_wrap=True)
    table.add_column("syscalls", justify="right")
    table.add_column("on x86_64", justify="right")
    table.add_column("description")
    for g in grp.GROUPS:
        expanded = grp.expand(g)
        table.add_row(g, str(len(expanded)), str(len(expanded & native.keys())), grp.GROUP_HELP[g])
    console.print(table)
