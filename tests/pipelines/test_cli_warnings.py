"""Library warnings stay off the terminal of ordinary CLI commands, and only there.

Round trip: `connections list` in its own process (warning filters are per process) while
libraries warn in the middle of it (tests/pipelines/cli_warning_harness.py). Through the CLI's
entry point none of those lines reaches the terminal; without it they do, so the harness proves
something; `-W` still shows them to whoever asks. Importing the CLI installs no filter: Dagster
runs in other processes (webserver, daemon) keep their warnings in the run's logs.
"""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WARNING_NAMES = ("SupersessionWarning", "BetaWarning", "PreviewWarning", "DeprecationWarning")


def run_cli(*args: str, python_options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    command = [sys.executable, *python_options, "-m", "tests.pipelines.cli_warning_harness", *args]
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def warning_lines(done: subprocess.CompletedProcess) -> list[str]:
    output = done.stdout + done.stderr
    return [line for line in output.splitlines() if any(n in line for n in WARNING_NAMES)]


def test_a_cli_command_prints_no_library_warning():
    done = run_cli("main", "connections", "list")
    assert "no connections yet" in done.stderr  # the command itself did run
    assert warning_lines(done) == []


def test_without_the_entry_point_the_same_warnings_would_reach_the_terminal():
    shown = warning_lines(run_cli("group", "connections", "list"))
    assert {"SupersessionWarning", "BetaWarning", "PreviewWarning"} <= {
        name for line in shown for name in WARNING_NAMES if name in line
    }


def test_warnings_asked_for_with_w_are_shown():
    shown = warning_lines(run_cli("main", "connections", "list", python_options=("-Wdefault",)))
    assert len(shown) == len(WARNING_NAMES)


def test_importing_the_cli_installs_no_filter():
    code = (
        "import warnings; before = list(warnings.filters); import pipelines.cli; "
        "assert warnings.filters == before, 'importing pipelines.cli changed warning filters'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
