"""The life of one write to Pennylane: statuses, outcomes and the retry schedule."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from outbound.domain.last_change import WrittenState


class WriteStatus(StrEnum):
    PENDING = "pending"  # waiting to be sent, or to be retried at `next_attempt_at`
    DONE = "done"  # Pennylane holds it; the id went back to inventory
    FAILED = "failed"  # dead-lettered: a 4xx retrying cannot fix, or attempts exhausted
    # Skipped: a replayed update older than one already written, or a change Pennylane changed
    # later again (last change wins: Pennylane's value stands, Stockpit takes it).
    SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True)
class Done:
    pennylane_id: int
    # What the write left in the Pennylane record, for the next write's "last change wins".
    state: WrittenState | None = None


@dataclass(frozen=True, slots=True)
class PennylaneWon:
    """Pennylane's record changed after the Stockpit change: nothing written (rule 13)."""

    pennylane_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class PennylaneExchange:
    """The Pennylane request that failed and what came back, for the dead-letter record."""

    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """Retrying at once cannot succeed (bad data, missing record, rule, refused token)."""

    reason: str
    # Whether replaying it later may succeed (a token to reconnect, attempts exhausted).
    retryable: bool = False
    exchange: PennylaneExchange = field(default_factory=PennylaneExchange)


@dataclass(frozen=True, slots=True)
class RetryLater:
    """A transient failure (429, 5xx, timeout, dropped connection).

    `ambiguous` means the write may have been applied: the next attempt starts with a lookup and
    waits long enough for a request still in flight at Pennylane to land first.
    """

    reason: str
    ambiguous: bool = False
    at_least_s: float = 0.0
    exchange: PennylaneExchange = field(default_factory=PennylaneExchange)


@dataclass(frozen=True, slots=True)
class TokenRefused:
    """Pennylane refused the tenant's token (401/403): the write waits, and so do the tenant's
    others, until the tenant has a new token; then it is sent again."""

    reason: str
    exchange: PennylaneExchange = field(default_factory=PennylaneExchange)


Outcome = Done | PennylaneWon | Failed | RetryLater | TokenRefused


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    max_attempts: int = 12
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    # After an ambiguous failure, how long a request that timed out here may still take to land.
    ambiguous_settle_s: float = 5.0

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    def delay_s(self, attempts: int, outcome: RetryLater) -> float:
        """Equal-jitter exponential backoff after `attempts` failures, floored by the outcome."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** max(attempts - 1, 0))
        delay = random.uniform(ceiling / 2, ceiling)
        if outcome.ambiguous:
            delay = max(delay, self.ambiguous_settle_s)
        return max(delay, outcome.at_least_s)
