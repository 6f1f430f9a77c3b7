"""Settings of a sandbox instance: companies, rate limit, faults, clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

PENNYLANE_RATE_LIMIT = 25
PENNYLANE_RATE_WINDOW_SECONDS = 5.0
CHANGELOG_RETENTION = dt.timedelta(weeks=4)


@dataclass
class FaultSettings:
    """Shares (0..1) of API requests that fail on purpose, drawn from a seeded RNG."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_drop: float = 0.0
    rate_delay: float = 0.0
    delay_seconds: float = 2.0

    def __post_init__(self) -> None:
        for spec_field in fields(self):
            value = getattr(self, spec_field.name)
            if value < 0 or (spec_field.name.startswith("rate_") and value > 1):
                raise ValueError(f"{spec_field.name} out of range: {value}")
        if self.rate_429 + self.rate_500 + self.rate_503 + self.rate_drop > 1:
            raise ValueError("the failure shares add up to more than 1")

    def as_dict(self) -> dict[str, float]:
        return {spec_field.name: getattr(self, spec_field.name) for spec_field in fields(self)}


@dataclass
class SandboxConfig:
    """What `create_app` needs. Each token is one company with its own data."""

    tokens: Sequence[str]
    rate_limit: int = PENNYLANE_RATE_LIMIT
    rate_window_seconds: float = PENNYLANE_RATE_WINDOW_SECONDS
    faults: FaultSettings = field(default_factory=FaultSettings)
    seed: int = 0
    # Tokens missing here get every scope; listed ones get only theirs (403 otherwise).
    token_scopes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Pennylane refuses to finalize an invoice dated before the last finalized one (422).
    enforce_chronological_finalization: bool = True
    changelog_retention: dt.timedelta = CHANGELOG_RETENTION
    request_log_capacity: int = 500_000
