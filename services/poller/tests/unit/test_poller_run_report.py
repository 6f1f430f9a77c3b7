"""Which failures need a person (a new token) and which keep the failure backoff."""

from __future__ import annotations

import pytest
from poller.service_layer.run_report import error_kind
from stockpit_pennylane.client.errors import (
    Forbidden,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (Unauthorized("revoked", status=401), "token_rejected"),
        (Forbidden("no scope", status=403), "token_rejected"),
        (ServerError("down", status=503), "pennylane_unavailable"),
        (TransportError("timed out"), "pennylane_unavailable"),
        (TimeoutError(), "pennylane_unavailable"),
        (RateLimited("slow down", status=429), "rate_limited"),
        (ValueError("a bug"), "other"),
    ],
)
def test_only_a_refused_token_pauses_the_tenant(error: BaseException, kind: str) -> None:
    assert error_kind(error) == kind
