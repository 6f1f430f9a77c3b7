"""Fault drills on the whole system, every process real.

Each drill runs a seeded workload (invoices finalized in Pennylane, renames and receipts sent
from Stockpit) while it breaks something, then checks that the stock and Pennylane's records
are exactly what the workload implies: nothing lost, nothing applied or written twice.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from stockpit_ops.infra import private_infra
from stockpit_ops.system import SERVICES, SystemConfig, running_system
from stockpit_ops.workload import Workload

pytestmark = pytest.mark.e2e

TOKEN = "drill-company-token"


def _config(kafka: str, database: str, log_dir: Path) -> SystemConfig:
    return SystemConfig(
        kafka_bootstrap_servers=kafka, database_url=database, log_dir=log_dir, tokens=(TOKEN,)
    )


def test_sigkill_of_each_service_at_random_points_loses_and_duplicates_nothing(
    kafka_bootstrap_servers: str, database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(7)
    # Every service (with its relay) is killed once, then one more at random, each after a
    # seeded delay.
    victims = list(SERVICES)
    rng.shuffle(victims)
    victims.append(rng.choice(SERVICES))
    with running_system(_config(kafka_bootstrap_servers, database_url, tmp_path)) as system:
        workload = Workload(system, "drill", TOKEN, rng)
        workload.start()

        def kill_one(phase: int) -> None:
            time.sleep(rng.uniform(0, 3))  # somewhere in the import, relay or write just started
            # The service and its outbox relay die together, as on a host that crashed.
            relay = system.relays[victims[phase]]
            relay.kill()
            system.kill(victims[phase])
            system.start(victims[phase])
            relay.start()

        workload.run_phases(len(victims), kill_one)
        workload.expect_converged()
        assert workload.pennylane_problems() == []
        assert workload.inventory.real_stock() == workload.expected_stock()
        assert workload.dead_letters() == {}


def test_sandbox_faults_at_20_percent_lose_and_duplicate_nothing(
    kafka_bootstrap_servers: str, database_url: str, tmp_path: Path
) -> None:
    with running_system(_config(kafka_bootstrap_servers, database_url, tmp_path)) as system:
        workload = Workload(system, "faulty", TOKEN, random.Random(11))
        workload.start()
        # 20% of Pennylane API calls fail: 429, 500, 503 and dropped connections, 5% each.
        workload.sandbox.set_faults(
            rate_429=0.05, rate_500=0.05, rate_503=0.05, rate_drop=0.05, seed=11
        )
        workload.run_phases(4, lambda _phase: time.sleep(2))
        workload.expect_converged()
        injected = workload.sandbox.faults()["injected"]
        workload.sandbox.clear_faults()
        assert workload.pennylane_problems() == []
        assert workload.inventory.real_stock() == workload.expected_stock()
        assert workload.dead_letters() == {}
        assert sum(injected.values()) > 0, "the sandbox injected no fault"


def test_kafka_broker_and_postgresql_restarts_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    with private_infra() as infra:
        config = _config(infra.kafka_bootstrap_servers, infra.database_url, tmp_path)
        with running_system(config) as system:
            workload = Workload(system, "restarts", TOKEN, random.Random(13))
            workload.start()

            def restart_a_server(phase: int) -> None:
                server = infra.kafka if phase % 2 == 0 else infra.postgres
                server.stop()
                # Pennylane keeps changing while the server is down.
                workload.add_invoices()
                time.sleep(3)
                server.start()

            workload.run_phases(2, restart_a_server)
            workload.expect_converged()
            assert workload.pennylane_problems() == []
            assert workload.inventory.real_stock() == workload.expected_stock()
            assert workload.dead_letters() == {}
