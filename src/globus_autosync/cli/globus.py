"""The Globus commands: ``login``, ``logout``, ``whoami``, and the ``check`` line of a job's
flow. Loaded only for them (cli.app), so globus-sdk is imported at the top."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
import globus_sdk

from globus_autosync import config
from globus_autosync.errors import AutosyncError
from globus_autosync.globus import auth as globus_auth
from globus_autosync.globus.collections import needing_consent
from globus_autosync.globus.errors import globus_errors
from globus_autosync.globus.flows import FlowRunner

if TYPE_CHECKING:
    from globus_autosync.cli.context import Context


def _flows(cfg: config.Config) -> list[str]:
    """The flows the configured jobs start: `login` asks for the consent to start each."""
    return sorted({job.actions.flow for job in cfg.jobs if job.actions.flow})


def flow_check(job: config.Job, cfg: config.Config, state_dir: Path) -> tuple[bool, str]:
    """The `check` line of a job's flow: is the consent to start it granted?"""
    runner = FlowRunner(job, cfg, state_dir)
    try:
        ok, text = runner.check()
    except AutosyncError as err:
        ok, text = False, str(err).removeprefix(f"{job.name}: ")
    finally:
        runner.close()
    return ok, f"{job.name}: flow: {text}"


def _globus_collections(cfg: config.Config) -> list[str]:
    ids = []
    for job in cfg.jobs:
        if job.transport == "globus":
            ids += [
                c for c in (job.globus.source_collection, job.globus.destination_collection) if c
            ]
    return ids


@click.command(
    epilog=(
        "\b\n"
        "Examples:\n"
        "  globus-autosync login --no-browser\n"
        "  globus-autosync login --collection <uuid>\n"
        "\n"
        "More: docs/globus.md"
    )
)
@click.option("--no-browser", is_flag=True, help="Print a link and ask for the code it gives.")
@click.option(
    "--collection",
    "collections",
    multiple=True,
    metavar="ID",
    help="Also grant data access to this collection (repeatable).",
)
@click.pass_obj
def login(obj: Context, no_browser: bool, collections: tuple[str, ...]) -> None:
    """Log in to Globus once; the tokens are kept (mode 0600) in the state directory."""
    cfg = obj.load()
    if globus_auth.is_service_account():
        click.echo(
            f"{globus_auth.ENV_ID} is set: the service account logs itself in; no login needed"
        )
        return
    consents = set(collections)
    refused = "Globus Auth refused the login; run 'globus-autosync login' again"
    with globus_errors("login", hint=refused):
        flows = _flows(cfg)
        if flows:
            plural = "s" * (len(flows) > 1)
            click.echo(f"asking also for the consent to start flow{plural} {', '.join(flows)}")
        app = globus_auth.make_app(
            cfg,
            obj.state_dir,
            interactive=True,
            no_browser=no_browser,
            consents=consents,
            flows=flows,
        )
        app.login(force=True)
        tc = globus_sdk.TransferClient(app=app)
        needed = needing_consent(tc, _globus_collections(cfg))
        if set(needed) - consents:
            click.echo(
                f"collections {', '.join(needed)} need your consent for data access; "
                "one more login grants it"
            )
            app = globus_auth.make_app(
                cfg,
                obj.state_dir,
                interactive=True,
                no_browser=no_browser,
                consents=consents | set(needed),
                flows=flows,
            )
            app.login(force=True)
    click.echo(f"logged in; tokens kept in {obj.state_dir / globus_auth.TOKEN_FILE}")


@click.command(epilog="\b\nExamples:\n  globus-autosync logout\n\nMore: docs/globus.md")
@click.pass_obj
def logout(obj: Context) -> None:
    """Revoke the stored Globus tokens and delete them."""
    cfg = obj.load()
    with globus_errors("logout"):
        app = globus_auth.make_app(cfg, obj.state_dir)
        app.logout(sweep=True)
    click.echo("logged out: tokens revoked and deleted")


@click.command(epilog="\b\nExamples:\n  globus-autosync whoami\n\nMore: docs/globus.md")
@click.pass_obj
def whoami(obj: Context) -> None:
    """Show the Globus identity the tool acts as."""
    cfg = obj.load()
    with globus_errors("whoami"):
        app = globus_auth.make_app(cfg, obj.state_dir)
        globus_auth.require_login(app)
        info = globus_sdk.AuthClient(app=app).userinfo()
    who = info.get("preferred_username") or info.get("sub")
    kind = "service account" if globus_auth.is_service_account() else "user"
    click.echo(f"{who} ({kind}, identity {info.get('sub')})")


COMMANDS = [login, logout, whoami]  # what cli.app registers
