"""Who hears of each finished connection in this process: the CLI's progress bar.

A run executed in this process (`tiktok-crm-sync sync`, `demo`) reports each connection as it
finishes, not only when the whole run ends. Runs in other processes notify nobody here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from services.outcome import ConnectionOutcome

Listener = Callable[[ConnectionOutcome], None]
_lock = threading.Lock()
_listeners: list[Listener] = []


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)


def notify(outcome: ConnectionOutcome) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(outcome)
