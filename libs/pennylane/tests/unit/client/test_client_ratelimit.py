import datetime as dt
from decimal import Decimal

import pytest
from stockpit_pennylane.client import PennylaneClient, RateLimit
from stockpit_pennylane.client.client import server_date
from stockpit_pennylane.client.ratelimit import (
    TOKEN_WINDOWS,
    ClientBudget,
    TokenWindow,
    share_to_requests,
    token_key,
)

LIMIT = RateLimit(requests=25, window_s=5.0, safety_margin_s=0.5)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr("stockpit_pennylane.client.ratelimit.time.monotonic", fake.monotonic)
    return fake


def _drain(budget: ClientBudget, clock: FakeClock, sends: int) -> list[float]:
    """Send `sends` requests as fast as the budget allows, jumping the clock over every wait."""
    times: list[float] = []
    while len(times) < sends:
        wait = budget._reserve_or_wait()
        if wait > 0:
            clock.now += wait
        else:
            times.append(clock.now)
    return times


def _max_in_any_window(times: list[float], window: float) -> int:
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


def test_clients_sharing_a_token_never_exceed_the_limit_together(clock: FakeClock) -> None:
    window = TokenWindow(LIMIT)
    poller = ClientBudget(window, share_to_requests(LIMIT, Decimal("0.6")))
    outbound = ClientBudget(window, share_to_requests(LIMIT, Decimal("0.4")))
    assert (poller.requests_per_window, outbound.requests_per_window) == (15, 10)
    times: list[float] = []
    for _ in range(40):
        times += _drain(poller, clock, 3) + _drain(outbound, clock, 2)
    assert _max_in_any_window(sorted(times), LIMIT.paced_window_s) <= 25


def test_one_client_keeps_to_its_share(clock: FakeClock) -> None:
    budget = ClientBudget(TokenWindow(LIMIT), share_to_requests(LIMIT, 0.6))
    times = _drain(budget, clock, 60)
    assert _max_in_any_window(times, LIMIT.paced_window_s) == 15


def test_a_block_holds_every_client_of_the_token(clock: FakeClock) -> None:
    window = TokenWindow(LIMIT)
    budget = ClientBudget(window, 25)
    window.block_for(3.0)
    assert budget._reserve_or_wait() == pytest.approx(3.0)
    clock.now += 3.0
    assert budget._reserve_or_wait() == 0


@pytest.mark.parametrize("share", [0, -0.1, 1.01, Decimal(2)])
def test_share_must_be_within_zero_and_one(share: float) -> None:
    with pytest.raises(ValueError, match="budget_share"):
        share_to_requests(LIMIT, share)


def test_registry_is_keyed_by_token_hash_not_token() -> None:
    window = TOKEN_WINDOWS.window_for("registry-test-token", LIMIT)
    assert TOKEN_WINDOWS.window_for("registry-test-token", LIMIT) is window
    assert TOKEN_WINDOWS.window_for("another-token", LIMIT) is not window
    assert "registry-test-token" not in TOKEN_WINDOWS._windows
    assert token_key("registry-test-token") in TOKEN_WINDOWS._windows


def test_a_smaller_share_set_in_place_keeps_the_sends_already_made(clock: FakeClock) -> None:
    """A client whose share drops from 0.9 to 0.6 (a first sync ends) sends nothing more until
    its last window's sends are within the new share: never more in a window than the larger."""
    client = PennylaneClient("share-change-token", budget_share=Decimal("0.9"))
    budget = client._budget
    times = _drain(budget, clock, 22)
    client.set_budget_share(Decimal("0.6"))
    assert client.requests_per_window == 15
    assert budget._reserve_or_wait() > 0, "22 sent in this window: over the new 15"
    times += _drain(budget, clock, 45)
    assert _max_in_any_window(times, LIMIT.paced_window_s) == 22
    assert _max_in_any_window(times[22:], LIMIT.paced_window_s) == 15


def test_the_servers_date_is_read_from_the_last_date_header() -> None:
    assert server_date(["Mon, 30 Nov 2026 06:30:05 GMT"]) == dt.datetime(
        2026, 11, 30, 6, 30, 5, tzinfo=dt.UTC
    )
    # A server in front of the application may add its own first.
    assert server_date(["Mon, 30 Nov 2026 06:30:05 GMT", "Wed, 06 Jan 2027 08:00:00 GMT"]) == (
        dt.datetime(2027, 1, 6, 8, tzinfo=dt.UTC)
    )
    assert server_date(["not a date"]) is None
    assert server_date([]) is None
