"""Code location for the Celery scale-out: the project's definitions on the celery executor.

Every job of `pipelines.definitions:defs` runs its steps as Celery tasks; the executor is
configured from the same YAML file the workers start with (DAGSTER_CELERY_CONFIG, default
`executor.yaml` beside this file), so orchestrators and workers agree on broker and key prefix.
Load it with `dagster dev -f deploy/celery/definitions.py -d .` (or a workspace entry with
`python_file` and `working_directory`); workers import it through the run's code pointer.
See docs/scaleout.md.
"""

import os
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from dagster_celery import celery_executor

# The daily sync job runs in process unless told otherwise: here its one step goes to Celery.
os.environ.setdefault("SYNC_EXECUTOR", "default")

from pipelines.definitions import defs as project_defs

EXECUTOR_CONFIG_ENV = "DAGSTER_CELERY_CONFIG"
DEFAULT_EXECUTOR_CONFIG = Path(__file__).resolve().with_name("executor.yaml")


def executor_config_path() -> Path:
    return Path(os.environ.get(EXECUTOR_CONFIG_ENV) or DEFAULT_EXECUTOR_CONFIG)


def load_executor_config(path: Path) -> dict[str, Any]:
    """The `execution: config:` block of an executor YAML file (the workers' `-y` file)."""
    parsed = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        return dict(parsed["execution"]["config"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: expected an `execution: config:` block") from err


@dg.definitions
def defs() -> dg.Definitions:
    executor = celery_executor.configured(
        load_executor_config(executor_config_path()), name="celery"
    )
    return dg.Definitions.merge(project_defs(), dg.Definitions(executor=executor))
