"""A real `npc serve` process: its metrics exist at zero from the start, it records its ports
under the var directory, and `npc ops up` runs Prometheus scraping it with the project's rules."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from npc.cli.record import ServeRecord, read_record
from npc.config import DEFAULT_DB_POOL_SIZE
from npc.embedded import EmbeddedRedis, free_port
from tests.helpers import wait_serving


@contextlib.asynccontextmanager
async def serving(
    database_url: str, redis_url: str, var: Path, log_path: Path
) -> AsyncIterator[tuple[asyncio.subprocess.Process, ServeRecord]]:
    """`npc serve` in its own process on free ports; its process and what it recorded in `var`."""
    env = {
        **os.environ,
        "NPC_DATABASE_URL": database_url,
        "NPC_REDIS_URL": redis_url,
        "NPC_REDIS_PREFIX": f"stack{os.getpid()}{free_port()}",
        "NPC_DEV_MODE": "1",
        "NPC_GRPC_PORT": str(free_port()),
        "NPC_HTTP_PORT": str(free_port()),
        "NPC_VAR_DIR": str(var),
    }
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "npc", "serve", env=env, stdout=log, stderr=log
        )
        try:
            await wait_serving(f"127.0.0.1:{env['NPC_GRPC_PORT']}", process)
            record = None
            for _ in range(100):
                record = read_record(var)
                if record is not None:
                    break
                await asyncio.sleep(0.1)
            assert record is not None, "npc serve recorded nothing"
            yield process, record
        finally:
            if process.returncode is None:
                process.terminate()
            await asyncio.wait_for(process.wait(), 20)


async def scrape(target: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample at http://target/metrics by (name, labels)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{target}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    assert "_created" not in text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """The value of the sample named `name` with exactly `labels` (KeyError when absent)."""
    return samples[(name, frozenset(labels.items()))]


@pytest.mark.slow
async def test_metrics_are_present_at_start_with_zero_values(
    market_database_url: str, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    var = tmp_path / "var"
    async with serving(market_database_url, redis_server.url, var, tmp_path / "serve.log") as (
        _,
        record,
    ):
        path = var / "serve.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert record.database_url is None  # configured, not embedded: nothing to record
        assert record.metrics == [record.http]
        samples = await scrape(record.metrics[0])
    build = [labels for (name, labels) in samples if name == "npc_build_info"]
    assert len(build) == 1 and {k for k, _ in build[0]} == {"version", "python", "grpc"}
    zero = [
        ("npc_deadlines_fired_total", {"flow": "portability", "kind": "request.donor_answer"}),
        (
            "npc_deadline_handler_failures_total",
            {"flow": "portability", "kind": "request.donor_answer"},
        ),
        ("npc_deadline_lateness_seconds_count", {"flow": "portability"}),
        ("npc_deadlines_pending", {"flow": "portability", "kind": "request.donor_answer"}),
        ("npc_cases_open", {"flow": "portability"}),
        ("npc_donor_answer_seconds_count", {"operator": "entel", "message": "CP"}),
        ("npc_donor_silences_total", {"operator": "entel", "message": "SP"}),
        ("npc_registry_ported_numbers", {"operator": "bitel", "service": "mobile"}),
        ("npc_registry_lookups_total", {"source": "postgres"}),
        ("npc_port_requests_filed_total", {"service": "fixed"}),
        ("npc_events_delivered_total", {"operator": "osiptel"}),
        ("npc_rpc_throttled_total", {"operator": "claro"}),
        ("npc_notifications_abandoned_total", {"channel": "sms"}),
        ("npc_loop_failures_total", {"loop": "deadlines"}),
        ("npc_deadline_oldest_overdue_seconds", {}),
        # Every catalogued rule, for every operator of its flow's country (Compliance ledger).
        (
            "npc_compliance_records_total",
            {
                "flow": "portability",
                "rule": "improper_objection",
                "severity": "muy_grave",
                "operator": "bitel",
            },
        ),
        (
            "npc_compliance_records_total",
            {
                "flow": "inoperability",
                "rule": "report_inoperability",
                "severity": "none",
                "operator": "entel",
            },
        ),
        (
            "npc_rpc_handled_total",
            {
                "service": "PortabilityService",
                "method": "AnswerPortRequest",
                "operator": "entel",
                "code": "OK",
            },
        ),
        (
            "npc_rpc_started_total",
            {"service": "SessionService", "method": "Session", "operator": "osiptel"},
        ),
        (
            "npc_rpc_started_total",
            {"service": "EventService", "method": "Subscribe", "operator": "unidentified"},
        ),
    ]
    missing = [
        (name, labels) for name, labels in zero if (name, frozenset(labels.items())) not in samples
    ]
    assert not missing, missing
    assert [value(samples, name, **labels) for name, labels in zero] == [0.0] * len(zero)
    # The operator label is bounded: registered operators and the unidentified caller only.
    callers = {
        v
        for (name, labels) in samples
        if name == "npc_rpc_started_total"
        for k, v in labels
        if k == "operator"
    }
    assert callers == {"claro", "movistar", "entel", "bitel", "osiptel", "unidentified"}
    # Sampled before serving, not on the first pass 15 s later.
    assert value(samples, "npc_db_up") == 1.0
    assert value(samples, "npc_db_pool_connections", state="max") == DEFAULT_DB_POOL_SIZE


async def prometheus_get(session: aiohttp.ClientSession, url: str, **params: str) -> Any:
    """The `data` of a Prometheus HTTP API answer."""
    async with session.get(url, params=params) as response:
        body = await response.json()
    assert body["status"] == "success", body
    return body["data"]


async def eventually(check: Any, what: str, limit: float = 90.0) -> Any:
    """Call the coroutine function `check` until it returns something truthy; that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        found = await check()
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"never saw {what}")
        await asyncio.sleep(0.5)


@pytest.mark.slow
async def test_ops_up_scrapes_the_server_evaluates_the_rules_and_stops_cleanly(
    market_database_url: str, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    var = tmp_path / "var"
    prometheus_port = free_port()
    async with serving(market_database_url, redis_server.url, var, tmp_path / "serve.log") as (
        server,
        record,
    ):
        ops = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "npc", "ops", "up",
            "--port", str(prometheus_port), "--interval", "1",
            env={**os.environ, "NPC_VAR_DIR": str(var)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            assert ops.stdout is not None
            first = await asyncio.wait_for(ops.stdout.readline(), 90)
            url = f"http://127.0.0.1:{prometheus_port}"
            assert first.decode().startswith(f"Prometheus  {url}"), first
            assert (await ops.stdout.readline()).decode().split() == ["scraping", *record.metrics]
            api = f"{url}/api/v1"
            async with aiohttp.ClientSession() as session:

                async def query(expr: str) -> list[dict[str, Any]]:
                    data = await prometheus_get(session, f"{api}/query", query=expr)
                    return list(data["result"])

                up = await eventually(lambda: query('up{job="npc"}'), "a scrape")
                assert [sample["value"][1] for sample in up] == ["1"]
                # A recording rule over series that exist at zero from the start.
                pending = await eventually(
                    lambda: query('npc:deadlines_pending:max{flow="portability"}'),
                    "the recording rule",
                )
                assert {sample["value"][1] for sample in pending} == {"0"}
                # The server's own `service` label survives the scrape (no exported_service).
                filed = await query("npc_port_requests_filed_total")
                assert {s["metric"]["service"] for s in filed} == {"mobile", "fixed"}
                assert all("exported_service" not in s["metric"] for s in filed)

                async def alert(name: str) -> dict[str, Any]:
                    data = await prometheus_get(session, f"{api}/rules", type="alert")
                    rules = [r for g in data["groups"] for r in g["rules"] if r["name"] == name]
                    assert len(rules) == 1
                    rule: dict[str, Any] = rules[0]
                    return rule

                target_down = await alert("NpcTargetDown")
                assert (target_down["state"], target_down["health"]) == ("inactive", "ok")
                assert target_down["annotations"]["runbook_url"].endswith("#npctargetdown")
                server.terminate()
                await asyncio.wait_for(server.wait(), 20)

                async def pending_alert() -> bool:
                    return (await alert("NpcTargetDown"))["state"] == "pending"

                await eventually(pending_alert, "NpcTargetDown pending once the server stopped")
        finally:
            if ops.returncode is None:
                ops.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(ops.wait(), 40)
    assert code == 0
    assert (var / "prometheus" / "data").is_dir()
    config = (var / "prometheus" / "prometheus.yml").read_text()
    assert record.metrics[0] in config
    with pytest.raises(OSError):  # Prometheus stopped with it: nothing listens there
        await asyncio.open_connection("127.0.0.1", prometheus_port)
