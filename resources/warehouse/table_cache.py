"""Each warehouse table ensured once per run, however many worker threads ask for it."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from sqlalchemy import Table

from resources.warehouse.store import Warehouse


class TableCache:
    """Each warehouse table ensured (created or migrated) once per run, whatever the threads."""

    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse
        self._lock = threading.Lock()
        self._tables: dict[str, Table] = {}

    def get(self, name: str, columns: Sequence[tuple[str, str]], key: Sequence[str]) -> Table:
        with self._lock:
            if name not in self._tables:
                self._tables[name] = self._warehouse.ensure_table(name, columns, key)
            return self._tables[name]
