"""The command group (global options, logging) and ``main``: the one place where every error
becomes one line on stderr and a documented exit code."""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
from pathlib import Path

import click

from globus_autosync import __version__
from globus_autosync.cli.context import (
    APP,
    EXIT_INTERNAL,
    Context,
    default_config,
    default_state_dir,
)
from globus_autosync.cli.logs import setup as setup_logging
from globus_autosync.errors import (
    EXIT_OK,
    EXIT_USAGE,
    AutosyncError,
    os_error,
)

log = logging.getLogger("globus_autosync")

# each command, and the module of this package that defines it (in its COMMANDS): a command's
# module is imported only when it runs (or for --help), so a cron `run` loads what it needs
COMMANDS = {
    "init": "sync", "check": "sync", "baseline": "sync", "run": "sync", "watch": "sync",
    "status": "reports", "tasks": "reports",
    "service": "service",
    "login": "globus", "logout": "globus", "whoami": "globus",
    "alert-test": "health",
    "retry-action": "actions",
    "serve": "serve",
    "verify": "verify",
}  # fmt: skip


class LazyGroup(click.Group):
    """A group whose commands are imported when asked for (click's lazy loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        commands: list[click.Command] = importlib.import_module(
            f"globus_autosync.cli.{module}"
        ).COMMANDS
        return next(c for c in commands if c.name == cmd_name)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=(
        "\b\n"
        "Examples:\n"
        "  globus-autosync init && globus-autosync check && globus-autosync run\n"
        "  globus-autosync -c examples/demo.toml --state-dir examples/demo-state run\n"
        "\n"
        "More: COMMAND --help; docs/index.md (docs/reference/commands.md)"
    ),
)
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    envvar="GLOBUS_AUTOSYNC_CONFIG",
    show_envvar=True,
    help="Configuration file [default: <user config dir>/globus-autosync/config.toml].",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    envvar="GLOBUS_AUTOSYNC_STATE_DIR",
    show_envvar=True,
    help="Where the state database, locks and log live [default: <user state dir>/"
    "globus-autosync].",
)
@click.option("--debug", is_flag=True, help="Log everything; show tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.version_option(__version__, "--version", prog_name=APP)
@click.pass_context
def cli(
    ctx: click.Context, config_path: Path | None, state_dir: Path | None, debug: bool, quiet: bool
) -> None:
    """Ship every new or modified file from a directory to a Globus collection or a mounted
    directory: unattended, never twice, never lost."""
    ctx.obj = Context(
        config_path=(config_path or default_config()).expanduser(),
        state_dir=(state_dir or default_state_dir()).expanduser(),
        debug=debug,
        quiet=quiet,
    )
    needs_file_log = ctx.invoked_subcommand in ("run", "baseline", "watch", "login", "logout")
    resident = ctx.invoked_subcommand == "watch"
    setup_logging(ctx.obj.state_dir, debug, quiet, to_file=needs_file_log, resident=resident)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error becomes one line on stderr and a documented exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name=APP, standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(EXIT_USAGE if e.exit_code == 2 else e.exit_code)
    except AutosyncError as e:
        if debug:
            logging.getLogger(__name__).exception("error")
        click.echo(f"{APP}: error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as e:  # a failing disk outside any job: one line, as for a job
        if debug:
            logging.getLogger(__name__).exception("error")
        err = os_error(e)
        click.echo(f"{APP}: error: {err}", err=True)
        sys.exit(err.exit_code)
    except Exception as e:
        if debug:  # the traceback, and still the exit code of a bug (a bare raise would be 1)
            traceback.print_exc()
        click.echo(
            f"{APP}: internal error: {type(e).__name__}: {e}; "
            + (
                "report it with the traceback above"
                if debug
                else "run again with --debug for the traceback and report it"
            ),
            err=True,
        )
        sys.exit(EXIT_INTERNAL)
    sys.exit(EXIT_OK)
