"""The connection store at rest: grants in, encrypted rows on disk, tokens out only with the key.

Covers the raw SQLite file (no token in clear, WAL included), key rotation, a wrong or missing key,
deleting tokens on disconnect, the migration of rows written in clear by earlier versions, and the
same round trip on PostgreSQL.
"""

import os

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from resources.connections.crypto import TOKEN_KEYS_VAR, TokenCipher, TokenKeyError
from resources.connections.store import (
    DISCONNECTED,
    ConnectionStore,
    NoTokens,
    connection_metadata,
    validate_name,
)
from resources.database import make_engine
from resources.tiktok.apps import app_env_names
from resources.tiktok.oauth import TokenGrant

NOW = 1_800_000_000.0
ACCESS = "act.CLEARTEXTaccess1234567890abcdefTW!5259"
REFRESH = "rft.CLEARTEXTrefresh1234567890abcdefXY!0001"


def grant(access: str = ACCESS, refresh: str = REFRESH, open_id: str = "-000abc") -> TokenGrant:
    return TokenGrant(
        open_id=open_id,
        scopes=frozenset({"user.info.basic", "video.list"}),
        expires_in=86_400,
        refresh_expires_in=31_536_000,
        issued_at=NOW,
        access_token=access,
        refresh_token=refresh,
    )


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "state.db"


@pytest.fixture
def store(db_path):
    return ConnectionStore(make_engine(f"sqlite:///{db_path}"), now=lambda: NOW)


def raw_bytes(db_path) -> bytes:
    """Everything SQLite wrote for the database: the main file and its write-ahead log."""
    files = [db_path, db_path.with_name(db_path.name + "-wal")]
    return b"".join(path.read_bytes() for path in files if path.exists())


def test_the_raw_database_file_holds_no_token_in_clear(store, db_path):
    store.save_grant("creator-1", "default", grant())
    refreshed = grant(
        "act.CLEARTEXTrotated000000000000000000!1", "rft.CLEARTEXTrotated0000000000!2"
    )
    assert store.replace_tokens("creator-1", refreshed, expected_version=1)
    store.engine.dispose()
    data = raw_bytes(db_path)
    assert b"tiktok_connections" in data and b"-000abc" in data  # we did read the right file
    for secret in (ACCESS, REFRESH, refreshed.access_token, refreshed.refresh_token):
        assert secret.encode() not in data
        assert b"CLEARTEXT" not in data
    assert store.get("creator-1").refresh_token == refreshed.refresh_token


def test_listing_needs_no_key_but_reading_a_token_names_the_variable(store):
    store.save_grant("creator-1", "default", grant())
    del os.environ[TOKEN_KEYS_VAR]
    keyless = ConnectionStore(store.engine)
    assert keyless.names() == ["creator-1"]  # sensor, schedule and `connections list` work
    with pytest.raises(TokenKeyError, match=f"{TOKEN_KEYS_VAR} is not set"):
        _ = keyless.get("creator-1").access_token


def test_a_wrong_key_is_a_clear_error_without_token_text(store):
    store.save_grant("creator-1", "default", grant())
    other = ConnectionStore(store.engine, cipher=TokenCipher([Fernet.generate_key().decode()]))
    with pytest.raises(TokenKeyError) as caught:
        _ = other.get("creator-1").refresh_token
    assert "cannot decrypt tokens of connection 'creator-1'" in str(caught.value)
    assert REFRESH not in str(caught.value)


def test_rotate_key_re_encrypts_every_row_so_the_old_key_can_go(store):
    store.save_grant("creator-1", "default", grant())
    store.save_grant("creator-2", "default", grant("act.two!", "rft.two!", open_id="-000def"))
    store.forget_tokens("creator-2", reason="test")  # rows without tokens are skipped
    old = os.environ[TOKEN_KEYS_VAR]
    new = Fernet.generate_key().decode()
    both = ConnectionStore(store.engine, cipher=TokenCipher([new, old]))
    assert both.rotate_key() == 1
    only_new = ConnectionStore(store.engine, cipher=TokenCipher([new]))
    assert only_new.get("creator-1").access_token == ACCESS
    with pytest.raises(TokenKeyError):
        _ = ConnectionStore(store.engine, cipher=TokenCipher([old])).get("creator-1").access_token


def test_forget_tokens_disconnects_and_bumps_the_version(store):
    store.save_grant("creator-1", "default", grant())
    assert store.forget_tokens("creator-1", reason="user asked") is True
    connection = store.get("creator-1")
    assert (connection.status, connection.status_reason) == (DISCONNECTED, "user asked")
    assert connection.has_tokens is False and connection.token_version == 2
    with pytest.raises(NoTokens, match="connections reconnect creator-1"):
        _ = connection.access_token
    assert store.forget_tokens("creator-1", reason="again") is False  # idempotent
    # Reconnecting in place brings it back, same name, history kept.
    store.save_grant("creator-1", "default", grant("act.new!", "rft.new!"))
    assert store.get("creator-1").access_token == "act.new!"
    assert store.names() == ["creator-1"]


def test_find_by_app_and_open_id(store):
    store.save_grant("creator-1", "default", grant())
    store.save_grant("sandbox-1", "sandbox", grant(open_id="-000sbx"))
    assert store.find("default", "-000abc").name == "creator-1"
    assert store.find("sandbox", "-000abc") is None


def test_rows_written_in_clear_by_an_earlier_version_are_read_then_encrypted_on_request(db_path):
    engine = make_engine(f"sqlite:///{db_path}")
    with engine.begin() as db:  # the table as version 0.1 created it, with clear tokens
        db.execute(
            sa.text(
                "CREATE TABLE tiktok_connections (name VARCHAR(63) PRIMARY KEY, app VARCHAR(32) "
                "NOT NULL, open_id VARCHAR(128) NOT NULL, display_name TEXT, scopes TEXT NOT NULL,"
                " status VARCHAR(20) NOT NULL, status_reason TEXT, access_token TEXT NOT NULL, "
                "refresh_token TEXT NOT NULL, access_expires_at FLOAT NOT NULL, refresh_expires_at"
                " FLOAT NOT NULL, token_version INTEGER NOT NULL, created_at FLOAT NOT NULL, "
                "updated_at FLOAT NOT NULL, last_synced_at FLOAT)"
            )
        )
        db.execute(
            sa.text(
                "INSERT INTO tiktok_connections VALUES ('old-1', 'default', '-000old', NULL, "
                f"'user.info.basic', 'active', NULL, '{ACCESS}', '{REFRESH}', {NOW}, {NOW}, 1, "
                f"{NOW}, {NOW}, NULL)"
            )
        )
    store = ConnectionStore(engine)
    assert store.get("old-1").refresh_token == REFRESH  # readable before the migration
    with engine.connect() as db:  # opening a store changes nothing by itself
        assert (
            db.execute(sa.text("SELECT tokens_encrypted FROM tiktok_connections")).scalar() is None
        )
    assert store.encrypt_clear_tokens() == 1  # `connections encrypt-tokens`
    assert store.encrypt_clear_tokens() == 0
    with engine.connect() as db:
        stored = db.execute(
            sa.text("SELECT access_token, tokens_encrypted FROM tiktok_connections")
        )
        access, encrypted = stored.one()
    assert (encrypted, access.startswith("gAAAAA"), ACCESS in access) == (1, True, False)
    assert ConnectionStore(engine).get("old-1").access_token == ACCESS  # read back, once only
    engine.dispose()
    assert ACCESS.encode() not in raw_bytes(db_path)  # nor left behind in free pages


def test_connection_metadata_shows_status_and_expiry_never_a_token(store):
    store.save_grant("creator-1", "default", grant())
    store.set_status("creator-1", "needs_reconnect", "refresh token refused")
    facts = connection_metadata(store.get("creator-1"), now=NOW)
    assert facts["connection_status"] == "needs_reconnect"
    assert facts["connection_status_reason"] == "refresh token refused"
    assert facts["refresh_token_days_left"] == 365.0
    assert not any(ACCESS in str(v) or REFRESH in str(v) for v in facts.values())


@pytest.mark.postgres
def test_the_same_round_trip_on_postgresql(postgres_url):
    store = ConnectionStore(make_engine(postgres_url), now=lambda: NOW)
    store.save_grant("creator-1", "default", grant())
    with store.engine.connect() as db:
        raw = db.execute(sa.text("SELECT access_token, refresh_token FROM tiktok_connections"))
        assert ACCESS not in str(raw.one())
    assert store.get("creator-1").access_token == ACCESS
    store.forget_tokens("creator-1", reason="test")
    assert ConnectionStore(store.engine).get("creator-1").has_tokens is False
    store.engine.dispose()


@pytest.mark.parametrize("name", ["demo-01\n", "Demo-01", "-a", "a b", "a/b", "a" * 64, ""])
def test_names_that_are_not_partition_keys_are_refused(name):
    with pytest.raises(ValueError, match="invalid connection name"):
        validate_name(name)


@pytest.mark.parametrize("name", ["brand\n", "Brand", "1brand", "b-x", ""])
def test_app_names_that_are_not_variable_names_are_refused(name):
    with pytest.raises(ValueError, match="invalid app name"):
        app_env_names(name)


def test_valid_names_pass():
    assert validate_name("demo-01") == "demo-01"
    keys = ("TIKTOK_BRAND_TWO_CLIENT_KEY", "TIKTOK_BRAND_TWO_CLIENT_SECRET")
    assert app_env_names("brand_two") == keys
