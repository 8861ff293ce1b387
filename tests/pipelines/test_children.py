"""The child processes of a sync of several runs: started early, told when not needed, and a
child that dies fails only its own runs, with the reason, instead of hanging the command."""

import os
import signal
import subprocess
import sys
import time

from click.testing import CliRunner

from pipelines.children import ENTRY, ChildFailed, Children, load_entry, may_split, run_size
from pipelines.cli import main
from pipelines.instance_home import use_project_instance
from tests.pipelines.test_sync_cli import store  # noqa: F401 (fixture)


def _wait_for_exit(children: Children, seconds: float = 120) -> list[int | None]:
    deadline = time.monotonic() + seconds
    while any(p.is_alive() for p in children._processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p.exitcode for p in children._processes]


def test_the_childrens_entry_is_the_runners_child_runs():
    from pipelines.runner import child_runs

    assert load_entry(ENTRY) is child_runs


def test_a_fleet_may_split_and_a_few_connections_do_not():
    assert may_split(None)  # --all, before the fleet is counted
    assert may_split(200) and run_size(200) == 100
    assert not may_split(3)


def test_children_that_are_not_needed_exit_when_told():
    use_project_instance()
    children = Children()
    children.close()
    assert _wait_for_exit(children) == [0]


def test_a_child_that_died_fails_the_runs_it_was_handed_with_the_reason():
    use_project_instance()
    children = Children()
    [process] = children._processes
    os.kill(process.pid, signal.SIGKILL)
    outcomes = list(children.execute(["a run", "another run"]))
    assert [type(o) for o in outcomes] == [ChildFailed, ChildFailed]
    assert "ended (exit code -9)" in str(outcomes[0])


def test_sync_all_with_a_dead_child_syncs_its_own_run_and_fails_the_others_with_why(
    simulator,
    store,  # noqa: F811
    monkeypatch,
):
    """Three runs of one connection: the first executes in the command's process and syncs;
    the child holding the other two was killed, so those connections fail, saying why."""
    monkeypatch.setenv("SYNC_BATCH_SIZE", "1")

    class KilledChildren(Children):
        def __init__(self) -> None:
            super().__init__()
            for process in self._processes:
                os.kill(process.pid, signal.SIGKILL)

    monkeypatch.setattr("pipelines.cli.sync.Children", KilledChildren)
    result = CliRunner().invoke(main, ["sync", "--all"], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "synced 1 of 3 connections" in result.output
    assert (
        "failed: creator-b, creator-c: the process executing their run ended (exit code -9) "
        "before it reported: sync them again" in result.output
    ), result.output


def test_the_console_script_ends_at_once_with_every_line_said_and_its_exit_code(
    simulator,
    store,  # noqa: F811
):
    """`python -m pipelines.cli` ends its process without the interpreter's teardown: what the
    command printed is all there, the exit code is the command's, and the three runs (one here,
    two in the child) synced what they could."""
    simulator.revoke_account(1)
    environ = dict(os.environ, SYNC_BATCH_SIZE="1")
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "sync", "--all"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "synced 2 of 3 connections" in done.stdout
    assert "Dagster runs: " in done.stdout
    assert "tiktok-crm-sync connections reconnect creator-b" in done.stderr
    assert done.stderr.rstrip().splitlines()[-1].startswith("took ")


def test_a_child_that_died_after_reporting_keeps_what_it_reported_and_counts_each_once(
    monkeypatch,
):
    """The child's run reported creator-b (synced) and then its process died before creator-c:
    creator-b stays synced, only creator-c fails with the reason, and the progress hears each
    connection exactly once."""
    import queue

    from pipelines import runner

    class DyingChild:
        progress: queue.Queue = queue.Queue()

        def execute(self, runs):
            def outcomes():
                reported = runner.SyncOutcome(succeeded=["creator-b"], rows={"videos": 40})
                self.progress.put(reported)
                self.progress.put("a line from the child")
                yield ChildFailed("the process executing their run ended (exit code -9)")

            return outcomes()

    def own_run(_instance, run, on_heard, _say, _job=None):
        part = runner.SyncOutcome(succeeded=list(run.wanted), rows={"videos": 40})
        on_heard(part)
        return part

    monkeypatch.setattr(runner, "execute_range", own_run)
    runs = [
        runner.RangeRun("creator-a", "creator-a", None, None, {}, ("creator-a",)),
        runner.RangeRun("creator-b", "creator-c", None, None, {}, ("creator-b", "creator-c")),
    ]
    heard: list[tuple[str, bool]] = []
    said: list[str] = []
    outcome = runner._execute_concurrently(
        None, runs, lambda part: heard.extend(part.connections()), said.append, DyingChild()
    )
    assert sorted(heard) == [("creator-a", True), ("creator-b", True), ("creator-c", False)]
    assert sorted(outcome.succeeded) == ["creator-a", "creator-b"]
    assert outcome.failed == {"creator-c": "the process executing their run ended (exit code -9)"}
    assert outcome.rows == {"videos": 80}
    assert said == ["a line from the child"]
