"""Token sources: where outbound learns a tenant's Pennylane token."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr


class StaticTokenSource:
    """Tokens given in configuration (development and tests); unlisted tenants are disconnected."""

    def __init__(self, tokens: Mapping[str, SecretStr]) -> None:
        self._tokens = dict(tokens)

    async def token_for(self, tenant_id: str) -> SecretStr | None:
        return self._tokens.get(tenant_id)
