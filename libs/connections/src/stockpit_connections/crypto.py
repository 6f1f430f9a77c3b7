"""Tokens encrypted at rest with Fernet (authenticated encryption: AES-128-CBC + HMAC-SHA256).

`STOCKPIT_TOKEN_KEY` holds one Fernet key, or several separated by commas for rotation: the first
encrypts, every one decrypts (MultiFernet), so a new key can be rolled out before the old one is
retired."""

from __future__ import annotations

import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

TOKEN_KEY_ENV = "STOCKPIT_TOKEN_KEY"  # noqa: S105 (a variable name, not a secret)


class TokenKeyError(ValueError):
    """The key is missing or is not a Fernet key; the message never contains the key."""


class TokenCipher:
    def __init__(self, key: SecretStr | str | bytes) -> None:
        raw = key.get_secret_value() if isinstance(key, SecretStr) else key
        text = raw.decode() if isinstance(raw, bytes) else raw
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts:
            raise TokenKeyError("no token encryption key given")
        try:
            self._fernet = MultiFernet([Fernet(part.encode()) for part in parts])
        except (ValueError, TypeError):
            raise TokenKeyError(
                "the token encryption key is not a Fernet key (32 url-safe base64 bytes)"
            ) from None

    @classmethod
    def from_env(cls, variable: str = TOKEN_KEY_ENV) -> TokenCipher:
        value = os.environ.get(variable, "")
        if not value:
            raise TokenKeyError(f"{variable} is not set")
        return cls(value)

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, token: SecretStr) -> bytes:
        return self._fernet.encrypt(token.get_secret_value().encode())

    def decrypt(self, ciphertext: bytes) -> SecretStr:
        try:
            return SecretStr(self._fernet.decrypt(ciphertext).decode())
        except InvalidToken:
            raise TokenKeyError(
                "a stored token cannot be decrypted with the configured key"
            ) from None

    def __repr__(self) -> str:
        return "TokenCipher(<keys hidden>)"
