"""The layers import one way, checked in a fresh process each: the CRM and TikTok clients never
load the mapping engine (which reads TikTok's field table from `resources.tiktok.scopes` and the
CRM targets from `resources.crm.presets`, so a dependency back would be a cycle), and the service
layer never loads Dagster or the pipelines."""

import subprocess
import sys

import pytest

CASES = [
    # (imported first, a package that must not be loaded by it)
    ("resources.crm.push", "transforms"),
    ("resources.crm.presets", "transforms"),
    ("resources.crm.setup_hubspot", "transforms"),
    ("resources.crm.setup_salesforce", "transforms"),
    ("resources.tiktok.client", "transforms"),
    ("services.connection_sync", "pipelines"),
    ("services.connection_sync", "dagster"),
]


@pytest.mark.parametrize(("module", "forbidden"), CASES)
def test_a_layer_does_not_load_the_one_above(module, forbidden):
    prefix = forbidden + "."
    code = (
        f"import sys, {module}; "
        f"loaded = [m for m in sys.modules if m == {forbidden!r} or m.startswith({prefix!r})]; "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{module} loads {forbidden}: {done.stdout}{done.stderr[-2000:]}"
