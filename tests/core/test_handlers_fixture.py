"""The handler fixture: the core and every flow over the demo market, no gRPC or HTTP."""

from __future__ import annotations

import pytest

from npc.core import numbers
from npc.core.errors import FailedPrecondition
from npc.store import operators
from npc.store.database import Txn
from tests.helpers import Handlers


async def test_the_demo_market_comes_from_the_template_and_nothing_listens(handlers: Handlers):
    async with handlers.core.db.pool.acquire() as conn:
        assert await operators.count(conn) >= 5
        served = await numbers.who_serves(conn, ["940000001"])
    assert [(s.holder, s.serving, s.ported) for s in served] == [("movistar", "movistar", False)]
    assert set(handlers.core.flows) >= {"portability", "suspension", "registry", "sgu", "pqr"}


async def test_perform_keeps_what_a_refusal_keeps_and_undoes_the_rest(handlers: Handlers):
    async def refuse(keep: bool, case: str):
        async def command(txn: Txn) -> None:
            txn.emit("portability", "test.noted", case_id=case, sender="claro", payload={})
            raise FailedPrecondition("refused", keep_effects=keep)

        return command

    with pytest.raises(FailedPrecondition):
        await handlers.perform("test.kept", await refuse(True, "kept"))
    with pytest.raises(FailedPrecondition):
        await handlers.perform("test.undone", await refuse(False, "undone"))
    async with handlers.core.db.pool.acquire() as conn:
        cases = {r["case_id"] for r in await conn.fetch("SELECT case_id FROM events")}
    assert "kept" in cases and "undone" not in cases


async def test_who_serves_with_party_answers_both_in_the_numbers_order(handlers: Handlers):
    async with handlers.core.db.pool.acquire() as conn:
        known, served = await numbers.who_serves_with_party(
            conn, ["960000001", "930000001", "940000001"], "movistar"
        )
        regulator, _ = await numbers.who_serves_with_party(conn, ["940000001"], "osiptel")
        unknown, nothing = await numbers.who_serves_with_party(conn, [], "nobody")
        alone, none_read = await numbers.who_serves_with_party(conn, [], "entel")
    assert known is True
    assert [(s.number, s.holder, s.serving) for s in served] == [
        ("960000001", "entel", "entel"),
        ("930000001", None, None),  # outside the numbering plan
        ("940000001", "movistar", "movistar"),
    ]
    assert regulator is False  # registered, but not an operator
    assert (unknown, nothing) == (False, [])
    assert (alone, none_read) == (True, [])  # no numbers: the party is still read
