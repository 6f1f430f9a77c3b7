"""How a sync run ended, told to inventory (`poller.sync_run.finished`) for the tenant's report.

Staged in the outbox in the transaction that records the run's end, so the report and the
poller's own `sync_runs` agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast, get_args

from sqlalchemy.ext.asyncio import AsyncSession
from stockpit_contracts import new_event, partition_key
from stockpit_contracts.payloads.poller import SyncErrorKind, SyncOutcome, SyncRunFinished

__all__ = ["RunEnd", "SyncErrorKind", "error_kind", "stage_run_finished"]
from stockpit_contracts.topics import POLLER_SYNC_RUNS
from stockpit_pennylane.client.errors import (
    Forbidden,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
)
from stockpit_runtime.outbox import add_to_outbox

from poller.domain.watermarks import Stream


def error_kind(exc: BaseException) -> SyncErrorKind:
    """Why a run failed, in the words of the report: a rejected token needs a person."""
    if isinstance(exc, Unauthorized | Forbidden):
        return "token_rejected"
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, ServerError | TransportError | TimeoutError):
        return "pennylane_unavailable"
    return "other"


@dataclass(frozen=True)
class RunEnd:
    """What a run did and why it stopped, known when it ends."""

    streams: Iterable[Stream]
    documents_published: int
    error_kind: SyncErrorKind | None = None
    error: str | None = None


async def stage_run_finished(
    session: AsyncSession,
    *,
    topic_prefix: str,
    tenant_id: str,
    started_at: dt.datetime,
    outcome: str,
    ended: RunEnd,
) -> None:
    if outcome not in get_args(SyncOutcome):
        return  # a cancelled run (the service stopping) tells nothing
    payload = SyncRunFinished(
        started_at=started_at,
        finished_at=max(dt.datetime.now(dt.UTC), started_at),
        streams=tuple(sorted(stream.value for stream in ended.streams)),
        documents_published=ended.documents_published,
        outcome=cast(SyncOutcome, outcome),
        error_kind=ended.error_kind,
        error=ended.error,
    )
    await add_to_outbox(
        session,
        POLLER_SYNC_RUNS.name(topic_prefix),
        partition_key(tenant_id),
        [new_event(payload, tenant_id)],
    )
