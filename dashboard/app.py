"""The Dash application: `create_app(traces, policy, static)` and `serve` on loopback.

The app holds only the traces it was created with (`DashboardState`); views pick one by index.
Dash's own extras that would widen what the server exposes (dev tools, the MCP endpoint) are off.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dash
from dash import dcc, html
from tinyjail.dashboard import callbacks, ids
from tinyjail.dashboard.state import DashboardState
from tinyjail.dashboard.views import overview

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

    from tinyjail.policy import Policy
    from tinyjail.timeline import Trace

ASSETS = Path(__file__).resolve().parent / "assets"


def layout(state: DashboardState) -> html.Div:
    """The page: header with the trace picker, tabs, and the current view (Overview pre-rendered,
    so the first paint needs no callback round-trip)."""
    first = state.entries[0]
    return html.Div(
        [
            dcc.Location(id=ids.URL, refresh=False),
            dcc.Store(id=ids.SYSCALL),
            html.Header(
                [
                    html.Div(
                        [html.Span("tinyjail", className="brand"), html.Span(" dashboard", className="muted")]
                    ),
                    html.Div(
                        [
                            html.Label("Trace", htmlFor=ids.TRACE),
                            dcc.Dropdown(
                                id=ids.TRACE,
                                options=state.options(),
                                value=first.index,
                                clearable=False,
                                searchable=False,
                                style={"minWidth": "280px"},
                            ),
                        ],
                        className="toolbar",
                    ),
                ],
                className="header",
            ),
            html.Div(callbacks.banner(state, 0), id=ids.BANNER),
            dcc.Tabs(
                id=ids.TABS,
                value="overview",
                className="tabs",
                children=[dcc.Tab(label=label, value=value) for value, label in ids.VIEWS.items()],
            ),
            dcc.Loading(
                html.Div(overview.layout(first), id=ids.VIEW, className="view"), type="dot", delay_show=400
            ),
        ],
        className="page",
    )


def create_app(
    traces: Sequence[Trace], policy: Policy | None = None, static: Iterable[str] | None = None
) -> dash.Dash:
    """A Dash app over ``traces``. ``policy``: compare every trace to it (default: the profile
    generated from each trace). ``static``: syscall names a static analysis found."""
    if not traces:
        raise ValueError("the dashboard needs at least one trace")
    state = DashboardState.build(list(traces), policy, frozenset(static) if static is not None else None)
    app = dash.Dash(
        __name__,
        assets_folder=str(ASSETS),
        title="tinyjail dashboard",
        update_title="",
        suppress_callback_exceptions=True,
        serve_locally=True,
        enable_mcp=False,
    )
    app.layout = lambda: layout(state)
    callbacks.register(app, state)
    app.tinyjail_state = state  # type: ignore[attr-defined]
    return app


def is_loopback(host: str) -> bool:
    """True when ``host`` only reaches this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def make_server(app: dash.Dash, host: str = "127.0.0.1", port: int = 8050) -> BaseWSGIServer:
    """A threaded WSGI server for ``app`` (port 0: any free port; see ``server.port``).

    The socket is bound here so that a busy port raises OSError for the caller to report
    (werkzeug would print its own lines and exit)."""
    import logging

    from werkzeug.serving import make_server as _make

    family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request on the terminal
        return _make(host, sock.getsockname()[1], app.server, threaded=True, fd=sock.fileno())
    finally:
        sock.close()  # werkzeug holds its own duplicate of the descriptor


def serve_in_thread(app: dash.Dash, host: str = "127.0.0.1", port: int = 0) -> tuple[BaseWSGIServer, Any]:
    """Start ``app`` in a daemon thread (tests, benchmarks); stop it with ``server.shutdown()``."""
    server = make_server(app, host, port)
    thread = threading.Thread(target=server.serve_forever, name="tinyjail-dashboard", daemon=True)
    thread.start()
    return server, thread


__all__ = ["create_app", "is_loopback", "make_server", "serve_in_thread"]
