"""Column schemas shown in the Dagster UI for the warehouse tables."""

import dagster as dg

from resources.tiktok.scopes import column_description


def column_schema(columns: list[tuple[str, str]]) -> dg.TableSchema:
    """The warehouse table's pipeline columns, for `dagster/column_schema`, each described with
    its meaning and the TikTok scope it needs (from the one field list, `resources.tiktok.scopes`).
    """
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, kind, description=column_description(name))
            for name, kind in columns
        ]
    )
