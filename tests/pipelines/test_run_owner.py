"""Who owns a CLI run, and when its owner counts as dead: real processes, faked identities.

The reaper must never fail a live run: only an owner on this host whose process is gone, whose
pid now belongs to another process (a different start time), or whose machine rebooted since.
"""

import dataclasses
import subprocess
import sys
from collections.abc import Iterator

import pytest

from pipelines.run_owner import Owner, current_owner, owner_is_dead, process_start


@pytest.fixture
def live_process() -> Iterator[subprocess.Popen]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield child
    finally:
        child.kill()
        child.wait()


def owner_of(pid: int, **overrides: str) -> Owner:
    here = current_owner()
    owner = Owner(here.host, here.boot_id, pid, process_start(pid) or "", "another-owner")
    return dataclasses.replace(owner, **overrides)


def test_a_live_owner_is_alive_and_a_gone_one_is_dead(live_process):
    here = current_owner()
    assert not owner_is_dead(owner_of(live_process.pid), here)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert owner_is_dead(dataclasses.replace(owner_of(live_process.pid), pid=gone.pid), here)


@pytest.mark.parametrize(
    ("change", "dead"),
    [
        ({"start": "1"}, True),  # the pid was reused by a process started at another time
        ({"boot_id": "a-previous-boot"}, True),  # the machine rebooted since the run started
        ({"host": "another-machine"}, False),  # never judged from here
        ({"owner_id": "SELF"}, False),  # this very process
    ],
)
def test_what_counts_as_a_dead_owner(live_process, change, dead):
    here = current_owner()
    if change.get("owner_id") == "SELF":
        change = {"owner_id": here.owner_id}
    assert owner_is_dead(owner_of(live_process.pid, **change), here) is dead


def test_owner_tags_round_trip_and_old_runs_have_no_owner():
    here = current_owner()
    assert Owner.from_tags(here.tags()) == here
    assert here.tags()["launched_by"] == "tiktok-crm-sync"
    assert here.tags()["dagster/max_retries"] == "0"  # the daemon cannot re-launch a CLI run
    assert Owner.from_tags({"launched_by": "tiktok-crm-sync"}) is None
