"""Every entry point starts: each module imports on its own, each CLI answers --help, and each
`python -m bench.X` runs at a smoke size.

Round trips: a fresh interpreter per module (forked from one that holds only third-party
libraries, see tests/import_first.py) imports that module first, so a circular import between
the project's modules fails here, whatever order the rest of the suite happens to import them
in (issue 15: `import simulators.background` first failed while the suite passed). Each
benchmark runs as a user runs it, in its own process, at a size that takes seconds; its figures
are not checked, only that it exits 0 and its last line is the JSON it promises.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Every top-level package of the repository is checked, so a new one is covered without asking.
PACKAGES = sorted(
    path.name
    for path in REPO.iterdir()
    if (path / "__init__.py").is_file() and path.name != "tests"
)
IMPORT_TIMEOUT_S = 600
HELP_TIMEOUT_S = 120


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _python_files() -> list[Path]:
    return sorted(
        path
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if "__pycache__" not in path.parts
    )


# `__main__` modules run their program when imported: they are started with --help instead.
MODULES = [_module_name(p) for p in _python_files() if p.name != "__main__.py"]
MAIN_PACKAGES = [
    _module_name(p.parent / "__init__.py") for p in _python_files() if p.name == "__main__.py"
]


def test_every_project_package_is_checked():
    assert {"bench", "pipelines", "resources", "simulators", "transforms"} <= set(PACKAGES)
    assert len(MODULES) > 50


@pytest.fixture(scope="module")
def import_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    """module -> traceback of importing it first in its own process (None: it imported)."""
    home = tmp_path_factory.mktemp("import_first")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("TIKTOK_") and name not in ("WAREHOUSE_URL", "STATE_DATABASE_URL")
    }
    env |= {"TIKTOK_CRM_SYNC_HOME": str(home / "data"), "DAGSTER_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.import_first", ",".join(PACKAGES), *MODULES],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {outcome["module"]: outcome["error"] for outcome in outcomes}


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_first_in_a_fresh_interpreter(module, import_errors):
    assert module in import_errors, f"{module} was not reported by tests.import_first"
    error = import_errors[module]
    if error is not None:
        pytest.fail(f"`import {module}` as the first project import fails:\n{error}", False)


def _scripts() -> list[tuple[str, str]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return sorted(project.get("scripts", {}).items())


HELP_COMMANDS = [
    pytest.param(["-m", package, "--help"], id=f"python -m {package}") for package in MAIN_PACKAGES
] + [
    # What the installed console script runs, taken from pyproject.toml's [project.scripts].
    pytest.param(
        [
            "-c",
            f"import sys; from {target.split(':')[0]} import {target.split(':')[1]} as main; "
            f"sys.argv[0] = {name!r}; sys.exit(main())",
            "--help",
        ],
        id=name,
    )
    for name, target in _scripts()
]


@pytest.mark.parametrize("command", HELP_COMMANDS)
def test_command_line_entry_point_answers_help(command):
    done = subprocess.run(
        [sys.executable, *command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=HELP_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "usage" in done.stdout.lower()


@dataclass(frozen=True)
class Smoke:
    """How one benchmark runs at a smoke size: its arguments, and what it needs."""

    args: tuple[str, ...]
    slow: bool = False  # starts Dagster runs or further processes: tens of seconds
    postgres: bool = False  # needs the PostgreSQL server; "{postgres_url}" in args is filled in
    timeout_s: float = 300


# One entry per `bench/*.py` entry point (a new benchmark fails until it has one). Sizes are the
# smallest that still take every code path the benchmark measures.
SMOKE_ARGS: dict[str, Smoke] = {
    "crm": Smoke(("--records", "10", "--changed-share", "0.5")),
    "extract": Smoke(
        (
            *("--connections", "2", "--videos", "3", "--target-seconds", "1", "--workers", "2"),
            *("--latency-low", "0", "--latency-high", "1", "--naive-sample", "1"),
        )
    ),
    "load": Smoke(("--rows", "10", "--repeats", "1", "--url", "{postgres_url}"), postgres=True),
    "memory": Smoke(("--sizes", "5,10"), slow=True),
    "soak": Smoke(("--connections", "2", "--videos", "2", "--batch-size", "1"), slow=True),
    # dagster-daemon, the schedule's first tick (up to a minute) and one run.
    "daily": Smoke(
        (
            "--connections",
            "2",
            "--videos",
            "2",
            "--days",
            "1",
            "--latency-low",
            "0",
            "--latency-high",
            "1",
        ),
        slow=True,
        timeout_s=300,
    ),
    # dagster-daemon, the schedule's first tick (up to a minute), the baseline and `sync --all`.
    "clock": Smoke(
        (
            *("--connections", "2", "--videos", "2", "--days", "1", "--gap", "1"),
            *("--latency-low", "0", "--latency-high", "1"),
        ),
        slow=True,
        timeout_s=300,
    ),
    # dagster dev, a backfill through its GraphQL API and one run: about a minute.
    "backfill": Smoke(
        (
            *("--connections", "1", "--videos", "1", "--batch-size", "1", "--timeout", "240"),
            *("--latency-low", "0", "--latency-high", "1"),
        ),
        slow=True,
        timeout_s=420,
    ),
}
# Modules of bench/ that are not benchmarks: what they are for.
BENCH_HELPERS = {
    "extract_setup": "setup shared by bench.extract, bench.memory and bench.soak",
    "clock_baseline": "the plain httpx script bench.clock races, run by it in its own process",
}
BENCH_MODULES = sorted(p.stem for p in (REPO / "bench").glob("*.py") if p.stem != "__init__")


def _bench_param(name: str) -> pytest.ParameterSet:
    smoke = SMOKE_ARGS.get(name)
    marks = [pytest.mark.slow] if smoke and smoke.slow else []
    marks += [pytest.mark.postgres] if smoke and smoke.postgres else []
    return pytest.param(name, marks=marks, id=f"bench.{name}")


def test_bench_helpers_are_not_entry_points():
    for name in BENCH_HELPERS:
        source = (REPO / "bench" / f"{name}.py").read_text()
        assert '__name__ == "__main__"' not in source, f"bench.{name} runs: give it smoke args"


def test_smoke_table_names_only_existing_benchmarks():
    assert set(SMOKE_ARGS) | set(BENCH_HELPERS) <= set(BENCH_MODULES)


@pytest.mark.parametrize(
    "name", [_bench_param(name) for name in BENCH_MODULES if name not in BENCH_HELPERS]
)
def test_benchmark_runs_at_smoke_size(name, request):
    assert name in SMOKE_ARGS, (
        f"add smoke args for bench.{name} to SMOKE_ARGS in tests/{Path(__file__).name} "
        "(or to BENCH_HELPERS if it is no entry point)"
    )
    smoke = SMOKE_ARGS[name]
    args = list(smoke.args)
    if smoke.postgres:
        server = request.getfixturevalue("postgres_server")
        url = server.url.render_as_string(hide_password=False)
        args = [arg.replace("{postgres_url}", url) for arg in args]
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=smoke.timeout_s,
        check=False,
    )
    output = f"stdout:\n{done.stdout[-2000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == 0, output
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines, output
    assert isinstance(json.loads(lines[-1]), dict), output
