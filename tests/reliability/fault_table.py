"""Regenerate the fault table of docs/reliability.md from a real run of the fault matrix.

    .venv/bin/python -m tests.reliability.fault_table

Runs tests/reliability/test_fault_matrix.py with FAULT_MATRIX_REPORT set, so every case appends
what it observed, and writes the table between the markers of the "Fault matrix" section. The
expected column comes from FAULT_MATRIX, the observed one only from the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.reliability.fault_cases import FAULT_MATRIX, RELIABILITY_DOC, REPORT_ENV

START, END = "<!-- fault-matrix:start -->", "<!-- fault-matrix:end -->"
HEADER = (
    "| fault | where injected | expected outcome | observed outcome | bystanders |\n"
    "|---|---|---|---|---|\n"
)
MATRIX_TEST = Path(__file__).with_name("test_fault_matrix.py")


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def run_matrix() -> dict[str, dict[str, str]]:
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "observed.jsonl"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", MATRIX_TEST]
        env = os.environ | {REPORT_ENV: str(report)}
        # The run's exit status is not the point: a failing case is a row to read, not to hide.
        subprocess.run([str(part) for part in command], env=env, check=False)
        lines = report.read_text(encoding="utf-8").splitlines() if report.exists() else []
    return {row["fault"]: row for row in map(json.loads, lines)}


def render(observed: dict[str, dict[str, str]]) -> str:
    rows = []
    for case in FAULT_MATRIX:
        row = observed.get(case.fault)
        seen = row["observed"] if row else "not run"
        if case.bug:
            seen += " **(known bug, see below)**"
        bystanders = row["bystanders"] if row else "not run"
        cells = [case.fault, case.where, case.expected(), seen, bystanders]
        rows.append("| " + " | ".join(map(cell, cells)) + " |\n")
    bugs = [f"- **{case.fault}**: {case.bug}.\n" for case in FAULT_MATRIX if case.bug]
    known = "\nKnown bugs (their cases are strict `xfail` until fixed):\n\n" + "".join(bugs)
    return HEADER + "".join(rows) + (known if bugs else "")


def main() -> None:
    doc = RELIABILITY_DOC.read_text(encoding="utf-8")
    before, rest = doc.split(START, 1)
    _old, after = rest.split(END, 1)
    table = render(run_matrix())
    RELIABILITY_DOC.write_text(f"{before}{START}\n{table}{END}{after}", encoding="utf-8")
    print(f"wrote {len(FAULT_MATRIX)} rows to {RELIABILITY_DOC}")


if __name__ == "__main__":
    main()
