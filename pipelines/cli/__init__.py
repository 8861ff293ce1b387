"""`tiktok-crm-sync`: one module per command group, registered on `main` here."""

import click

from pipelines.cli.chart import chart
from pipelines.cli.connections import connections
from pipelines.cli.crm import crm
from pipelines.cli.demo import demo, ui
from pipelines.cli.mapping import mapping
from pipelines.cli.output import quiet_library_warnings
from pipelines.cli.simulator import simulator
from pipelines.cli.sync import sync


@click.group()
def main() -> None:
    """Sync TikTok creator profiles and videos into a warehouse or a CRM, on Dagster."""
    quiet_library_warnings()  # this process only: library notices are not for the reader


for command in (demo, sync, ui, simulator, connections, chart):
    main.add_command(command)
main.add_command(mapping)
main.add_command(crm)
