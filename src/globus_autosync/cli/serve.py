"""``serve``: the status page, its JSON API and /metrics, without running cycles (installs driven
by cron): the state database is only ever read."""

from __future__ import annotations

import logging

import click

from globus_autosync.cli.context import Context, pass_ctx
from globus_autosync.web import app as web

log = logging.getLogger("globus_autosync")


@click.command(
    epilog=(
        "\b\n"
        "Examples:\n"
        "  globus-autosync serve --http 127.0.0.1:8470\n"
        "\n"
        "More: docs/operations.md#the-status-page"
    )
)
@click.option(
    "--http",
    "address",
    default=f"{web.DEFAULT_ADDRESS}:{web.DEFAULT_PORT}",
    show_default=True,
    metavar="ADDRESS:PORT",
    help="Where to listen; another address than 127.0.0.1 is reachable from elsewhere.",
)
@pass_ctx
def serve(obj: Context, address: str) -> None:
    """Serve the read-only status page, /api/v1 and /metrics (never writes the state database)."""
    cfg = obj.load()
    host, port = web.parse_address(address)
    server = web.make_server(host, port, web.App(lambda: cfg, obj.state_dir))
    bound = server.server_address[1]
    click.echo(f"status page on http://{_url_host(host)}:{bound}/ (Ctrl-C stops it)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


COMMANDS = [serve]  # what cli.app registers
