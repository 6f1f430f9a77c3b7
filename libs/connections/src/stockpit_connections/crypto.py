"""Tokens encrypted at rest with Fernet (authenticated encryption: AES-128-CBC + HMAC-SHA256),
each under a key of its own tenant.

`STOCKPIT_TOKEN_KEY` holds one Fernet key, or several separated by commas for rotation: the first
encrypts, every one decrypts (MultiFernet), so a new key can be rolled out before the old one is
retired (`stockpit rotate-token-keys` then re-encrypts every stored token with the first).

A token is not encrypted with those keys directly but with a key derived from one of them and
the tenant id (HKDF-SHA256, the tenant id in `info`): Fernet has no associated data, and this
binds a ciphertext to its tenant all the same, so a ciphertext copied into another tenant's row
does not decrypt there. Tokens written before that binding existed (`legacy`) decrypt with the
keys themselves until the rotation rewrites them bound.
"""

from __future__ import annotations

import base64
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

TOKEN_KEY_ENV = "STOCKPIT_TOKEN_KEY"  # noqa: S105 (a variable name, not a secret)
_BINDING_INFO = b"stockpit connection token v1\x00"


class TokenKeyError(ValueError):
    """The key is missing or is not a Fernet key, or a token does not decrypt with it; the
    message never contains a key or a token."""


def _tenant_key(master: bytes, tenant_id: str) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=_BINDING_INFO + tenant_id.encode(),
    ).derive(base64.urlsafe_b64decode(master))
    return Fernet(base64.urlsafe_b64encode(derived))


class TokenCipher:
    def __init__(self, key: SecretStr | str | bytes) -> None:
        raw = key.get_secret_value() if isinstance(key, SecretStr) else key
        text = raw.decode() if isinstance(raw, bytes) else raw
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts:
            raise TokenKeyError("no token encryption key given")
        try:
            self._legacy = MultiFernet([Fernet(part.encode()) for part in parts])
        except (ValueError, TypeError):
            raise TokenKeyError(
                "the token encryption key is not a Fernet key (32 url-safe base64 bytes)"
            ) from None
        self._masters = [part.encode() for part in parts]

    @classmethod
    def from_env(cls, variable: str = TOKEN_KEY_ENV) -> TokenCipher:
        value = os.environ.get(variable, "")
        if not value:
            raise TokenKeyError(f"{variable} is not set")
        return cls(value)

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    @property
    def key_count(self) -> int:
        return len(self._masters)

    def _for(self, tenant_id: str) -> MultiFernet:
        if not tenant_id:
            raise ValueError("a token is always bound to a tenant")
        return MultiFernet([_tenant_key(master, tenant_id) for master in self._masters])

    def encrypt(self, token: SecretStr, tenant_id: str) -> bytes:
        """The token under the newest key, bound to `tenant_id`."""
        return self._for(tenant_id).encrypt(token.get_secret_value().encode())

    def decrypt(self, ciphertext: bytes, tenant_id: str, *, legacy: bool = False) -> SecretStr:
        """The token of `tenant_id`; `legacy`: written unbound, before tokens were bound."""
        fernet = self._legacy if legacy else self._for(tenant_id)
        try:
            return SecretStr(fernet.decrypt(ciphertext).decode())
        except InvalidToken:
            raise TokenKeyError(
                f"the stored token of tenant {tenant_id} cannot be decrypted with the configured "
                "key(s): a key it was written with is missing, or it was written for another "
                "tenant"
            ) from None

    def reencrypt(self, ciphertext: bytes, tenant_id: str, *, legacy: bool = False) -> bytes:
        """The same token under the newest key, bound to `tenant_id` (key rotation)."""
        return self.encrypt(self.decrypt(ciphertext, tenant_id, legacy=legacy), tenant_id)

    def __repr__(self) -> str:
        return "TokenCipher(<keys hidden>)"
