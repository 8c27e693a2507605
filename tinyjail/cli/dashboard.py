"""`tinyjail dashboard [TRACE ...]`: serve the web dashboard of traces and a policy on loopback."""

from __future__ import annotations

from pathlib import Path

import click

from tinyjail.errors import UsageError

SAMPLE_TRACES = Path(__file__).resolve().parent.parent.parent / "sample_traces"
"""The traces bundled with the repository, opened when no TRACE is given."""


def sample_traces(root: Path = SAMPLE_TRACES) -> list[Path]:
    """Every trace directory (one holding a meta.json) under ``root``, sorted by name."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "meta.json").is_file())


@click.command()
@click.argument("traces", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "-p",
    "--policy",
    "policy_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Policy to compare every trace to (default: the profile generated from each trace).",
)
@click.option(
    "--static",
    "static_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help='JSON file of syscall names a static analysis found: ["read", "openat", ...] or '
    '{"syscalls": [...]}. Adds a "static analysis only" status to Seen vs missed.',
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback exposes your traces to the network.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8050,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option("--no-browser", is_flag=True, help="Do not open a web browser.")
def dashboard(
    traces: tuple[Path, ...],
    policy_path: Path | None,
    static_path: Path | None,
    host: str,
    port: int,
    no_browser: bool,
) -> None:
    """Serve the dashboard of TRACE directories (default: the bundled sample_traces/).

    Only the traces named here are served; the browser picks them by number, never by path.
    """
    paths = list(traces) or sample_traces()
    if not paths:
        raise UsageError(
            f"no TRACE given and no sample traces in {SAMPLE_TRACES}; "
            "record one with 'tinyjail trace -o TRACE -- CMD'"
        )
    from tinyjail.dashboard.app import create_app, is_loopback, make_server
    from tinyjail.dashboard.data import load_static
    from tinyjail.timeline import load

    loaded = [load(p) for p in paths]
    policy = None
    if policy_path is not None:
        from tinyjail.policy import load as load_policy

        policy = load_policy(policy_path)
    static = load_static(static_path) if static_path is not None else None

    if not is_loopback(host):
        click.secho(
            f"WARNING: listening on {host}, not loopback: anyone who can reach this address can read "
            "these traces (commands, paths, arguments) and there is no authentication. "
            "Use --host 127.0.0.1 unless you mean it.",
            fg="red",
            bold=True,
            err=True,
        )
    app = create_app(loaded, policy, static)
    try:
        server = make_server(app, host, port)
    except OSError as err:
        raise UsageError(
            f"cannot listen on {host}:{port}: {err.strerror or err}; choose another --port"
        ) from None
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.port}/"
    names = ", ".join(t.name for t in loaded)
    click.echo(f"tinyjail dashboard: {len(loaded)} trace(s) ({names}) at {url}  (Ctrl-C to stop)")
    if not no_browser:
        import threading
        import webbrowser

        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
