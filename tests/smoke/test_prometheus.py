"""Prometheus scrapes every process of the system and answers queries over what it scraped, including
every query of the Grafana dashboard (compose's Grafana reads the same Prometheus, release and file)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.settings import HEALTH_PORTS, PROCESSES
from tests.e2e.support import every_process_running
from tests.waiting import until

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"


@pytest.fixture(scope="module")
def prometheus(settings) -> str:
    url = settings.prometheus_url.rstrip("/")
    try:
        ready = httpx.get(f"{url}/-/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        ready = False
    if not ready:
        pytest.fail(f"Prometheus is not ready at {url}: `make stack-up` starts it (compose: `prometheus`)")
    return url


@pytest.fixture(scope="module")
def processes(stack, tmp_path_factory) -> Iterator[None]:
    """Every process serving /metrics: those already running (`make run`, compose's, the end-to-end
    tests' of this session) as they are, the others started from this checkout for this module."""
    with every_process_running(tmp_path_factory.mktemp("scraped")):
        yield


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body.get('error')}"
    return body["data"]["result"]


def test_every_process_is_a_target_at_its_health_port(prometheus):
    def targets() -> list[dict[str, str]]:
        response = httpx.get(f"{prometheus}/api/v1/targets", params={"state": "active"}, timeout=10)
        return [t["labels"] for t in response.json()["data"]["activeTargets"] if t["labels"]["job"] == "shop"]

    # Ready, Prometheus lists its targets after its first discovery round (up to 5 s).
    until(targets, timeout=30, what="Prometheus's scrape targets")
    scraped = targets()
    # compose: order:9101 ...; the no-Docker stack: 127.0.0.1:9101 ...
    assert {t["process"]: int(t["instance"].rsplit(":", 1)[1]) for t in scraped} == HEALTH_PORTS
    assert len(scraped) == len(PROCESSES)


def test_the_runtimes_metrics_of_every_process_are_queried_back(prometheus, processes):
    def every_process_scraped() -> bool:
        return {r["metric"]["process"] for r in query(prometheus, 'up{job="shop"} == 1')} == set(PROCESSES)

    until(every_process_scraped, timeout=60, what="a successful scrape of every process")
    # Every consumer group reports its lag once it has partitions; the order service its open sagas.
    until(
        lambda: (
            {r["metric"]["process"] for r in query(prometheus, "count by (process) (shop_consumer_lag)")}
            == set(PROCESSES)
        ),
        timeout=60,
        what="shop_consumer_lag of every process",
    )
    [open_sagas] = query(prometheus, 'shop_sagas_open{process="order"}')
    assert float(open_sagas["value"][1]) >= 0


@pytest.mark.parametrize("path", sorted(DASHBOARDS.glob("*.json")), ids=lambda p: p.name)
def test_prometheus_accepts_every_query_of_the_dashboard(prometheus, path):
    for panel in json.loads(path.read_text())["panels"]:
        for target in panel.get("targets", []):
            # Grafana's own variables, as it would fill them in.
            expr = target["expr"].replace("$__rate_interval", "1m").replace("$__range", "30m")
            query(prometheus, expr)  # a bad expression is answered 400, bad_data
