"""`tiktok-crm-sync`: one module per command group, imported only when its command runs.

The command modules load SQLAlchemy, Dagster and the clients, seconds of imports; `--help`
lists the commands from the table below instead, so it answers at once. A test checks that each
summary is the command's own (tests/pipelines/test_cli_startup.py).
"""

import importlib

import click

# name -> (module, command object, the summary `--help` shows: its docstring's first sentence)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": (
        "pipelines.cli.demo",
        "demo",
        "Run the daily sync on simulated TikTok accounts into the warehouse (no credentials).",
    ),
    "sync": (
        "pipelines.cli.sync",
        "sync",
        "Run the daily sync now for NAMES (or --all), as Dagster runs you can see in the UI.",
    ),
    "ui": (
        "pipelines.cli.demo",
        "ui",
        "Open the Dagster UI in demo mode, with the simulator running for materializations.",
    ),
    "simulator": ("pipelines.cli.simulator", "simulator", "The built-in TikTok API simulator."),
    "connections": (
        "pipelines.cli.connections",
        "connections",
        "Registered TikTok connections: one authorized account each, one Dagster partition each.",
    ),
    "chart": (
        "pipelines.cli.chart",
        "chart",
        "Chart daily profile stats from the warehouse as SVG (after `demo --days 7`, say).",
    ),
    "mapping": (
        "pipelines.cli.mapping",
        "mapping",
        "Declarative mapping files (pipelines/mappings/*.yaml, docs/mappings.md).",
    ),
    "crm": (
        "pipelines.cli.crm",
        "crm",
        "CRM targets: prepare HubSpot or Salesforce for the push (docs/crm.md).",
    ),
}


class LazyGroup(click.Group):
    """Commands imported on first use; their summaries come from COMMANDS."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, _summary = COMMANDS[cmd_name]
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, _, summary) in COMMANDS.items()])


@click.group(cls=LazyGroup)
def main() -> None:
    """Sync TikTok creator profiles and videos into a warehouse or a CRM, on Dagster."""
    from pipelines.cli.output import quiet_library_warnings

    quiet_library_warnings()  # this process only: library notices are not for the reader


def run() -> None:
    """The console script (and `python -m pipelines.cli`): `main`, allowed to end its process
    at once once a command has said everything (`pipelines.cli.ending.finish`)."""
    from pipelines.cli import ending

    ending.FAST_EXIT = True
    main()
