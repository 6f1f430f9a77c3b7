"""What the poller tells other services about its own work: how each sync run ended."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from stockpit_contracts.payloads.base import Payload, ShortText, register
from stockpit_contracts.topics import POLLER_SYNC_RUNS

SyncOutcome = Literal["succeeded", "failed", "stopped", "lease_lost"]
# Why a failed run failed, in words a report can act on: a rejected token needs a person.
SyncErrorKind = Literal["token_rejected", "rate_limited", "pennylane_unavailable", "other"]


@register
class SyncRunFinished(Payload):
    """One sync of a tenant ended (emitted in the transaction that ends the run)."""

    EVENT_TYPE = "poller.sync_run.finished"
    TOPIC = POLLER_SYNC_RUNS

    started_at: AwareDatetime
    finished_at: AwareDatetime
    streams: tuple[str, ...] = Field(max_length=20)
    documents_published: int = Field(ge=0, le=10**9)
    outcome: SyncOutcome
    error_kind: SyncErrorKind | None = None
    error: ShortText | None = None
