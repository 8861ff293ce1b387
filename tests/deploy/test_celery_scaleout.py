"""The Celery scale-out, for real: a multi-connection sync on two Celery workers, one rate budget.

Round trip: four connections of the TikTok simulator; a Dagster instance on PostgreSQL
(`deploy/celery/dagster.yaml`); two `dagster-celery` workers started as subprocesses on Redis, under
a key prefix of this test's own; one run of the daily sync per connection, all four at once, each
orchestrated by `dagster job execute` on the celery code location (`deploy/celery/definitions.py`,
configured from a generated copy of `deploy/celery/executor.yaml`, the file the workers start
with). Instance, state and warehouse, and the TikTok request budget each live in a PostgreSQL
schema of their own. The budget holds `video_list` to VIDEO_LIST_BUDGET, so it makes requests wait.

Asserted from evidence, not assumed: every connection's rows are in the warehouse; the steps ran
on both workers (the worker name dagster-celery writes into each step's engine event, and the
process id of each step's events); the budget was shared: the simulator, which records each
request's arrival time and token (so its connection, so the worker that sent it), saw both
workers list videos at the same time, yet no window of the combined stream held more than ONE
budget's capacity, and the budget's single `video_list` table holds one entry per request of
both workers.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from pipelines.defs.sync.assets import TIKTOK_POOL
from pipelines.defs.sync.jobs import DAILY_SYNC_JOB
from pipelines.defs.tiktok.partitions import CONNECTION_PARTITIONS_NAME
from pipelines.runner import QUIET_CONSOLE
from resources.connections.store import ConnectionStore
from resources.database import make_engine
from resources.ratelimit.budget import budget_rates
from simulators.tiktok import SimulatorConfig, TikTokSimulator
from simulators.tiktok.app import ROUTES, SimulatorApp, Wait
from simulators.tiktok.responses import Reply, SimRequest
from simulators.tiktok.state import SimState
from tests.pipelines.helpers import connect, use_live_app

REPO = Path(__file__).resolve().parents[2]
CELERY_DIR = REPO / "deploy" / "celery"
VENV_BIN = Path(sys.executable).parent
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"

CONNECTIONS = ("creator-a", "creator-b", "creator-c", "creator-d")
VIDEOS_PER_ACCOUNT = 100  # 5 pages of 20: 20 video_list requests in all
VIDEO_LIST_PER_MINUTE = 60  # the simulator's limit (TikTok's, scaled down)
# The budget's video_list limit: 11 a window after the margin, so the 20 requests take two
# windows of ONE budget, where two budgets would each let a whole window go at once.
VIDEO_LIST_BUDGET = 12
WORKERS = ("w1", "w2")
WORKER_READY_S = 60.0
RUNS_DEADLINE_S = 150.0
STOP_GRACE_S = 20.0


@dataclass(frozen=True)
class Arrival:
    at: float
    endpoint: str
    token: str


class RecordingApp(SimulatorApp):
    """The simulator's app, remembering when each request arrived and with which token."""

    def __init__(self, state: SimState) -> None:
        super().__init__(state)
        self._lock = threading.Lock()
        self.arrivals: list[Arrival] = []

    def handle(self, request: SimRequest, wait: Wait) -> Reply:
        endpoint = ROUTES.get((request.method, request.path), "other")
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        with self._lock:
            self.arrivals.append(Arrival(time.time(), endpoint, token))
        return super().handle(request, wait)


class RecordingSimulator(TikTokSimulator):
    def __init__(self, config: SimulatorConfig) -> None:
        super().__init__(config)
        self.recorder = self._app = RecordingApp(self._state)


def _skip_unless_ci(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true the Celery scale-out test must run")
    pytest.skip(reason)


@pytest.fixture
def redis_url() -> str:
    """TEST_REDIS_URL, reachable, with dagster-celery installed (else skip, or fail under CI)."""
    try:
        import dagster_celery  # noqa: F401
        import redis
    except ImportError as err:
        _skip_unless_ci(f"{err.name} is not installed (pip install -e '.[celery]')")
    url = os.environ.get("TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as err:
        _skip_unless_ci(f"Redis at {url} is unreachable ({type(err).__name__})")
    finally:
        client.close()
    return url


@pytest.fixture
def schemas(postgres_server: sa.Engine) -> Iterator[dict[str, str]]:
    """URLs (SQLAlchemy, psycopg 3) of fresh schemas for the instance, the data and the budget."""
    names = {role: f"t_{role}_{uuid.uuid4().hex[:10]}" for role in ("dagster", "data", "budget")}
    with postgres_server.begin() as db:
        for schema in names.values():
            db.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    base = postgres_server.url.render_as_string(hide_password=False)
    try:
        yield {role: f"{base}?options=-csearch_path%3D{schema}" for role, schema in names.items()}
    finally:
        with postgres_server.begin() as db:
            for schema in names.values():
                db.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def write_executor_config(path: Path, broker_url: str, prefix: str) -> None:
    """deploy/celery/executor.yaml with this test's Redis and key prefix (literal values)."""
    config = yaml.safe_load((CELERY_DIR / "executor.yaml").read_text())
    execution = config["execution"]["config"]
    execution["broker"] = execution["backend"] = broker_url
    options = execution["config_source"]
    options["broker_transport_options"]["global_keyprefix"] = prefix
    options["result_backend_transport_options"]["global_keyprefix"] = prefix
    path.write_text(yaml.safe_dump(config))


def spawn(command: list[str], log: Path) -> subprocess.Popen:
    """A process with this test's environment, the venv first on PATH (the worker CLI runs
    `celery` from PATH), in a session of its own so it is stopped with its children."""
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process's group (a CLI and its `celery` child), SIGKILL after a grace."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline and _group_alive(process):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _group_alive(process: subprocess.Popen) -> bool:
    process.poll()  # reap the leader, or its zombie would keep the group "alive"
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def worker_command(name: str, config_yaml: Path) -> list[str]:
    return [
        str(VENV_BIN / "dagster-celery"),
        "worker",
        "start",
        "--app",
        "dagster_celery.app",
        "--config-yaml",
        str(config_yaml),
        "--name",
        name,
        "--loglevel",
        "INFO",
        "--",
        "--pool=solo",  # one step at a time per worker: two workers, two concurrent steps
        "--without-gossip",
        "--without-mingle",
    ]


def run_command(connection: str, run_config: Path) -> list[str]:
    """One run of the daily sync for one connection, orchestrated by the `dagster` CLI.

    A process per run, as Dagster's run launcher does: Dagster sets up logging per run with
    `logging.config.dictConfig`, so two runs orchestrated from threads of one process can deadlock.
    """
    return [
        str(VENV_BIN / "dagster"),
        "job",
        "execute",
        "--python-file",
        str(CELERY_DIR / "definitions.py"),
        "--attribute",
        "defs",
        "--working-directory",
        str(REPO),
        "--job",
        DAILY_SYNC_JOB,
        "--config",
        str(run_config),
        "--tags",
        json.dumps({"dagster/partition": connection, "connection": connection}),
    ]


def logs_tail(logs: dict[str, Path]) -> str:
    return "\n".join(f"--- {n}\n{p.read_text(errors='replace')[-3000:]}" for n, p in logs.items())


def wait_until_ready(workers: dict[str, subprocess.Popen], logs: dict[str, Path]) -> None:
    deadline = time.monotonic() + WORKER_READY_S
    pending = set(workers)
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            if workers[name].poll() is not None:
                pytest.fail(f"worker {name} exited\n{logs_tail(logs)}")
            if " ready." in logs[name].read_text(errors="replace"):
                pending.discard(name)
        time.sleep(0.2)
    if pending:
        pytest.fail(
            f"workers {sorted(pending)} not ready after {WORKER_READY_S:.0f}s\n{logs_tail(logs)}"
        )


def wait_for_runs(runs: dict[str, subprocess.Popen], logs: dict[str, Path]) -> None:
    deadline = time.monotonic() + RUNS_DEADLINE_S
    for name, process in runs.items():
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"run of {name} still going after {RUNS_DEADLINE_S:.0f}s\n{logs_tail(logs)}"
            )
    failed = [name for name, process in runs.items() if process.returncode != 0]
    assert not failed, f"runs failed: {failed}\n{logs_tail(logs)}"


def run_ids_by_connection(home: Path) -> dict[str, str]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_runs()
    return {run.tags["connection"]: run.run_id for run in records if run.is_success}


@dataclass(frozen=True)
class StepOnWorker:
    connection: str
    step: str
    worker: str
    pids: frozenset[int]


def steps_on_workers(home: Path, run_ids: dict[str, str]) -> list[StepOnWorker]:
    """Which worker ran each step: dagster-celery's engine event names it; step events give pids."""
    found = []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for connection, run_id in run_ids.items():
            workers: dict[str, str] = {}
            pids: dict[str, set[int]] = {}
            for entry in instance.all_logs(run_id):
                event = entry.dagster_event
                if event is None or event.step_key is None:
                    continue
                if event.is_step_event:
                    pids.setdefault(event.step_key, set()).add(event.pid)
                data = event.engine_event_data if event.is_engine_event else None
                if data is not None and "Celery worker" in data.metadata:
                    workers[event.step_key] = str(data.metadata["Celery worker"].value)
            found += [
                StepOnWorker(connection, step, worker, frozenset(pids.get(step, ())))
                for step, worker in workers.items()
            ]
    return found


@pytest.mark.slow
@pytest.mark.postgres
def test_sync_runs_on_two_celery_workers_sharing_one_rate_budget(
    tmp_path, postgres_server, schemas, redis_url
):
    # -- the simulator, with TikTok's own window at the same limit as the budget
    simulator = RecordingSimulator(
        SimulatorConfig(
            seed=11,
            accounts=len(CONNECTIONS),
            videos_per_account=VIDEOS_PER_ACCOUNT,
            zero_video_every=0,
            rate_limit_per_minute=VIDEO_LIST_PER_MINUTE,
        )
    )
    simulator.start()
    processes: dict[str, subprocess.Popen] = {}  # workers and run orchestrators, by name
    logs = {name: tmp_path / f"{name}.log" for name in WORKERS}
    prefix = f"tiktok-crm-sync-test-{uuid.uuid4().hex[:12]}."
    try:
        # -- the environment this process, the run orchestrators and both workers share
        home = Path(os.environ["DAGSTER_HOME"])
        shutil.copy(CELERY_DIR / "dagster.yaml", home / "dagster.yaml")
        executor_yaml = tmp_path / "executor.yaml"
        write_executor_config(executor_yaml, redis_url, prefix)
        os.environ |= {
            "DAGSTER_POSTGRES_URL": schemas["dagster"].replace(
                "postgresql+psycopg", "postgresql+psycopg2"
            ),
            "DAGSTER_CELERY_CONFIG": str(executor_yaml),
            "TIKTOK_API_BASE_URL": simulator.base_url,
            "WAREHOUSE_URL": schemas["data"],
            "STATE_DATABASE_URL": schemas["data"],
            "TIKTOK_RATE_LIMIT_URL": schemas["budget"],
            "TIKTOK_RATE_LIMITS": f"video_list={VIDEO_LIST_BUDGET}",
        }
        use_live_app(simulator)
        store = ConnectionStore(make_engine(schemas["data"]))
        for account, name in enumerate(CONNECTIONS):
            connect(simulator, store, name, account=account)
        token_owner = {store.get(name).access_token: name for name in CONNECTIONS}

        for name in WORKERS:
            processes[name] = spawn(worker_command(name, executor_yaml), logs[name])
        wait_until_ready({n: processes[n] for n in WORKERS}, logs)

        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            instance.add_dynamic_partitions(CONNECTION_PARTITIONS_NAME, list(CONNECTIONS))
            # Runs starting together on a fresh instance race to create the pool's row
            # (UniqueViolation on concurrency_limits); a deployment creates it once, as here.
            instance.event_log_storage.initialize_concurrency_limit_to_default(TIKTOK_POOL)
        run_config = tmp_path / "run_config.yaml"
        run_config.write_text(yaml.safe_dump(QUIET_CONSOLE))
        started = time.monotonic()
        for name in CONNECTIONS:
            logs[name] = tmp_path / f"run-{name}.log"
            processes[name] = spawn(run_command(name, run_config), logs[name])
        wait_for_runs({n: processes[n] for n in CONNECTIONS}, logs)
        elapsed = time.monotonic() - started
        run_ids = run_ids_by_connection(home)
        assert sorted(run_ids) == sorted(CONNECTIONS), run_ids
    finally:
        for process in processes.values():
            stop(process)
        simulator.stop()
        _drop_redis_keys(redis_url, prefix)

    # -- every connection's rows landed in the warehouse
    warehouse = make_engine(schemas["data"])
    with warehouse.connect() as db:
        videos = dict(
            db.execute(
                sa.text("SELECT connection_name, count(*) FROM tiktok_videos GROUP BY 1")
            ).all()
        )
        profiles = db.execute(sa.text("SELECT count(*) FROM tiktok_profiles")).scalar_one()
    warehouse.dispose()
    assert videos == dict.fromkeys(CONNECTIONS, VIDEOS_PER_ACCOUNT)
    assert profiles == len(CONNECTIONS)

    # -- the steps ran on both workers
    steps = steps_on_workers(Path(os.environ["DAGSTER_HOME"]), run_ids)
    names = {step.worker.split("@")[0] for step in steps}
    assert names == set(WORKERS), steps
    pids = {
        worker: {pid for s in steps if s.worker == worker for pid in s.pids}
        for worker in {s.worker for s in steps}
    }
    first, second = pids.values()  # two processes, one per worker name
    assert first and second and not first & second, pids
    # One step per run syncs every asset of its connections (pipelines/defs/sync/assets.py).
    videos_worker = {s.connection: s.worker for s in steps if s.step == "connection_sync"}
    assert set(videos_worker) == set(CONNECTIONS), steps

    # -- one budget for both. The simulator saw both workers list videos at the same time...
    listed = sorted(
        (a.at, videos_worker[token_owner[a.token]])
        for a in simulator.recorder.arrivals
        if a.endpoint == "video_list"
    )
    assert len(listed) == len(CONNECTIONS) * VIDEOS_PER_ACCOUNT // 20  # 20 videos per page
    per_worker = {w: [at for at, by in listed if by == w] for w in set(videos_worker.values())}
    assert len(per_worker) == 2, per_worker
    overlap_start = max(times[0] for times in per_worker.values())
    overlap_end = min(times[-1] for times in per_worker.values())
    overlap_s = overlap_end - overlap_start
    assert overlap_s > 0, f"the workers did not list at the same time: {listed}"
    in_overlap = sum(overlap_start <= at <= overlap_end for at, _ in listed)
    assert simulator.stats()["video_list"]["rate_limited"] == 0

    # The budget's one video_list key holds an entry for every request of both workers, and
    # no window of it more than ONE budget's capacity (timestamps taken by the budget itself).
    budget = sa.create_engine(schemas["budget"])
    with budget.connect() as db:
        tables = sa.inspect(db).get_table_names()  # pyrate-limiter prefixes its own
        video_list_table = [t for t in tables if "tiktok_budget_default_video_list" in t]
        assert len(video_list_table) == 1, tables
        stamps_ms = sorted(
            db.execute(
                sa.text(
                    f'SELECT extract(epoch FROM item_timestamp) * 1000 FROM "{video_list_table[0]}"'
                )
            ).scalars()
        )
    budget.dispose()
    assert len(stamps_ms) == len(listed)
    (rate,) = budget_rates(VIDEO_LIST_BUDGET)
    beyond = [b - a for a, b in zip(stamps_ms, stamps_ms[rate.limit :], strict=False)]
    assert beyond and min(beyond) > rate.interval - 1, (rate, stamps_ms)
    switches = sum(a[1] != b[1] for a, b in itertools.pairwise(listed))
    print(  # the evidence, for the record (-s shows it)
        f"\nceleryscaleout: runs {elapsed:.1f}s; steps per worker "
        f"{ {w: sum(s.worker == w for s in steps) for w in sorted({s.worker for s in steps})} }; "
        f"pids {pids}; video_list per worker "
        f"{ {w: len(t) for w, t in sorted(per_worker.items())} } over "
        f"{listed[-1][0] - listed[0][0]:.1f}s, both listing for {overlap_s:.1f}s with "
        f"{in_overlap} requests, {switches} worker switches; budget entries {len(stamps_ms)}, "
        f"{rate.limit + 1} entries span at least {min(beyond) / 1000:.1f}s"
    )


def _drop_redis_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    except redis.exceptions.ConnectionError:
        pass
    finally:
        client.close()
