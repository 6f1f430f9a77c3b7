"""What the outbound service needs from the rest of the system, as small interfaces."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from pydantic import SecretStr


class TokenSource(Protocol):
    """The connection registry, as outbound sees it: a tenant's token, or None when disconnected."""

    async def token_for(self, tenant_id: str) -> SecretStr | None: ...


# Persists a write's intermediate results (uploaded file, supplier found) so a crash resumes there.
Checkpoint = Callable[[Mapping[str, Any]], Awaitable[None]]
