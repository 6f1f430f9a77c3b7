"""The garbage collector settings a service process runs with."""

from __future__ import annotations

import gc

from stockpit_runtime.service import tune_garbage_collection
from stockpit_runtime.settings import ServiceSettings


def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    before = gc.get_threshold()
    try:
        tune_garbage_collection(
            ServiceSettings(
                KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
                DATABASE_URL="postgresql+asyncpg://u:p@127.0.0.1:1/db",
                gc_young_threshold=12_345,
            )
        )
        assert gc.get_threshold() == (12_345, before[1], before[2])
        assert gc.get_freeze_count() > 0, "objects alive at start-up are no longer scanned"
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
