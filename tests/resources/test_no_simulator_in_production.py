"""Production code never imports the simulators; the demo app's pair matches the simulator's."""

import ast
from pathlib import Path

from resources.tiktok import apps
from simulators.tiktok import config

REPO = Path(__file__).resolve().parents[2]
# The demo and the `simulator serve` command run the simulator on purpose.
ALLOWED = {"pipelines/demo.py", "pipelines/cli/demo.py", "pipelines/cli/simulator.py"}
ALLOWED |= {"pipelines/cli/crm.py"}  # `crm serve-fake`: the CRM fakes for a dry run of setup


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_production_packages_do_not_import_the_simulators():
    offenders = []
    for package in ("resources", "services", "transforms", "pipelines"):
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if relative in ALLOWED:
                continue
            if any(name.split(".")[0] == "simulators" for name in imported_modules(path)):
                offenders.append(relative)
    assert offenders == []


def test_the_demo_app_is_the_simulators_demo_app():
    assert (apps.DEMO_CLIENT_KEY, apps.DEMO_CLIENT_SECRET) == (
        config.DEMO_CLIENT_KEY,
        config.DEMO_CLIENT_SECRET,
    )
