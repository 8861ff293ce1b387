"""Imports each named module as the FIRST project import of its interpreter, two at a time.

    python -m tests.import_first PACKAGE[,PACKAGE...] MODULE [MODULE ...]

A fresh `python -c "import X"` per module costs about a second each, nearly all of it importing
Dagster, SQLAlchemy and pandas, so 130 modules would take minutes on a CI machine. This process
imports those third-party libraries once, checks that no module of the project's packages is
loaded, then forks one child per module: each child starts from that state (third-party libraries
only), imports its one module and exits. So each module is the first project import of its
process, which is what `python -m bench.crm` or `import simulators.background` does on a fresh
interpreter: a circular import among the project's modules fails here the same way.

Prints one JSON line per module: {"module": name, "error": null or the traceback}.
Linux and macOS only (os.fork).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import traceback
from typing import NoReturn

# Heavy third-party libraries the project imports; none of them imports the project.
PRELOADED = ("dagster", "sqlalchemy", "httpx", "pandas", "pydantic", "rich", "click", "yaml")
PARALLEL = 2  # CI machines have two cores
IMPORT_TIMEOUT_S = 120  # an import that blocks (a server started at import) is killed
_MAX_ERROR_CHARS = 8_000  # well under a pipe's buffer, so a child never blocks on its report


def project_modules_loaded(packages: set[str]) -> list[str]:
    return sorted(name for name in sys.modules if name.split(".")[0] in packages)


def _child(module: str, report_fd: int) -> NoReturn:
    signal.alarm(IMPORT_TIMEOUT_S)  # default action of SIGALRM: the process ends
    os.dup2(2, 1)  # a print at import time must not corrupt the JSON lines on stdout
    try:
        importlib.import_module(module)
        error = ""
    except BaseException:  # SystemExit and KeyboardInterrupt at import are failures too
        error = traceback.format_exc()[-_MAX_ERROR_CHARS:]
    os.write(report_fd, error.encode("utf-8", "replace"))
    os._exit(0)


def _outcome(module: str, status: int, error: str) -> dict[str, str | None]:
    code = os.waitstatus_to_exitcode(status)
    if not error and code != 0:
        error = f"the import process of {module} ended with status {code}"
        if code == -signal.SIGALRM:
            error += f" (killed: the import took over {IMPORT_TIMEOUT_S} s)"
    return {"module": module, "error": error or None}


def main(argv: list[str]) -> None:
    packages, modules = set(argv[0].split(",")), list(argv[1:])
    for name in PRELOADED:
        importlib.import_module(name)
    loaded = project_modules_loaded(packages)
    if loaded:
        raise SystemExit(f"preloading {PRELOADED} imported project modules {loaded[:5]}")
    running: dict[int, tuple[str, int]] = {}
    while modules or running:
        while modules and len(running) < PARALLEL:
            module = modules.pop(0)
            read_fd, write_fd = os.pipe()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                _child(module, write_fd)
            os.close(write_fd)
            running[pid] = (module, read_fd)
        pid, status = os.wait()
        module, read_fd = running.pop(pid)
        with os.fdopen(read_fd, "rb") as report:
            error = report.read().decode("utf-8", "replace")
        print(json.dumps(_outcome(module, status, error)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
