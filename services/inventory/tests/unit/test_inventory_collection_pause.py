"""The documents batch handler pauses the cyclic garbage collector while it applies a batch
(`collection_paused`): pauses may overlap, and the collector runs again once the last one
ends, whatever the order they end in — unless it was off before the first began."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from inventory.entrypoints.app import collection_paused


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_off_during_a_pause_and_on_after_it() -> None:
    gc.enable()
    with collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pauses_resume_the_collector_when_the_last_one_ends() -> None:
    gc.enable()
    first, second = collection_paused(), collection_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first ends while the second goes on
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_pause_ended_by_an_error_resumes_the_collector() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), collection_paused():
        raise RuntimeError("batch failed")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collection_paused():
        pass
    assert not gc.isenabled()
