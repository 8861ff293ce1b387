"""Where the CLI writes: progress and reports to stderr, machine output to stdout.

Whatever a user may copy (a URL, a command, a connection name) is printed whole: `say` never
lets rich wrap or cut a line; the terminal wraps it softly, so copying still gives one line.
"""

import sys
import warnings

from rich.console import Console

console = Console(stderr=True)

# Warnings that libraries address to the project's developers, not to a user of the CLI.
_LIBRARY_WARNINGS: tuple[type[Warning], ...] = (DeprecationWarning, PendingDeprecationWarning)


def say(message: str) -> None:
    """A line for the reader on stderr: plain text (no markup), never wrapped or truncated."""
    console.print(message, markup=False, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    """The command's own output (stdout); lines are never wrapped or truncated by rich."""
    return Console(soft_wrap=True, highlight=False)


def quiet_library_warnings() -> None:
    """Keep Dagster's beta/preview/supersession notices and libraries' deprecations off the
    terminal of CLI commands. Called in the CLI process only: runs launched by the webserver or
    the daemon are other processes and still log them. `-W`/PYTHONWARNINGS still win."""
    if sys.warnoptions:
        return
    from dagster import BetaWarning, PreviewWarning, SupersessionWarning

    for category in (*_LIBRARY_WARNINGS, BetaWarning, PreviewWarning, SupersessionWarning):
        warnings.filterwarnings("ignore", category=category)


def failure_lines(failed: dict[str, str]) -> list[str]:
    """One line per failure sentence: a sentence that names its connection is said once as it is;
    one shared by several connections (a run that failed before reaching them) names them first."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in failed.items():
        by_reason.setdefault(reason, []).append(name)
    lines = []
    for reason, names in by_reason.items():
        named = len(names) == 1 and repr(names[0]) in reason  # sentences quote their connection
        lines.append(f"failed: {reason}" if named else f"failed: {', '.join(names)}: {reason}")
    return lines
