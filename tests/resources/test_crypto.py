"""Token encryption keys: environment -> MultiFernet -> ciphertext, and back; rotation; demo file.

No database here: the cipher alone, as the connection store uses it.
"""

import os
import stat

import pytest
from cryptography.fernet import Fernet

from resources.connections.crypto import (
    DEMO_KEY_FILE,
    TOKEN_KEYS_VAR,
    TokenCipher,
    TokenKeyError,
    cipher_from_environment,
)

TOKEN = "act.9db8example12345Example12345ExampleTW!5259"


def key() -> str:
    return Fernet.generate_key().decode()


def test_round_trip_hides_the_token():
    cipher = TokenCipher([key()])
    sealed = cipher.encrypt(TOKEN)
    assert TOKEN not in sealed
    assert cipher.decrypt(sealed, "creator-1") == TOKEN


def test_first_key_encrypts_every_key_decrypts_and_rotate_moves_to_the_first():
    old, new = key(), key()
    sealed_with_old = TokenCipher([old]).encrypt(TOKEN)
    both = TokenCipher([new, old])
    assert both.decrypt(sealed_with_old, "c") == TOKEN
    rotated = both.rotate(sealed_with_old, "c")
    # After rotation the old key can be dropped: the new key alone reads the token.
    assert TokenCipher([new]).decrypt(rotated, "c") == TOKEN
    with pytest.raises(TokenKeyError):
        TokenCipher([old]).decrypt(rotated, "c")


def test_wrong_key_names_the_connection_and_the_variable_never_the_token():
    sealed = TokenCipher([key()]).encrypt(TOKEN)
    with pytest.raises(TokenKeyError) as caught:
        TokenCipher([key()]).decrypt(sealed, "creator-7")
    message = str(caught.value)
    assert "cannot decrypt tokens of connection 'creator-7'" in message
    assert TOKEN_KEYS_VAR in message
    assert TOKEN not in message and sealed not in message


def test_environment_keys_are_comma_separated_first_one_encrypts():
    old, new = key(), key()
    cipher = cipher_from_environment({TOKEN_KEYS_VAR: f" {new} , {old} "})
    assert TokenCipher([new]).decrypt(cipher.encrypt(TOKEN), "c") == TOKEN


def test_missing_key_in_live_mode_names_the_variable_and_how_to_make_one(tmp_path):
    environ = {"TIKTOK_CRM_SYNC_HOME": str(tmp_path)}
    (tmp_path / DEMO_KEY_FILE).write_text(key())  # live mode must never fall back to it
    with pytest.raises(TokenKeyError) as caught:
        cipher_from_environment(environ)
    assert f"{TOKEN_KEYS_VAR} is not set" in str(caught.value)
    assert "Fernet.generate_key()" in str(caught.value)


def test_malformed_key_is_named_by_position_not_echoed():
    bad = "not-a-fernet-key-but-maybe-a-secret"
    with pytest.raises(TokenKeyError) as caught:
        cipher_from_environment({TOKEN_KEYS_VAR: f"{key()},{bad}"})
    assert "key #2" in str(caught.value)
    assert bad not in str(caught.value)


def test_demo_mode_without_a_key_generates_one_labelled_private_file_and_reuses_it(tmp_path):
    environ = {"TIKTOK_CRM_SYNC_HOME": str(tmp_path), "TIKTOK_CRM_SYNC_MODE": "demo"}
    sealed = cipher_from_environment(environ).encrypt(TOKEN)
    path = tmp_path / "demo" / DEMO_KEY_FILE  # in the demo's own home, never the live one
    assert path.read_text().startswith("# DEMO ONLY")
    assert not (tmp_path / DEMO_KEY_FILE).exists()
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # A second process in demo mode reads the same file, so it can decrypt the first one's tokens.
    assert cipher_from_environment(environ).decrypt(sealed, "demo-01") == TOKEN
