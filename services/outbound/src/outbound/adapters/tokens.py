"""Token sources: where outbound learns a tenant's Pennylane token and its share of the budget."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from pydantic import SecretStr
from stockpit_connections import ConnectionRegistry, TenantNotConnected


class RegistryTokenSource:
    """The connection registry the poller keeps: connected tenants' tokens, decrypted on demand."""

    def __init__(self, registry: ConnectionRegistry) -> None:
        self._registry = registry

    async def token_for(self, tenant_id: str) -> SecretStr | None:
        try:
            return await self._registry.token_for(tenant_id)
        except TenantNotConnected:
            return None

    async def poller_share_for(self, tenant_id: str) -> Decimal | None:
        """The tenant's poller share of the token's rate limit now (outbound uses the rest):
        larger while the tenant's first sync runs (`effective_poller_share`)."""
        return await self._registry.poller_share(tenant_id)


class StaticTokenSource:
    """Tokens given in configuration (development and tests); unlisted tenants are disconnected."""

    def __init__(self, tokens: Mapping[str, SecretStr]) -> None:
        self._tokens = dict(tokens)

    async def token_for(self, tenant_id: str) -> SecretStr | None:
        return self._tokens.get(tenant_id)

    async def poller_share_for(self, tenant_id: str) -> Decimal | None:
        return None
