"""Token encryption: round trip, binding to the tenant, key rotation, and no secret in reprs or
errors."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from stockpit_connections import TokenCipher, TokenKeyError


def test_a_token_round_trips_and_the_ciphertext_does_not_contain_it() -> None:
    cipher = TokenCipher(TokenCipher.generate_key())
    ciphertext = cipher.encrypt(SecretStr("pl-token-very-secret"), "tenant-a")
    assert b"pl-token-very-secret" not in ciphertext
    assert cipher.decrypt(ciphertext, "tenant-a").get_secret_value() == "pl-token-very-secret"


def test_a_ciphertext_is_bound_to_its_tenant() -> None:
    key = TokenCipher.generate_key()
    cipher = TokenCipher(key)
    ciphertext = cipher.encrypt(SecretStr("alice-token"), "alice")
    with pytest.raises(TokenKeyError, match="written for another tenant") as error:
        cipher.decrypt(ciphertext, "bob")
    assert "alice-token" not in str(error.value)
    # Not encrypted with the key itself either: it is the tenant's derived key.
    with pytest.raises(TokenKeyError):
        cipher.decrypt(ciphertext, "alice", legacy=True)


def test_legacy_unbound_ciphertexts_decrypt_and_are_rewritten_bound() -> None:
    key = TokenCipher.generate_key()
    legacy = Fernet(key.encode()).encrypt(b"old-token")
    cipher = TokenCipher(key)
    assert cipher.decrypt(legacy, "alice", legacy=True).get_secret_value() == "old-token"
    bound = cipher.reencrypt(legacy, "alice", legacy=True)
    assert cipher.decrypt(bound, "alice").get_secret_value() == "old-token"
    with pytest.raises(TokenKeyError):
        cipher.decrypt(bound, "bob")


def test_rotation_decrypts_with_an_old_key_and_encrypts_with_the_new_one() -> None:
    old, new = TokenCipher.generate_key(), TokenCipher.generate_key()
    written_before = TokenCipher(old).encrypt(SecretStr("token-1"), "t")
    rotated = TokenCipher(f"{new},{old}")
    assert rotated.decrypt(written_before, "t").get_secret_value() == "token-1"
    written_after = rotated.encrypt(SecretStr("token-2"), "t")
    assert TokenCipher(new).decrypt(written_after, "t").get_secret_value() == "token-2"
    with pytest.raises(TokenKeyError):
        TokenCipher(old).decrypt(written_after, "t")
    moved = rotated.reencrypt(written_before, "t")
    assert TokenCipher(new).decrypt(moved, "t").get_secret_value() == "token-1"


def test_a_bad_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(TokenKeyError) as error:
        TokenCipher("not-a-fernet-key-at-all")
    assert "not-a-fernet-key-at-all" not in str(error.value)
    key = TokenCipher.generate_key()
    assert key not in repr(TokenCipher(key))


def test_from_env_needs_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STOCKPIT_TOKEN_KEY", raising=False)
    with pytest.raises(TokenKeyError, match="STOCKPIT_TOKEN_KEY"):
        TokenCipher.from_env()
    monkeypatch.setenv("STOCKPIT_TOKEN_KEY", TokenCipher.generate_key())
    cipher = TokenCipher.from_env()
    assert cipher.decrypt(cipher.encrypt(SecretStr("abc"), "t"), "t")
