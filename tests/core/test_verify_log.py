"""The event log is tamper-evident: `npc admin verify-log` recomputes the hash chain and names the
first position whose content, order or presence was changed behind the clearinghouse's back."""

from __future__ import annotations

from npc.core.verify import verify_log
from tests.helpers import block, port_end_to_end, run_npc, settle


async def _traffic(app, operators, clock) -> int:
    await port_end_to_end(
        app, clock, operators["claro"], operators["movistar"], [block("940000001")]
    )
    await port_end_to_end(app, clock, operators["bitel"], operators["entel"], [block("960000001")])
    await settle(app)
    return app.core.hub.head


async def _tamper(app, sql: str, *args) -> None:
    """Change the log as someone with direct database access would: around the append-only trigger."""
    async with app.core.db.pool.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        await conn.execute(sql, *args)
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")


async def test_an_untouched_log_verifies(app, operators, clock):
    head = await _traffic(app, operators, clock)
    result = await verify_log(app.core.db, batch=3)
    assert result.intact and result.checked == head == result.head


async def test_a_changed_payload_is_caught_at_its_position(app, operators, clock):
    head = await _traffic(app, operators, clock)
    target = head // 2
    await _tamper(
        app,
        "UPDATE events SET payload = jsonb_set(payload, '{tampered}', 'true') WHERE position = $1",
        target,
    )
    result = await verify_log(app.core.db)
    assert (result.first_broken, result.checked) == (target, target - 1)
    assert "hash" in (result.reason or "")


async def test_an_event_readdressed_to_another_operator_is_caught(app, operators, clock):
    await _traffic(app, operators, clock)
    async with app.core.db.pool.acquire() as conn:
        target = await conn.fetchval(
            "SELECT max(position) FROM events WHERE NOT broadcast AND 'movistar' = ANY(audience)"
        )
    await _tamper(app, "UPDATE events SET audience = '{entel}' WHERE position = $1", target)
    result = await verify_log(app.core.db)
    assert result.first_broken == target


async def test_a_deleted_event_and_a_swapped_pair_are_caught(app, operators, clock):
    head = await _traffic(app, operators, clock)
    await _tamper(app, "DELETE FROM events WHERE position = $1", 3)
    result = await verify_log(app.core.db)
    assert result.first_broken == 3 and "missing" in (result.reason or "")

    await _tamper(app, "DELETE FROM events WHERE position = $1", head)  # the last one
    await _tamper(app, "UPDATE events SET position = 3 WHERE position = 4")
    result = await verify_log(app.core.db)
    assert result.first_broken == 3 and "hash" in (result.reason or "")


async def test_npc_admin_verify_log_exits_1_and_names_the_position(
    app, operators, clock, market_database_url
):
    head = await _traffic(app, operators, clock)
    command = ("admin", "--database-url", market_database_url, "verify-log")
    ok = await run_npc(*command)
    assert ok.returncode == 0, ok.stderr
    assert f"log intact: {head:,} events" in ok.stdout
    await _tamper(
        app,
        "UPDATE events SET occurred_at = occurred_at - interval '1 hour' WHERE position = $1",
        5,
    )
    broken = await run_npc(*command)
    assert broken.returncode == 1
    assert "log broken at position 5" in broken.stdout
