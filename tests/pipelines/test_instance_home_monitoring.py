"""The CLI's instance must carry run monitoring: without it a dead launched run is never failed."""

import os
from pathlib import Path

import pytest
import yaml

from pipelines.instance_home import PROJECT_YAML, InstanceNotConfigured, use_project_instance


def test_a_dagster_yaml_without_run_monitoring_is_refused_naming_it(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    config = yaml.safe_load(PROJECT_YAML.read_text())
    del config["run_monitoring"]
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    os.environ["DAGSTER_HOME"] = str(home)
    with pytest.raises(InstanceNotConfigured, match=r"run_monitoring\.enabled"):
        use_project_instance()
    (home / "dagster.yaml").write_text(PROJECT_YAML.read_text())
    assert use_project_instance() == home  # the project's own settings pass
