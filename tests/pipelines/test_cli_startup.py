"""`tiktok-crm-sync --help` answers without importing the commands (issue 20: it took 2.6 s).

Round trips: a fresh interpreter renders the top-level help through the entry point's group and
reports which heavy libraries got imported (none may be); the summaries the help shows from the
lazy table are each command's own, so the two never drift apart. No timing is asserted.
"""

import subprocess
import sys

import pytest

from pipelines.cli import COMMANDS, main

HEAVY = ("dagster", "sqlalchemy", "httpx", "resources", "services", "simulators")

PROBE = """
import sys
from click.testing import CliRunner
from pipelines.cli import main
result = CliRunner().invoke(main, ["--help"])
assert result.exit_code == 0, result.output
print(",".join(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1:]))))
print(result.output)
"""


def test_top_level_help_imports_no_command_module():
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *HEAVY], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded, _, help_text = done.stdout.partition("\n")
    assert loaded == ""  # none of HEAVY
    for name in COMMANDS:
        assert f"  {name} " in help_text


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_summary_is_the_commands_own(name):
    command = main.get_command(None, name)  # imports the module, as running it does
    assert command is not None and command.name == name
    assert COMMANDS[name][2].rstrip(".") == command.get_short_help_str(limit=500).rstrip(".")
