"""The Dagster instance the CLI runs in: the project's settings, or a clear refusal.

The project's dagster.yaml carries what a safe daily sync relies on: the run queue and its
limits, the `tiktok_api` pool, run retries and run monitoring. Dagster reads it only from
DAGSTER_HOME, and a DAGSTER_HOME without those settings would silently run without them. So
the CLI points DAGSTER_HOME at the project when it is unset, gives a DAGSTER_HOME without a
dagster.yaml the project's one, and refuses a dagster.yaml that lacks the settings, saying how
to add them.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from resources import settings

PROJECT_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"
STORAGE_MADE = ".storage.made"  # in DAGSTER_HOME, once its storage exists
# (path in dagster.yaml, why the sync needs it)
REQUIRED = (
    (("run_retries", "enabled"), "retries of runs whose process crashed"),
    (("concurrency", "runs", "max_concurrent_runs"), "the run queue's limit"),
    (("concurrency", "pools", "default_limit"), "the pool that shares TikTok's budget"),
    (("run_monitoring", "enabled"), "failing runs whose worker died, so they free their slots"),
)


class InstanceNotConfigured(RuntimeError):
    """DAGSTER_HOME lacks the project's settings; the message says how to add them."""


def _missing(config: dict) -> list[str]:
    missing = []
    for path, why in REQUIRED:
        node: object = config
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node in (None, False):
            missing.append(f"{'.'.join(path)} ({why})")
    return missing


def use_project_instance(project_dir: Path | None = None) -> Path:
    """Set DAGSTER_HOME to the project when unset; refuse one without the project's settings;
    create the instance's storage if it is new."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        project_dir = project_dir or Path.cwd()
        # The root dagster.yaml is read only when DAGSTER_HOME is the folder that holds it.
        chosen = project_dir if (project_dir / "dagster.yaml").exists() else settings.data_dir()
        chosen.mkdir(parents=True, exist_ok=True)
        if not (chosen / "dagster.yaml").exists():
            (chosen / "dagster.yaml").write_text(PROJECT_YAML.read_text())
        os.environ["DAGSTER_HOME"] = str(chosen.resolve())
        create_instance_storage()
        return chosen.resolve()
    path = Path(home) / "dagster.yaml"
    if not path.exists():
        # A new instance folder: it gets the project's settings rather than Dagster's defaults.
        Path(home).mkdir(parents=True, exist_ok=True)
        path.write_text(PROJECT_YAML.read_text())
        create_instance_storage()
        return Path(home)
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise InstanceNotConfigured(
            f"DAGSTER_HOME={home}: dagster.yaml is not valid YAML ({err})"
        ) from err
    missing = _missing(config if isinstance(config, dict) else {})
    if missing:
        raise InstanceNotConfigured(
            f"DAGSTER_HOME={home} has no {', '.join(missing)} in {path}: the daily sync would run "
            f"without them. Copy the project's settings there (`cp {PROJECT_YAML} {path}`, or "
            "merge its run_retries, run_monitoring and concurrency sections into yours), or unset "
            "DAGSTER_HOME to use the project's instance"
        )
    create_instance_storage()
    return Path(home)


def create_instance_storage() -> None:
    """Create the instance's storage (runs, event index, schedules) if it is new, one process at
    a time.

    Each Dagster process that finds an embedded SQLite storage missing creates it and stamps its
    schema version; two at once (syncs started together by cron, a daemon and a CLI on a new
    DAGSTER_HOME) stamp it twice, and every later process fails with "more than one head
    present". An exclusive lock on a file in DAGSTER_HOME orders them. (`dagster dev` creates
    the storage in its first process.) A marker written under the lock says it was done, so a
    command on a made home does not import Dagster for it (half a second).
    """
    import fcntl

    home = Path(os.environ["DAGSTER_HOME"])
    with (home / ".storage.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (home / STORAGE_MADE).exists():
            return
        import dagster as dg

        with dg.DagsterInstance.get():
            pass
        (home / STORAGE_MADE).touch()
