"""Property-based fuzzing of every RPC the clearinghouse serves (discovered from the generated
descriptors), by every kind of caller, with replays of the same request id.

Whatever is sent, the server never answers INTERNAL or UNKNOWN, stays healthy, rejects without
storing anything, answers a replay as it answered the first time, and keeps the stored invariants:
one serving operator per number, one live port request per number, a gap-free and intact event log.

`NPC_FUZZ_EXAMPLES` raises the number of examples for long local runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Iterator
from datetime import timedelta

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from npc.api.bounds import MAX_UPLOAD_BYTES, max_message_bytes
from npc.api.server import MAX_MESSAGE_BYTES
from tests.fuzz.conftest import Fuzzing
from tests.fuzz.rpcs import (
    COUNTS,
    FAILURES,
    FORBIDDEN,
    TOKENS,
    Mood,
    Outcome,
    Rpc,
    broken_invariants,
    discover,
    field_paths,
    field_violations,
    healthy,
    messages,
    moods_awkwardness,
    mutant,
    sweep_values,
    with_value,
)

RPCS = discover()
UNARY = [r for r in RPCS if not r.client_streaming and not r.server_streaming]
STREAMING = [r for r in RPCS if r.client_streaming or r.server_streaming]
LONG_RUN = int(os.environ.get("NPC_FUZZ_EXAMPLES") or 0)
# A rejection may still commit what the rules record (a FLEP, a breach) with these statuses only.
KEEPS_EFFECTS = {
    grpc.StatusCode.OK,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
}
CHECK_EVERY = 25  # examples between full invariant checks (the log's chain is read whole)
REFRESH_EVERY = 40  # examples between reloads of the plausible values


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings: the server stays up across examples, so no per-example deadline."""
    return settings(
        max_examples=LONG_RUN or examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        # The server's state moves on between examples, so replaying one (to shrink it) does not
        # reproduce it: the first failure is reported as it happened (see `recorded`).
        phases=[Phase.explicit, Phase.generate],
    )


def long_run_timeout(default: int) -> pytest.MarkDecorator:
    """The test's time limit, raised for a long run (half a second per example)."""
    return pytest.mark.timeout(max(default, LONG_RUN // 2))


def assert_sound(rpc: Rpc, outcome: Outcome, request: Message | list[Message]) -> None:
    """The answer is a status the API defines, and a rejected argument names its fields."""
    if outcome.client_write_race:
        return  # the server's status never reached the client (Outcome.client_write_race)
    assert outcome.code not in FORBIDDEN, (rpc.path, outcome.code, outcome.details, request)
    if outcome.details is not None:
        # Trailers are capped by clients: an error must stay readable whatever was sent.
        assert outcome.details.ByteSize() <= 4096, (rpc.path, "oversized status", outcome.details)
    if outcome.code == grpc.StatusCode.RESOURCE_EXHAUSTED and not retry_later(outcome.details):
        # Not the caller's rate limit: only a message over the size limit may exhaust the server.
        sizes = [r.ByteSize() for r in (request if isinstance(request, list) else [request])]
        limit = min(MAX_MESSAGE_BYTES, max_message_bytes(rpc.path))
        assert max(sizes) > limit or sum(sizes) > MAX_UPLOAD_BYTES, (
            rpc.path,
            "exhausted by",
            sizes,
            outcome.details,
        )
    if outcome.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE):
        assert field_violations(outcome.details), (rpc.path, outcome, request)


def retry_later(status: status_pb2.Status | None) -> bool:
    """True when the status tells the caller when to retry (its rate limit)."""
    return status is not None and any(
        d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in status.details
    )


async def after_example(fuzzing: Fuzzing) -> None:
    """Health after each example; the stored invariants every CHECK_EVERY examples."""
    COUNTS["examples"] += 1
    assert await healthy(fuzzing.channel), "the server stopped answering health checks"
    assert not fuzzing.troubles.seen, fuzzing.troubles.seen[:3]
    if COUNTS["examples"] % CHECK_EVERY == 0:
        assert fuzzing.app.core is not None
        await fuzzing.app.core.settle()
        COUNTS["invariant checks"] += 1
        problems = await broken_invariants(fuzzing.app.core.db)
        assert not problems, problems
    if COUNTS["examples"] % REFRESH_EVERY == 0:
        await fuzzing.refresh()


@contextlib.contextmanager
def recorded(what: str) -> Iterator[None]:
    """Keep the first failures as they happened, for the summary."""
    try:
        yield
    except AssertionError as failure:
        FAILURES.append(f"{what}: {failure!r}"[:3000])
        raise


def test_every_rpc_is_discovered() -> None:
    """The descriptors yield the services of every flow, streaming RPCs included."""
    services = {r.service for r in RPCS}
    assert {"npc.v1.PortabilityService", "npc.v1.EventService", "npc.v1.PqrService"} <= services
    assert any(r.server_streaming for r in RPCS) and any(r.client_streaming for r in RPCS)


@pytest.mark.slow
@long_run_timeout(240)
@fuzz_settings(examples=500)
@given(data=st.data())
async def test_unary_rpcs_keep_the_clearinghouse_sound(
    fuzzing: Fuzzing, data: st.DataObject
) -> None:
    with recorded("unary"):
        await unary_example(fuzzing, data)


@pytest.mark.slow
@long_run_timeout(180)
@fuzz_settings(examples=60)
@given(data=st.data())
async def test_streaming_rpcs_keep_the_clearinghouse_sound(
    fuzzing: Fuzzing, data: st.DataObject
) -> None:
    with recorded("streaming"):
        await streaming_example(fuzzing, data)


@pytest.mark.slow
async def test_each_field_of_accepted_requests_takes_each_awkward_value(
    fuzzing: Fuzzing,
) -> None:
    """A deterministic sweep: every singular field (two levels deep) of one accepted request of
    each RPC, in turn, takes each awkward value, under a fresh request id; then time runs 40
    days so every deadline of what was accepted fires."""
    sweep = 0
    for path in sorted(fuzzing.corpus):
        rpc = fuzzing.rpcs[path]
        base, token = fuzzing.corpus[path][0]
        for fields in field_paths(rpc.request):
            for value in sweep_values(fields[-1]):
                sweep += 1
                request = with_value(base, fields, value)
                if rpc.mutating:
                    request.request_id = f"sweep-{sweep}"  # type: ignore[attr-defined]
                before = await fuzzing.stored()
                outcome = await fuzzing.call(rpc, [request], token)
                with recorded(f"sweep {'.'.join(f.name for f in fields)}"):
                    assert_sound(rpc, outcome, request)
                    if outcome.code not in KEEPS_EFFECTS:
                        assert await fuzzing.stored() == before, (rpc.path, outcome.code)
    COUNTS["sweep cases"] += sweep
    assert sweep > 500  # the corpus holds accepted requests of several flows
    assert fuzzing.app.core is not None
    for _ in range(80):
        fuzzing.clock.advance(timedelta(hours=12))
        await fuzzing.app.core.settle()
    assert not fuzzing.troubles.seen, fuzzing.troubles.seen[:3]
    assert await healthy(fuzzing.channel)


async def unary_example(fuzzing: Fuzzing, data: st.DataObject) -> None:
    """One unary call (a fresh request or a mutant of an accepted one), perhaps replayed."""
    mood = Mood(fuzzing.pools, data.draw(moods_awkwardness, label="awkward %"))
    seed = data.draw(st.integers(0, 2**64 - 1), label="mutant seed")
    replay = data.draw(
        st.sampled_from(["none", "none", "same", "different", "concurrent"]), label="replay"
    )
    rng = random.Random(seed)
    # Every example draws the same things whatever the server holds (Hypothesis calls data
    # generation that depends on outside state flaky): the fresh request is drawn even when a
    # mutant of an accepted one is sent instead.
    rpc = data.draw(st.sampled_from(UNARY), label="rpc")
    token = data.draw(st.sampled_from(TOKENS), label="caller")
    request = data.draw(messages(rpc.request, mood), label="request")
    other = data.draw(messages(rpc.request, mood), label="other body")
    if data.draw(st.integers(0, 2), label="mutant?") == 0 and fuzzing.corpus:
        # A mutant of an accepted request, mostly sent by the same caller.
        rpc = fuzzing.rpcs[rng.choice(sorted(fuzzing.corpus))]
        base, owner = rng.choice(fuzzing.corpus[rpc.path])
        token = rng.choice([owner, owner, owner, *TOKENS])
        request = mutant(base, mood, rng)
        other = mutant(base, mood, rng)
    before = await fuzzing.stored()
    first = await fuzzing.call(rpc, [request], token)
    assert_sound(rpc, first, request)
    if first.code not in KEEPS_EFFECTS:
        assert await fuzzing.stored() == before, (rpc.path, first.code, "stored a rejection")

    if rpc.mutating and replay != "none":
        COUNTS["replays"] += 1
        if replay == "concurrent":
            # A fresh request id sent twice at once: one runs, the other gets its answer.
            request.request_id = f"fz-twice-{COUNTS['replays']}-{os.getpid()}"  # type: ignore[attr-defined]
            one, two = await asyncio.gather(
                fuzzing.call(rpc, [request], token), fuzzing.call(rpc, [request], token)
            )
            assert_sound(rpc, one, request)
            assert_sound(rpc, two, request)
            if grpc.StatusCode.ABORTED not in (one.code, two.code):
                assert one.code == two.code, (rpc.path, one, two)
                assert one.response == two.response, (rpc.path, one, two)
        elif replay == "same":
            again = await fuzzing.call(rpc, [request], token)
            assert again.code == first.code, (rpc.path, first, again)
            if first.code == grpc.StatusCode.OK:
                assert again.response == first.response, (rpc.path, first, again)
        else:
            other.request_id = request.request_id  # type: ignore[attr-defined]
            if other.SerializeToString(deterministic=True) != request.SerializeToString(
                deterministic=True
            ):
                again = await fuzzing.call(rpc, [other], token)
                assert_sound(rpc, again, other)
                if first.code == grpc.StatusCode.OK:
                    assert again.code != grpc.StatusCode.OK, (rpc.path, "request id reused", again)

    # Now and then time passes, so deadlines fire on whatever the fuzzing created.
    step = data.draw(st.sampled_from([None] * 12 + [60, 3600, 86400, 10 * 86400]), label="advance")
    if step is not None:
        fuzzing.clock.advance(timedelta(seconds=step))
        assert fuzzing.app.core is not None
        await fuzzing.app.core.settle()
    await after_example(fuzzing)


async def streaming_example(fuzzing: Fuzzing, data: st.DataObject) -> None:
    """One streaming call: a few chunks sent, or a few messages read before cancelling."""
    rpc = data.draw(st.sampled_from(STREAMING), label="rpc")
    token = data.draw(st.sampled_from(TOKENS), label="caller")
    count = data.draw(st.integers(1 if not rpc.client_streaming else 0, 3), label="chunks")
    mood = Mood(fuzzing.pools, data.draw(moods_awkwardness, label="awkward %"))
    requests = [data.draw(messages(rpc.request, mood)) for _ in range(max(count, 1))]
    outcome = await fuzzing.call(rpc, requests[:count] if rpc.client_streaming else requests, token)
    assert_sound(rpc, outcome, requests)
    await after_example(fuzzing)
