"""Donor answer times are observed in wall seconds whatever the clock: the 5-minute SLO is about
real seconds, and a demo's accelerated clock must not multiply them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from npc.core.clock import FakeClock
from npc.flows.portability import convert
from npc.flows.portability.handler import PortabilityHandler
from npc.flows.portability.metrics import DONOR_ANSWER_SECONDS
from npc.v1 import portability_pb2
from tests.conftest import DEFAULT_START
from tests.helpers import Handlers, block, port_request, rid


class SixtyTimesFaster(FakeClock):
    """A fake clock that says it runs 60 times faster than the wall clock (NPC_CLOCK's speed)."""

    speed = 60.0


@pytest.fixture
def clock() -> FakeClock:
    """The handlers' clock: accelerated."""
    return SixtyTimesFaster(DEFAULT_START)


def observed(operator: str) -> tuple[float, float]:
    """(count, sum) of `operator`'s SP answer times."""
    samples = {
        sample.name: sample.value
        for family in DONOR_ANSWER_SECONDS.collect()
        for sample in family.samples
        if sample.labels == {"operator": operator, "message": "SP"}
    }
    name = "npc_donor_answer_seconds"
    return samples.get(f"{name}_count", 0.0), samples.get(f"{name}_sum", 0.0)


async def test_a_donor_answer_on_an_accelerated_clock_is_timed_in_wall_seconds(
    handlers: Handlers,
) -> None:
    flow = handlers.flow("portability")
    handler = getattr(flow, "handler")  # noqa: B009  # the Flow protocol does not name it
    assert isinstance(handler, PortabilityHandler)
    submission = convert.port_request_submission(
        port_request(handlers.clock, donor="movistar", numbers=[block("940000011")])
    )
    filed = await handlers.perform(
        "filed",
        lambda txn: handler.submit_port_request(txn, handlers.caller("claro"), submission),
    )
    count, total = observed("movistar")
    # Four simulated minutes: within the donor's five, and four wall seconds at 60x.
    await handlers.advance(timedelta(minutes=4))
    answer = convert.port_request_answer(
        portability_pb2.AnswerPortRequestRequest(
            request_id=rid(), port_request_id=filed["id"], accept=True
        )
    )
    await handlers.perform(
        "answered",
        lambda txn: handler.answer_port_request(txn, handlers.caller("movistar"), answer),
    )
    new_count, new_total = observed("movistar")
    assert new_count == count + 1
    assert new_total - total == pytest.approx(4.0)
