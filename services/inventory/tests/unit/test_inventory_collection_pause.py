"""The documents batch handler pauses the cyclic garbage collector while it applies a batch
(`collection_paused`): pauses may overlap, and the collector runs again once the last one
ends, whatever the order they end in — unless it was off before the first began. Pauses that
overlap without end (several documents consumers) still collect now and then."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager

import pytest
from inventory.entrypoints.app import OVERLAPPED_PAUSES_PER_COLLECTION, collection_paused


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


class _Cycle:
    """An object that only the cyclic collector can free (it refers to itself)."""

    def __init__(self) -> None:
        self.me = self


def test_pauses_that_overlap_without_end_still_free_cyclic_garbage() -> None:
    gc.enable()
    gc.collect()
    garbage = _Cycle()
    freed = weakref.ref(garbage)
    del garbage
    running: AbstractContextManager[None] = collection_paused()
    running.__enter__()
    for _ in range(OVERLAPPED_PAUSES_PER_COLLECTION - 1):  # each ends while another goes on
        following = collection_paused()
        following.__enter__()
        running.__exit__(None, None, None)
        running = following
    assert not gc.isenabled()
    assert freed() is not None, "collected before the bound"
    following = collection_paused()
    following.__enter__()
    running.__exit__(None, None, None)
    assert freed() is None
    assert not gc.isenabled()
    following.__exit__(None, None, None)
    assert gc.isenabled()


def test_overlapped_pauses_do_not_collect_when_the_collector_was_off() -> None:
    gc.disable()
    garbage = _Cycle()
    freed = weakref.ref(garbage)
    del garbage
    running: AbstractContextManager[None] = collection_paused()
    running.__enter__()
    for _ in range(2 * OVERLAPPED_PAUSES_PER_COLLECTION):
        following = collection_paused()
        following.__enter__()
        running.__exit__(None, None, None)
        running = following
    running.__exit__(None, None, None)
    assert freed() is not None
    assert not gc.isenabled()
    gc.collect()
