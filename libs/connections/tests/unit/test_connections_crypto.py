"""Token encryption: round trip, key rotation, and no secret in reprs or errors."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from stockpit_connections import TokenCipher, TokenKeyError


def test_a_token_round_trips_and_the_ciphertext_does_not_contain_it() -> None:
    cipher = TokenCipher(TokenCipher.generate_key())
    ciphertext = cipher.encrypt(SecretStr("pl-token-very-secret"))
    assert b"pl-token-very-secret" not in ciphertext
    assert cipher.decrypt(ciphertext).get_secret_value() == "pl-token-very-secret"


def test_rotation_decrypts_with_an_old_key_and_encrypts_with_the_new_one() -> None:
    old, new = TokenCipher.generate_key(), TokenCipher.generate_key()
    written_before = TokenCipher(old).encrypt(SecretStr("token-1"))
    rotated = TokenCipher(f"{new},{old}")
    assert rotated.decrypt(written_before).get_secret_value() == "token-1"
    written_after = rotated.encrypt(SecretStr("token-2"))
    assert TokenCipher(new).decrypt(written_after).get_secret_value() == "token-2"
    with pytest.raises(TokenKeyError):
        TokenCipher(old).decrypt(written_after)


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
    assert TokenCipher.from_env().decrypt(TokenCipher.from_env().encrypt(SecretStr("abc")))
