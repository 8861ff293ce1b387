"""How many runs a sync is split into, and the child processes that execute all but the first.

A run executes in one Python process, which keeps one core busy at most (Dagster executes one run
per process). A fleet large enough to pay a second process's start-up is split into PARALLEL_RUNS
runs that execute at once: the first in the command's own process, the others in children.
SYNC_BATCH_SIZE still caps every run.

A child needs 2-4 s to import Dagster and load the definitions before its run can start, so
`sync` starts it as soon as its environment is set, before it imports Dagster itself: both
processes import at once. A child executes the runs it is handed, reports each outcome and exits
without waiting for its interpreter's teardown; one that is not needed exits when told.

No Dagster import here: the command loads this module before Dagster. The children's entry is
named (`ENTRY`, a context manager yielding what executes a run), not imported, for that reason
and because the runner, which uses this module, is where it lives.
"""

from __future__ import annotations

import importlib
import math
import multiprocessing
import os
import queue
import signal
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from resources.settings import sync_batch_size

PARALLEL_RUNS = 2
MIN_CONNECTIONS_PER_RUN = 50
POLL_S = 0.5  # how often a wait for a child's outcome checks that the child still lives
ANY_RUN = -1  # a child's failure before it took a run
ENTRY = "pipelines.runner:child_runs"  # module:function, loaded in the child
EXIT_STOPPED = 143  # 128 + SIGTERM, as a shell reports a process stopped by it
JOIN_S = 10.0  # how long a child that reported its runs may take to end


def run_size(count: int, batch_size: int | None = None) -> int:
    """Connections per run for a sync of `count` connections."""
    batch = batch_size or sync_batch_size()
    if count < PARALLEL_RUNS * MIN_CONNECTIONS_PER_RUN:
        return batch
    return min(batch, math.ceil(count / PARALLEL_RUNS))


def may_split(count: int | None) -> bool:
    """Whether a sync of `count` connections (None: not known yet) may be several runs."""
    return count is None or run_size(count) < count


class ChildFailed(RuntimeError):
    """A child process died or failed before it reported a run's outcome."""


class Children:
    """PARALLEL_RUNS - 1 child processes, started now, loading Dagster while the caller goes on.

    `execute` hands them runs (each child takes the next when it is free) and yields each run's
    outcome, or ChildFailed for it, in the order handed. `progress` carries what the runs report
    as they go: each connection's outcome as it finishes, and lines to say.
    """

    def __init__(self, count: int = PARALLEL_RUNS - 1, entry: str = ENTRY) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked state
        self.progress: Any = context.Queue()
        self._work: Any = context.Queue()
        self._results: Any = context.Queue()
        self._processes = [
            context.Process(
                target=_child_main,
                args=(entry, self._work, self.progress, self._results, list(warnings.filters)),
                name=f"tiktok-crm-sync run {number + 1}",
                daemon=True,  # stopped with the command, whatever happens to it
            )
            for number in range(count)
        ]
        for process in self._processes:
            process.start()
        self._closed = False
        self._handed = False

    def execute(self, runs: Sequence[Any]) -> Iterator[Any]:
        """The runs, executed in the children from now; their outcomes in order as they come."""
        self._handed = True
        for index, run in enumerate(runs):
            self._work.put((index, run))
        self.close()
        return self._outcomes(runs)

    def _outcomes(self, runs: Sequence[Any]) -> Iterator[Any]:
        outcomes: dict[int, Any] = {}
        for wanted in range(len(runs)):
            while wanted not in outcomes:
                outcomes.update([self._next_result(runs, outcomes)])
            yield outcomes.pop(wanted)

    def _next_result(self, runs: Sequence[Any], outcomes: dict[int, Any]) -> tuple[int, Any]:
        while True:
            try:
                index, failure, outcome = self._results.get(timeout=POLL_S)
            except queue.Empty:
                if any(process.is_alive() for process in self._processes):
                    continue
                missing = _first_missing(runs, outcomes)
                codes = ", ".join(str(process.exitcode) for process in self._processes)
                return missing, ChildFailed(
                    f"the process executing their run ended (exit code {codes}) before it "
                    "reported: sync them again"
                )
            if index == ANY_RUN:
                index = _first_missing(runs, outcomes)
            return index, ChildFailed(failure) if failure else outcome

    def close(self) -> None:
        """No more runs: each child exits once it has reported what it was handed."""
        if not self._closed:
            self._closed = True
            for _ in self._processes:
                self._work.put(None)

    def stop(self) -> None:
        """For a command that has every outcome it handed out: children that executed runs are
        ending on their own and are waited for; one never handed a run (still loading Dagster,
        perhaps) is stopped."""
        self.close()
        for process in self._processes:
            if self._handed:
                process.join(timeout=JOIN_S)
            if process.is_alive():
                process.terminate()

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _first_missing(runs: Sequence[Any], outcomes: dict[int, Any]) -> int:
    return next(index for index in range(len(runs)) if index not in outcomes)


def load_entry(entry: str) -> Callable[[Any], AbstractContextManager[Callable[[Any], Any]]]:
    module, function = entry.split(":")
    return getattr(importlib.import_module(module), function)


def _child_main(entry: str, work: Any, progress: Any, results: Any, filters: list) -> None:
    warnings.filters[:] = filters  # what the parent keeps off the terminal, the child does too
    # Stopped outside a run (while loading, or not needed): quietly. A run installs Dagster's own
    # handler while it executes, which fails the run on the signal.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(EXIT_STOPPED))
    code = 0
    try:
        # Dagster, the definitions and the instance, loaded while the parent works too.
        with load_entry(entry)(progress) as execute:
            while (item := work.get()) is not None:
                index, run = item
                try:
                    results.put((index, None, execute(run)))
                except Exception as err:  # reported as this run's failure, with its reason
                    results.put((index, f"{type(err).__name__}: {err}", None))
    except BaseException as err:  # an import or definitions error: every run handed fails
        code = 1
        results.put((ANY_RUN, f"{type(err).__name__}: {err}", None))
    finally:
        for channel in (progress, results):
            channel.close()
            channel.join_thread()  # what was put is sent before the process ends
        sys.stdout.flush()
        sys.stderr.flush()
        # The instance is closed (its events written); the interpreter's teardown (a second or
        # so with Dagster loaded) would serve nothing.
        os._exit(code)
