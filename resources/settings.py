"""Non-secret configuration read from the environment, with the embedded defaults.

Secrets (client secrets, CRM tokens) are never read here: they are resolved at run time by the code
that needs them, so a missing secret fails that run with the variable's name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

MODE_DEMO = "demo"
MODE_LIVE = "live"


DEMO_FOLDER = "demo"
# The demo's databases, when they should not be the demo home's SQLite files (a PostgreSQL to
# try): the live WAREHOUSE_URL and STATE_DATABASE_URL are never read in demo mode.
DEMO_WAREHOUSE_VARIABLE = "DEMO_WAREHOUSE_URL"
DEMO_STATE_VARIABLE = "DEMO_STATE_DATABASE_URL"


def live_data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The live home: TIKTOK_CRM_SYNC_HOME, else ./.data."""
    return Path(environ.get("TIKTOK_CRM_SYNC_HOME") or Path.cwd() / ".data").resolve()


def demo_home(environ: Mapping[str, str] = os.environ) -> Path:
    """The demo's own home inside the live one: its state, warehouse, Dagster instance and key.

    Removing this folder (or `tiktok-crm-sync demo --reset`) clears the demo and nothing else.
    """
    return live_data_dir(environ) / DEMO_FOLDER


def data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the embedded SQLite databases live: the live home, or in demo mode the demo's."""
    return demo_home(environ) if mode(environ) == MODE_DEMO else live_data_dir(environ)


def _sqlite_url(name: str, environ: Mapping[str, str]) -> str:
    path = data_dir(environ) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def warehouse_url(environ: Mapping[str, str] = os.environ) -> str:
    # Demo mode never reads the live URLs: simulated rows stay out of the real warehouse.
    variable = DEMO_WAREHOUSE_VARIABLE if mode(environ) == MODE_DEMO else "WAREHOUSE_URL"
    return environ.get(variable) or _sqlite_url("warehouse.db", environ)


def state_database_url(environ: Mapping[str, str] = os.environ) -> str:
    # Demo connections never reach the live state database.
    variable = DEMO_STATE_VARIABLE if mode(environ) == MODE_DEMO else "STATE_DATABASE_URL"
    return environ.get(variable) or _sqlite_url("state.db", environ)


def mode(environ: Mapping[str, str] = os.environ) -> str:
    value = (environ.get("TIKTOK_CRM_SYNC_MODE") or MODE_LIVE).strip().lower()
    if value not in (MODE_DEMO, MODE_LIVE):
        raise ValueError(f"TIKTOK_CRM_SYNC_MODE must be 'demo' or 'live', not {value!r}")
    return value


def mappings_dir(environ: Mapping[str, str] = os.environ) -> Path:
    default = Path(__file__).resolve().parents[1] / "pipelines" / "mappings"
    return Path(environ.get("MAPPINGS_DIR") or default)


BATCH_VARIABLE = "SYNC_BATCH_SIZE"
RENAMED_BATCH_VARIABLE = "BACKFILL_BATCH_SIZE"  # its name before the schedule batched too
DEFAULT_BATCH_SIZE = 500
MAX_BATCH_SIZE = 10_000


def sync_batch_size(environ: Mapping[str, str] = os.environ) -> int:
    """How many connections one run covers: daily schedule, `sync` and backfills alike (read
    when the code location loads)."""
    variable = BATCH_VARIABLE
    if environ.get(RENAMED_BATCH_VARIABLE) and not environ.get(BATCH_VARIABLE):
        # Refused rather than ignored, which would change the runs silently. Drop after 2027-06.
        raise ValueError(f"{RENAMED_BATCH_VARIABLE} is now {BATCH_VARIABLE}: rename the variable")
    raw = (environ.get(variable) or "").strip()
    if not raw:
        return DEFAULT_BATCH_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_BATCH_SIZE:
        raise ValueError(
            f"{variable} must be a whole number of connections per run from 1 to "
            f"{MAX_BATCH_SIZE} (default {DEFAULT_BATCH_SIZE}), not {raw!r}"
        )
    return int(raw)


# --- checked once, before any work (issue 18) -----------------------------------------------------

DATABASE_URL_FORM = (
    "postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE or sqlite:////ABS/PATH.db"
)
RATE_LIMIT_URL_FORM = "sqlite:///PATH, redis://HOST:PORT/DB or postgresql+psycopg://USER@HOST/DB"
RATE_LIMIT_BACKENDS = ("sqlite", "redis", "rediss", "postgresql", "postgres")
DATABASE_VARIABLES = ("WAREHOUSE_URL", "STATE_DATABASE_URL")


class SettingError(ValueError):
    """A setting that cannot work: one line naming the variable and the form it expects.

    Never quotes a value that may hold a password: a URL is shown with its password hidden, and
    a value that is not a URL at all is not shown.
    """


def check_database_url(variable: str, url: str) -> None:
    """Raise SettingError unless `url` is a SQLAlchemy URL whose dialect and driver are here."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SettingError(
            f"{variable} is not a database URL (its value is not shown: it may hold a password); "
            f"expected {DATABASE_URL_FORM}"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise SettingError(
            f"{variable}={shown}: {parsed.drivername!r} is not a database this project can use; "
            f"expected {DATABASE_URL_FORM}"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError:
        raise SettingError(
            f"{variable}={shown}: its driver ({parsed.drivername}) is not installed; "
            f"expected {DATABASE_URL_FORM}"
        ) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).expanduser().resolve().parent
        if not folder.is_dir():
            raise SettingError(
                f"{variable}={shown}: the folder {folder} does not exist; create it or point "
                f"{variable} elsewhere ({DATABASE_URL_FORM})"
            )


def check_rate_limit_url(url: str) -> None:
    """Raise SettingError unless TIKTOK_RATE_LIMIT_URL names a store the budget can use."""
    backend = url.split(":", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if backend not in RATE_LIMIT_BACKENDS:
        raise SettingError(
            "TIKTOK_RATE_LIMIT_URL is not a URL of a supported store (its value is not shown: it "
            f"may hold a password); expected {RATE_LIMIT_URL_FORM}"
        )
    if backend == "sqlite":
        check_database_url("TIKTOK_RATE_LIMIT_URL", url)
    # Redis and PostgreSQL URLs go to their own clients (postgres:// included, which SQLAlchemy
    # refuses); whether they answer is the budget's to report, per request, as a transient error.


def setting_problems(environ: Mapping[str, str] = os.environ) -> list[str]:
    """One line per configured URL or batch size that cannot work; empty when all can (defaults
    always can)."""
    problems = []
    demo = mode(environ) == MODE_DEMO  # the demo reads its own URLs, never the live ones
    variables = (DEMO_WAREHOUSE_VARIABLE, DEMO_STATE_VARIABLE) if demo else DATABASE_VARIABLES
    for variable in variables:
        if environ.get(variable):
            try:
                check_database_url(variable, environ[variable])
            except SettingError as err:
                problems.append(str(err))
    if environ.get("TIKTOK_RATE_LIMIT_URL"):
        try:
            check_rate_limit_url(environ["TIKTOK_RATE_LIMIT_URL"])
        except SettingError as err:
            problems.append(str(err))
    try:
        sync_batch_size(environ)
    except ValueError as err:
        problems.append(str(err))
    return problems
