"""Crash consistency: SIGKILL the daily sync inside the warehouse load and the CRM push, rerun it.

Round trip per backend (SQLite file, PostgreSQL schema): the TikTok simulator (fixed clock) and a
fake HubSpot run here, in the test process; the daily sync of four connections (one without
videos) runs in child processes (tests/reliability/crash_child.py: the real `tiktok_daily_sync`
job, one Dagster run per connection, HubSpot push assets included). Pushes go to HubSpot contacts
and to a test-only HubSpot object of videos, so one connection's push is three batches of <= 100.

Two syncs are crashed, each from a fixed starting state:

- first sync: empty warehouse, no push state, empty CRM (tables created, rows COPYed as new);
- day 2: what a clean first sync left; meanwhile a day passed in the simulator (every count and
  metric grew) and three videos were deleted, so every row is updated (PostgreSQL: staged, then
  merged by UPDATE), deletions are marked and every record is pushed again.

Each is run once cleanly, recording the hook points it passes (warehouse: each upsert call, chunk
boundaries, COPY into the table or into the staging table before its UPDATE, the deletion pass,
before and after each commit; CRM: before each request, after the CRM answered, after it accepted
a batch but before the push state recorded its hashes, after the state was saved). Then, for
points drawn with a seeded RNG (`CRASH_SEED=N` replays; `CRASH_KILLS=all` kills at every point),
the sync runs from a fresh copy of its starting state, stops at the point, is SIGKILLed by this
test, and a fresh child reruns it to completion. The outcome must equal the clean run's:

- every warehouse table (`tiktok_*`, `crm_*`) row for row, except the load bookkeeping
  `_synced_at`, `_load_id` and `synced_at` (the load time mapped into crm_* tables), which say
  when and by which run a row was written, and `deleted_at`, compared as set or not set, since it
  holds when the run saw the deletion;
- the push state: `crm_push_state` without `pushed_at` (and without the hash of a deleted video's
  record, whose content holds the deletion time), and `crm_rejections` (empty);
- the records stored in the fake HubSpot (one per key; without `tiktok_last_synced_at`, the load
  time, and with the deletion time as set or not);
- and the fake's request log of the crashed run plus its rerun never shows one record id sent
  with two different contents (the same content again is fine: the push is at-least-once).
  Content leaves out `tiktok_last_synced_at`, as the push's own content hashes do (docs/crm.md).
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from resources.connections.store import ConnectionStore
from resources.database import make_engine
from resources.settings import mappings_dir
from simulators.crm_fakes import FakeHubSpot
from simulators.tiktok import ManualClock, SimulatorConfig, TikTokSimulator
from tests.pipelines.helpers import connect, use_live_app

SEED = int(os.environ.get("CRASH_SEED", "20261122"))
ALL_KILLS = os.environ.get("CRASH_KILLS") == "all"
ACCOUNTS = {"creator-a": 0, "creator-b": 1, "creator-c": 2, "creator-empty": 3}  # 3: no videos
VIDEOS_PER_ACCOUNT = 230  # 3 HubSpot batches and a dozen loader chunks per connection
DELETED_BEFORE_DAY_2 = {0: (5, 150), 1: (42,)}  # account -> indexes of videos the creator deletes
DAY_S = 86_400
CHILD_TIMEOUT_S = 180.0
GENEROUS_LIMITS = "user_info=60000,video_list=60000,video_query=60000"
CRM_PREFIXES = ("HUBSPOT_", "SALESFORCE_", "GENERIC_CRM_", "CRM_")
REPO = Path(__file__).parents[2]
# What is compared (see above): warehouse tables by prefix, minus the bookkeeping columns.
TABLE_PREFIXES = ("tiktok_", "crm_")
BOOKKEEPING = frozenset({"_synced_at", "_load_id", "synced_at"})
AS_FLAG = frozenset({"deleted_at"})
VOLATILE = frozenset({"tiktok_last_synced_at"})
HUBSPOT_KEYS = {"contacts": "tiktok_open_id", "p_tiktok_videos": "tiktok_video_id"}
DELETED_PROPERTY = "tiktok_deleted_at"
# A HubSpot custom object of videos (test-only), so that one push is several batches of 100.
HUBSPOT_VIDEOS_YAML = """\
version: 1
name: hubspot_videos
description: Test-only HubSpot custom object of TikTok videos.
source: video
target:
  kind: hubspot
  object: p_tiktok_videos
key: [tiktok_video_id]
fields:
  - {source: id, target: tiktok_video_id, type: string, required: true}
  - {source: open_id, target: tiktok_open_id, type: string, required: true}
  - {source: title, target: tiktok_title, type: string}
  - {source: view_count, target: tiktok_views, type: string}
  - {source: like_count, target: tiktok_likes, type: string}
  - source: deleted_at
    target: tiktok_deleted_at
    type: string
    transforms: [{date_format: "%Y-%m-%dT%H:%M:%SZ"}]
  - source: synced_at
    target: tiktok_last_synced_at
    type: string
    required: true
    transforms: [{date_format: "%Y-%m-%dT%H:%M:%SZ"}]
"""

Tables = dict[str, tuple[tuple[str, ...], list[tuple]]]  # table -> (columns, rows by key)


@dataclass(frozen=True)
class Crash:
    """A sync to crash: how many kill points, and hook kinds drawn from first (one each)."""

    name: str
    kills: int
    first_draws: tuple[str, ...]


FIRST_SYNC = Crash("first sync", 2, ("wh:", "crm:"))
DAY_2 = Crash(
    "day 2",
    4,
    (
        "wh:between_chunks",
        "wh:pg_staged_before_update",
        "wh:before_commit",
        "crm:accepted_before_state_saved",
    ),
)


# --- where the warehouse lives: a SQLite file, or a PostgreSQL schema per copy -------------------


def copy_sqlite(source_url: str, target_url: str) -> None:
    """A consistent copy (the backup API reads through the WAL)."""
    source = sqlite3.connect(source_url.removeprefix("sqlite:///"))
    target = sqlite3.connect(target_url.removeprefix("sqlite:///"))
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


class SqliteWarehouses:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def empty(self, name: str) -> str:
        return f"sqlite:///{self.folder / f'warehouse-{name}.db'}"

    def copy(self, source: str, name: str) -> str:
        copy_sqlite(self.empty(source), self.empty(name))
        return self.empty(name)

    def close(self) -> None:
        pass


class PostgresWarehouses:
    """One schema per warehouse (a copy is cloned table by table), all dropped at the end."""

    def __init__(self, server: sa.Engine) -> None:
        self.server = server
        self.prefix = f"crash_{uuid.uuid4().hex[:8]}"
        self.schemas: list[str] = []

    def empty(self, name: str) -> str:
        schema = f"{self.prefix}_{name}"
        with self.server.begin() as db:
            db.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        self.schemas.append(schema)
        root = self.server.url.render_as_string(hide_password=False)
        return f"{root}?options=-csearch_path%3D{schema}"

    def copy(self, source: str, name: str) -> str:
        url, source, target = self.empty(name), f"{self.prefix}_{source}", f"{self.prefix}_{name}"
        with self.server.begin() as db:
            for table in sa.inspect(db).get_table_names(schema=source):
                source_table, target_table = f'"{source}"."{table}"', f'"{target}"."{table}"'
                db.execute(
                    sa.text(f"CREATE TABLE {target_table} (LIKE {source_table} INCLUDING ALL)")
                )
                db.execute(sa.text(f"INSERT INTO {target_table} SELECT * FROM {source_table}"))
        return url

    def close(self) -> None:
        with self.server.begin() as db:
            for schema in self.schemas:
                db.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


# --- the world: simulator, connections, starting states -----------------------------------------


@dataclass
class Start:
    """A sync's starting state: its warehouse, state database and fake HubSpot (running)."""

    warehouse_url: str
    state_url: str
    hubspot: FakeHubSpot


@dataclass
class World:
    simulator: TikTokSimulator
    clock: ManualClock
    folder: Path
    warehouses: SqliteWarehouses | PostgresWarehouses
    first_sync_requests: list[tuple[str, Any]] = field(default_factory=list)

    def state(self, name: str) -> str:
        return f"sqlite:///{self.folder / f'state-{name}.db'}"

    def environment(self, start: Start) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(CRM_PREFIXES)}
        return env | {
            "WAREHOUSE_URL": start.warehouse_url,
            "STATE_DATABASE_URL": start.state_url,
            "MAPPINGS_DIR": str(self.folder / "mappings"),
            "HUBSPOT_ACCESS_TOKEN": start.hubspot.token,
            "HUBSPOT_BASE_URL": start.hubspot.base_url,
            "TIKTOK_API_BASE_URL": self.simulator.base_url,
            "TIKTOK_RATE_LIMITS": GENEROUS_LIMITS,
            "TIKTOK_RATE_LIMIT_URL": f"sqlite:///{self.folder / 'rate_budget.db'}",
        }

    def start(self, crash: Crash, name: str) -> Start:
        """A fresh copy of `crash`'s starting state; day 2 starts from the clean first sync."""
        state = self.state(name)
        fake = FakeHubSpot(unique_properties={obj: {key} for obj, key in HUBSPOT_KEYS.items()})
        fake.start()
        if crash is FIRST_SYNC:
            copy_sqlite(self.state("connected"), state)
            return Start(self.warehouses.empty(name), state, fake)
        copy_sqlite(self.state("first-clean"), state)
        headers = {"Authorization": f"Bearer {fake.token}"}
        for path, body in self.first_sync_requests:
            httpx.post(fake.base_url + path, json=body, headers=headers).raise_for_status()
        fake.reset_requests()
        return Start(self.warehouses.copy("first-clean", name), state, fake)


@pytest.fixture
def world(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    clock = ManualClock()
    config = SimulatorConfig(
        seed=11,
        accounts=len(ACCOUNTS),
        videos_per_account=VIDEOS_PER_ACCOUNT,
        clock=clock,
        rate_limit_per_minute=None,
        access_token_ttl=30 * DAY_S,  # no refresh: every copy of the state keeps valid tokens
    )
    warehouses: SqliteWarehouses | PostgresWarehouses
    if request.param == "postgres":  # skips here, before anything starts, without a server
        warehouses = PostgresWarehouses(request.getfixturevalue("postgres_server"))
    else:
        warehouses = SqliteWarehouses(tmp_path)
    simulator = TikTokSimulator(config)
    simulator.start()
    try:
        use_live_app(simulator)
        world = World(simulator, clock, tmp_path, warehouses)
        shutil.copytree(mappings_dir(), tmp_path / "mappings")
        (tmp_path / "mappings" / "hubspot_videos.yaml").write_text(HUBSPOT_VIDEOS_YAML)
        store = ConnectionStore(make_engine(world.state("connected")))
        for name, account in ACCOUNTS.items():
            connect(simulator, store, name, account)
        store.engine.dispose()
        yield world
    finally:
        simulator.stop()
        warehouses.close()


# --- running and killing the child ----------------------------------------------------------------


def child_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "tests.reliability.crash_child", "--connections", *extra]


def run_child(env: dict[str, str], record: Path | None = None) -> float:
    """Run the sync to completion; returns its seconds."""
    command = child_command(",".join(ACCOUNTS), *(["--record", str(record)] if record else []))
    started = time.perf_counter()
    done = subprocess.run(
        command, env=env, cwd=REPO, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S
    )
    assert done.returncode == 0, f"sync failed ({done.returncode}): {done.stderr[-3000:]}"
    return time.perf_counter() - started


def run_and_kill(env: dict[str, str], kill_at: int, log: Path) -> str:
    """Run the sync until hook call `kill_at` and SIGKILL it there; returns the hook's name."""
    read, write = os.pipe()
    command = child_command(
        ",".join(ACCOUNTS), "--kill-at", str(kill_at), "--signal-fd", str(write)
    )
    with log.open("w") as stderr:  # a file, not a pipe: a full pipe would block the child
        child = subprocess.Popen(
            command, env=env, cwd=REPO, pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=stderr
        )
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], CHILD_TIMEOUT_S)
        line = os.read(read, 4096).decode() if ready else ""
        assert line, f"the child never reached hook call {kill_at}: {log.read_text()[-2000:]}"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=CHILD_TIMEOUT_S) == -signal.SIGKILL
    finally:
        os.close(read)
        if child.poll() is None:
            child.kill()
            child.wait()
    number, name = line.split()
    assert int(number) == kill_at
    return name


# --- reading back what a sync left ----------------------------------------------------------------


@dataclass
class Outcome:
    """What one sync left behind, in comparable form (see the module docstring)."""

    tables: Tables
    push_state: Tables
    crm_records: dict[tuple[str, str], dict[str, str]]
    requests: list[tuple[str, str, dict[str, str]]]  # (object, record id, content) in send order


def read_tables(url: str, prefixes: tuple[str, ...], left_out: frozenset[str]) -> Tables:
    engine = make_engine(url)
    found: Tables = {}
    try:
        with engine.connect() as db:
            for name in sorted(sa.inspect(db).get_table_names()):
                if not name.startswith(prefixes):
                    continue
                table = sa.Table(name, sa.MetaData(), autoload_with=db)
                columns = [c for c in table.columns if c.name not in left_out]
                rows = db.execute(sa.select(*columns).order_by(*table.primary_key.columns))
                found[name] = (
                    tuple(column.name for column in columns),
                    [
                        tuple(
                            (value is not None) if column.name in AS_FLAG else value
                            for column, value in zip(columns, row, strict=True)
                        )
                        for row in rows
                    ],
                )
    finally:
        engine.dispose()
    return found


def hubspot_requests(fake: FakeHubSpot) -> list[tuple[str, str, dict[str, str]]]:
    sent = []
    for recorded in fake.requests:
        obj = recorded.path.split("/")[4]  # /crm/v3/objects/{object}/batch/upsert
        for item in recorded.body["inputs"]:
            content = {k: v for k, v in item["properties"].items() if k not in VOLATILE}
            sent.append((obj, item["id"], content))
    return sent


def outcome(start: Start) -> Outcome:
    records, deleted, stored = {}, set(), 0
    for obj, key in HUBSPOT_KEYS.items():
        for properties in start.hubspot.records(obj).values():
            stored += 1
            content = {k: v for k, v in properties.items() if k not in VOLATILE}
            if content.get(DELETED_PROPERTY):
                content[DELETED_PROPERTY] = "set"
                deleted.add(properties[key])
            records[(obj, properties[key])] = content
    assert len(records) == stored, "the CRM holds two records with one key"
    push_state = read_tables(start.state_url, ("crm_",), frozenset({"pushed_at"}))
    columns, rows = push_state["crm_push_state"]
    key_at, hash_at = columns.index("record_key"), columns.index("content_hash")
    push_state["crm_push_state"] = (
        columns,
        [
            (*row[:hash_at], "deletion time", *row[hash_at + 1 :])
            if row[key_at] in deleted
            else row
            for row in rows
        ],
    )
    return Outcome(
        tables=read_tables(start.warehouse_url, TABLE_PREFIXES, BOOKKEEPING),
        push_state=push_state,
        crm_records=records,
        requests=hubspot_requests(start.hubspot),
    )


def differences(name: str, got: list, clean: list) -> str:
    missing = [row for row in clean if row not in got]
    extra = [row for row in got if row not in clean]
    return (
        f"{name}: {len(got)} rows vs {len(clean)} clean; {len(missing)} clean rows missing, "
        f"e.g. {missing[:2]}; {len(extra)} other rows, e.g. {extra[:2]}"
    )


def assert_same(after: Outcome, clean: Outcome, where: str) -> None:
    assert after.tables.keys() == clean.tables.keys(), where
    for kind, got_tables, clean_tables in (
        ("warehouse", after.tables, clean.tables),
        ("state", after.push_state, clean.push_state),
    ):
        for table, (columns, rows) in clean_tables.items():
            got_columns, got = got_tables.get(table, ((), []))
            assert got_columns == columns, f"{where}: {kind} {table} has columns {got_columns}"
            assert got == rows, f"{where}: {kind} " + differences(table, got, rows)
    assert after.crm_records == clean.crm_records, f"{where}: the CRM's records differ"
    twice = pushed_twice_differently(after.requests)
    assert not twice, f"{where}: records pushed with different contents: {twice}"


def pushed_twice_differently(requests: list[tuple[str, str, dict]]) -> dict[tuple, list[dict]]:
    contents: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for obj, record_id, content in requests:
        if content not in contents[(obj, record_id)]:
            contents[(obj, record_id)].append(content)
    return {key: found for key, found in contents.items() if len(found) > 1}


def kill_plan(crash: Crash, hooks: list[str], rng: random.Random) -> list[int]:
    """Hook call numbers (1-based): one of each `first_draws` kind present, then at random."""
    if ALL_KILLS:
        return list(range(1, len(hooks) + 1))
    chosen: list[int] = []
    for kind in crash.first_draws:
        calls = [n for n, name in enumerate(hooks, 1) if name.startswith(kind)]
        if calls and len(chosen) < crash.kills:
            chosen.append(rng.choice([n for n in calls if n not in chosen]))
    others = [n for n in range(1, len(hooks) + 1) if n not in chosen]
    return sorted(chosen + rng.sample(others, crash.kills - len(chosen)))


# --- the test -------------------------------------------------------------------------------------


def skip_if_the_day_changed(today: date) -> None:
    if datetime.now(UTC).date() != today:
        pytest.skip("the UTC day changed during the test: snapshot dates legitimately differ")


def crash_and_compare(
    world: World, crash: Crash, clean: Outcome, hooks: list[str], rng: random.Random, today: date
) -> list[dict]:
    report = []
    for number, kill_at in enumerate(kill_plan(crash, hooks, rng)):
        start = world.start(crash, f"{crash.name.replace(' ', '-')}-kill{number}")
        try:
            env = world.environment(start)
            log = world.folder / f"kill-{crash.name.replace(' ', '-')}-{number}.log"
            point = run_and_kill(env, kill_at, log)
            sent_before_kill = len(start.hubspot.requests)
            run_child(env)
            after = outcome(start)
        finally:
            start.hubspot.stop()
        where = f"CRASH_SEED={SEED}, {crash.name}, killed at hook call {kill_at} ({point})"
        skip_if_the_day_changed(today)
        assert_same(after, clean, where)
        records = [(obj, record_id) for obj, record_id, _ in after.requests]
        report.append(
            {
                "kill_at": kill_at,
                "point": point,
                "requests_before_kill": sent_before_kill,
                "sent_again_same_content": len(records) - len(set(records)),
            }
        )
    return report


def clean_run(world: World, crash: Crash, name: str) -> tuple[Outcome, list[str]]:
    start = world.start(crash, name)
    try:
        hooks_file = world.folder / f"hooks-{name}.txt"
        seconds = run_child(world.environment(start), record=hooks_file)
        clean = outcome(start)
        if crash is FIRST_SYNC:
            world.first_sync_requests = [(r.path, r.body) for r in start.hubspot.requests]
    finally:
        start.hubspot.stop()
    hooks = hooks_file.read_text().split()
    print(f"{crash.name}: clean sync {seconds:.1f} s, {len(hooks)} hook calls")
    assert not pushed_twice_differently(clean.requests)
    assert clean.push_state["crm_rejections"][1] == []
    return clean, hooks


@pytest.mark.slow
@pytest.mark.parametrize(
    "world", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_sync_killed_anywhere_then_rerun_equals_a_clean_sync(world: World) -> None:
    today = datetime.now(UTC).date()
    backend = type(world.warehouses).__name__.removesuffix("Warehouses").lower()
    rng = random.Random(f"{SEED}:{backend}")
    print(f"crash consistency on {backend}: CRASH_SEED={SEED}")
    first_clean, first_hooks = clean_run(world, FIRST_SYNC, "first-clean")
    reports = {
        FIRST_SYNC.name: crash_and_compare(world, FIRST_SYNC, first_clean, first_hooks, rng, today)
    }

    world.clock.advance(DAY_S)
    for account, indexes in DELETED_BEFORE_DAY_2.items():
        for index in indexes:
            world.simulator.delete_video(account, world.simulator.video_ids(account, index)[0])
    day_2_clean, day_2_hooks = clean_run(world, DAY_2, "day-2-clean")
    columns, videos = day_2_clean.tables["tiktok_videos"]
    deleted = sum(row[columns.index("deleted_at")] for row in videos)
    assert (len(videos), deleted) == (3 * VIDEOS_PER_ACCOUNT, 3)
    reports[DAY_2.name] = crash_and_compare(world, DAY_2, day_2_clean, day_2_hooks, rng, today)

    print(json.dumps({"seed": SEED, "backend": backend, "kills": reports}))
