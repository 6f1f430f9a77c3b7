"""What a domain command returns: stock movements to post and events to publish."""

from __future__ import annotations

from dataclasses import dataclass, field

from inventory.domain.events import DomainEvent
from inventory.domain.stock import StockMovement


@dataclass
class Outcome:
    movements: list[StockMovement] = field(default_factory=list)
    events: list[DomainEvent] = field(default_factory=list)

    def extend(self, other: Outcome) -> None:
        self.movements.extend(other.movements)
        self.events.extend(other.events)
