"""What the outbound service needs from the rest of the system, as small interfaces."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

from pydantic import SecretStr


class TokenSource(Protocol):
    """The connection registry, as outbound sees it: a tenant's token, or None when disconnected."""

    async def token_for(self, tenant_id: str) -> SecretStr | None: ...


class BudgetShares(Protocol):
    """Per-tenant rate-limit split; None means "use the configured default"."""

    async def poller_share_for(self, tenant_id: str) -> Decimal | None: ...


# Persists a write's intermediate results (uploaded file, supplier found) so a crash resumes there.
Checkpoint = Callable[[Mapping[str, Any]], Awaitable[None]]
