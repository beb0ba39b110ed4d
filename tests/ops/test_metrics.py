"""The series dashboards and alerts rely on are exported by a running clearinghouse."""

from __future__ import annotations

from dataclasses import replace

import aiohttp
import grpc
import pytest

from npc.app import Clearinghouse
from npc.config import Settings
from npc.core.clock import FakeClock
from npc.core.fanout import SUBSCRIBER_LAG
from npc.embedded import free_port
from npc.v1 import events_pb2, events_pb2_grpc
from tests.ops.conftest import Traffic, scrape, select


async def test_rpcs_are_counted_by_method_and_code_and_timed(traffic: Traffic) -> None:
    assert traffic.delta("npc_rpc_started_total", method="SubmitPortRequest") == 3
    assert traffic.delta("npc_rpc_handled_total", method="SubmitPortRequest", code="OK") == 2
    invalid = traffic.delta(
        "npc_rpc_handled_total", method="SubmitPortRequest", code="INVALID_ARGUMENT"
    )
    assert invalid == 1
    assert traffic.delta("npc_rpc_duration_seconds_count", method="AnswerPortRequest") == 1
    # By caller: claro filed, movistar answered; nothing of theirs counted under another name.
    assert traffic.delta("npc_rpc_started_total", method="SubmitPortRequest", operator="claro") == 3
    answered = {"method": "AnswerPortRequest", "operator": "movistar", "code": "OK"}
    assert traffic.delta("npc_rpc_handled_total", **answered) == 1
    assert traffic.delta("npc_rpc_started_total", operator="unidentified") == 0


async def test_an_unidentified_caller_is_counted_under_one_fixed_operator_value(
    app: Clearinghouse,
) -> None:
    before, _ = await scrape(app)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        stub = events_pb2_grpc.EventServiceStub(channel)
        for token in ("", "Bearer no-such-token"):
            metadata = (("authorization", token),) if token else ()
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetStreamHead(events_pb2.GetStreamHeadRequest(), metadata=metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    after, _ = await scrape(app)
    labels = {"method": "GetStreamHead", "operator": "unidentified", "code": "UNAUTHENTICATED"}
    assert (
        sum(select(after, "npc_rpc_handled_total", labels))
        - sum(select(before, "npc_rpc_handled_total", labels))
        == 2
    )


async def test_donor_answers_are_timed_against_the_five_minutes_and_silences_counted(
    traffic: Traffic,
) -> None:
    in_time = {"operator": "movistar", "message": "SP"}
    assert traffic.delta("npc_donor_answer_seconds_bucket", le="300.0", **in_time) == 1
    assert traffic.delta("npc_donor_answer_seconds_count", **in_time) == 1
    assert traffic.delta("npc_donor_silences_total", operator="entel", message="SP") == 1
    # The silent donor has an answer-time series (at zero): its SLO ratio is defined.
    assert traffic.values("npc_donor_answer_seconds_count", operator="entel", message="SP")
    assert traffic.delta("npc_donor_answer_seconds_count", operator="entel") == 0
    assert (
        traffic.delta(
            "npc_compliance_records_total",
            flow="portability",
            rule="request_donor_answer",
            severity="grave",
            operator="entel",
        )
        == 1
    )


async def test_deadlines_are_counted_pending_and_their_lateness_observed(
    traffic: Traffic,
) -> None:
    assert traffic.delta("npc_deadlines_fired_total", flow="portability") >= 2
    assert traffic.delta("npc_deadline_lateness_seconds_bucket", flow="portability", le="1.0") >= 2
    # The silent donor's request is admissible and waits for its schedule: a running clock.
    assert sum(traffic.values("npc_deadlines_pending", flow="portability")) >= 1
    assert traffic.values("npc_cases_open", flow="portability")[0] >= 1
    assert traffic.values("npc_deadline_oldest_overdue_seconds") == [0.0]


async def test_storage_registry_and_event_log_are_sampled(traffic: Traffic) -> None:
    assert traffic.values("npc_redis_up") == [1.0]
    assert traffic.values("npc_db_up") == [1.0]
    assert traffic.delta("npc_redis_ping_seconds_count") >= 1
    assert traffic.values("npc_db_pool_connections", state="max") == [10.0]
    assert traffic.values("npc_db_pool_connections", state="in_use")
    ported = traffic.values("npc_registry_ported_numbers", operator="claro", service="mobile")
    assert ported == [1.0]
    assert traffic.delta("npc_registry_lookups_total") == 2
    assert traffic.values("npc_event_log_head_position")[0] > 1
    assert traffic.values("npc_event_subscriber_lag_events", operator="claro")
    assert traffic.delta("npc_events_delivered_total", operator="claro") >= 1


async def test_a_stream_held_by_a_slow_reader_shows_its_lag_until_it_closes(
    app: Clearinghouse, traffic: Traffic
) -> None:
    assert app.core is not None
    hub = app.core.hub
    stream = hub.subscribe("movistar", 0)
    first = await stream.__anext__()  # the reader holds the first event and reads no further

    def lag() -> dict[str, float]:
        return {
            sample.labels["operator"]: sample.value
            for family in SUBSCRIBER_LAG.collect()
            for sample in family.samples
        }

    assert first.position >= 1
    assert lag()["movistar"] == hub.head  # nothing read past from_position 0 yet
    await stream.aclose()
    assert "movistar" not in lag()


async def test_each_worker_serves_its_metrics_on_a_port_of_its_own(
    settings: Settings, clock: FakeClock
) -> None:
    port = free_port()
    # Worker 1 of a deployment whose metrics ports start one below: it listens on `port`.
    house = Clearinghouse(replace(settings, metrics_port=port - 1, worker=1), clock)
    await house.start(background=False, serve_http=False)
    try:
        assert house.metrics_port == port
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            assert response.status == 200
            body = await response.text()
        assert "# TYPE npc_rpc_started_total counter" in body
        assert "npc_event_log_head_position" in body
    finally:
        await house.stop()
