"""The audit trail holds against someone with database access: a signed anchor catches a log cut
short or rewritten and re-hashed (which the chain alone cannot), the compliance ledger must match
its logged events, the application role can neither change nor truncate the trail nor disable its
triggers, and operators receive each event's hash and the anchors on their streams."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from npc.cli import main
from npc.core.anchor import (
    ANCHORED,
    Anchor,
    AnchorPublisher,
    InvalidAnchor,
    generate_key,
    public_key_bytes,
)
from npc.core.events import chain_hash
from npc.core.verify import verify_log
from npc.v1 import events_pb2
from npc_clients import OperatorClient
from npc_clients.chain import follows, stored_payload
from tests.helpers import advance, block, collect, port_end_to_end, port_request, running, settle

_DISABLE = "ALTER TABLE {} DISABLE TRIGGER USER"
_ENABLE = "ALTER TABLE {} ENABLE TRIGGER USER"


async def _silent_donor_and_port(app, operators, clock) -> None:
    """A port request the donor lets lapse (one compliance record), then a complete port."""
    await operators["claro"].call("SubmitPortRequest", port_request(clock))
    await advance(app, clock, timedelta(minutes=5, seconds=1))
    await port_end_to_end(app, clock, operators["bitel"], operators["entel"], [block("960000001")])
    await settle(app)


async def _anchor(app, clock, tmp_path: Path) -> Anchor:
    key = generate_key(tmp_path / "anchor.key")
    anchor = await AnchorPublisher(app.core.db, clock, key).publish_once()
    assert anchor is not None and anchor.position == app.core.hub.head
    await settle(app)
    return anchor


async def _as_owner(app, *statements: tuple[object, ...]) -> None:
    """Tamper as the tables' owner can: triggers off, change, triggers on."""
    tables = ("events", "event_head", "compliance_records")
    async with app.core.db.pool.acquire() as conn, conn.transaction():
        for table in tables:
            await conn.execute(_DISABLE.format(table))
        for sql, *args in statements:
            await conn.execute(sql, *args)
        for table in tables:
            await conn.execute(_ENABLE.format(table))


async def _cut_tail(app, keep: int) -> None:
    await _as_owner(
        app,
        ("DELETE FROM events WHERE position > $1", keep),
        (
            "UPDATE event_head SET position = $1,"
            " hash = (SELECT hash FROM events WHERE position = $1)",
            keep,
        ),
    )


async def test_a_cut_tail_fools_the_chain_but_not_the_anchor(
    app, operators, clock, tmp_path, market_database_url, capsys
):
    await _silent_donor_and_port(app, operators, clock)
    anchor = await _anchor(app, clock, tmp_path)
    anchor_file = tmp_path / "anchor.json"

    code = await asyncio.to_thread(main, ["admin", "--database-url", market_database_url, "anchor"])
    assert code == 0
    anchor_file.write_text(capsys.readouterr().out)
    assert Anchor.from_file(anchor_file) == anchor

    # A tail cut after the last compliance record's event: the ledger keeps no record the
    # log lost, so only the anchor can tell.
    async with app.core.db.pool.acquire() as conn:
        recorded = await conn.fetchval(
            "SELECT max(position) FROM events WHERE type = 'compliance.recorded'"
        )
    keep = max(anchor.position - 3, recorded)
    assert keep < anchor.position
    await _cut_tail(app, keep)
    assert (await verify_log(app.core.db)).intact  # the chain alone is fooled
    result = await verify_log(app.core.db, anchor=anchor)
    assert result.first_broken == keep + 1
    assert "tail was removed" in (result.reason or "")

    verify = [
        "admin",
        "--database-url",
        market_database_url,
        "verify-log",
        "--anchor",
        str(anchor_file),
    ]
    assert await asyncio.to_thread(main, verify) == 1
    assert f"log broken at position {keep + 1}" in capsys.readouterr().out


async def test_a_forged_append_and_a_changed_compliance_record_are_caught(
    app, operators, clock, tmp_path
):
    await _silent_donor_and_port(app, operators, clock)
    anchor = await _anchor(app, clock, tmp_path)
    keep = anchor.position - 2
    async with app.core.db.pool.acquire() as conn:
        previous = bytes(await conn.fetchval("SELECT hash FROM events WHERE position = $1", keep))
        forged = await conn.fetch(
            "SELECT occurred_at, flow, type, code, case_id, sender, audience, broadcast, payload"
            " FROM events WHERE position > $1 ORDER BY position",
            keep,
        )
        record = await conn.fetchval("SELECT max(id) FROM compliance_records")
    assert record is not None and (await verify_log(app.core.db, anchor=anchor)).intact

    # The same events readdressed to another operator, re-hashed from the cut on.
    statements: list[tuple[object, ...]] = [("DELETE FROM events WHERE position > $1", keep)]
    for position, row in enumerate(forged, start=keep + 1):
        row = {**row, "audience": ["entel"], "broadcast": False}
        previous = chain_hash(previous, position, row)
        statements.append(
            (
                "INSERT INTO events (position, occurred_at, flow, type, code, case_id, sender,"
                " audience, broadcast, payload, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
                " $9, $10, $11)",
                position,
                *(row[c] for c in ("occurred_at", "flow", "type", "code", "case_id", "sender")),
                row["audience"],
                row["broadcast"],
                row["payload"],
                previous,
            )
        )
    statements.append(("UPDATE event_head SET hash = $1", previous))
    await _as_owner(app, *statements)
    assert (await verify_log(app.core.db)).intact  # a consistent forgery for the chain alone
    result = await verify_log(app.core.db, anchor=anchor)
    assert result.first_broken == anchor.position and "rewritten" in (result.reason or "")

    # The rule's source is covered too: an infraction passed off as the clearinghouse's choice.
    await _as_owner(
        app, ("UPDATE compliance_records SET source_kind = 'clearinghouse' WHERE id = $1", record)
    )
    assert (await verify_log(app.core.db)).ledger_broken == record
    await _as_owner(
        app, ("UPDATE compliance_records SET description = 'changed' WHERE id = $1", record)
    )
    result = await verify_log(app.core.db)
    assert result.first_broken is None and result.ledger_broken == record
    assert not result.intact and "differs from its event" in (result.reason or "")


def test_an_anchor_is_refused_once_tampered_or_signed_by_another_key(tmp_path):
    key = generate_key(tmp_path / "a.key")
    anchor = Anchor.sign(key, 42, bytes(range(32)), datetime(2026, 11, 23, 15, tzinfo=UTC))
    anchor.check_signature()
    assert Anchor.from_json(json.loads(json.dumps(anchor.to_json()))) == anchor
    for tampered in (
        replace(anchor, position=41),
        replace(anchor, hash=bytes(32)),
        replace(anchor, instant=anchor.instant + timedelta(seconds=1)),
        replace(anchor, public_key=public_key_bytes(generate_key(tmp_path / "b.key"))),
    ):
        with pytest.raises(InvalidAnchor, match="signature"):
            tampered.check_signature()
    with pytest.raises(InvalidAnchor, match="hash"):
        Anchor.from_json({**anchor.to_json(), "hash": "00"})
    with pytest.raises(FileExistsError):
        generate_key(tmp_path / "a.key")  # never replaces a key


async def test_the_application_role_cannot_change_the_trail_nor_disable_its_triggers(
    pg_server, database_url
):
    owner = await asyncpg.connect(database_url)
    name = database_url.rsplit("/", 1)[1]
    application = await asyncpg.connect(pg_server.app_dsn_for(name))
    try:
        await owner.execute(
            "INSERT INTO operators (id, name, routing_code) VALUES ('claro', 'Claro', '21')"
        )
        # The application appends: an event and a compliance record, then the sequencer's step.
        await application.execute(
            "INSERT INTO events (occurred_at, flow, type, sender, payload)"
            " VALUES (now(), 'test', 'test.event', 't', '{}')"
        )
        await application.execute(
            "UPDATE events SET position = 1, hash = '\\x01' WHERE position IS NULL"
        )
        await application.execute("UPDATE event_head SET position = 1, hash = '\\x01'")
        await application.execute(
            "INSERT INTO compliance_records (operator_id, flow, case_id, rule, severity,"
            " description, observed_at) VALUES ('claro', 'test', 'c1', 'r', 'leve', 'd', now())"
        )
        refused = [
            "TRUNCATE events",
            "TRUNCATE compliance_records",
            "TRUNCATE anchors",
            "DELETE FROM events WHERE position = 1",
            "UPDATE events SET payload = '{\"x\": 1}' WHERE position = 1",
            "DELETE FROM compliance_records",
            "UPDATE compliance_records SET description = 'changed'",
            "ALTER TABLE events DISABLE TRIGGER events_append_only",
            "ALTER TABLE compliance_records DISABLE TRIGGER USER",
            "ALTER TABLE event_head DISABLE TRIGGER ALL",
        ]
        for sql in refused:
            with pytest.raises(asyncpg.InsufficientPrivilegeError) as error:
                await application.execute(sql)
            assert error.value.sqlstate == "42501", sql
            assert "permission denied" in str(error.value) or "must be owner" in str(error.value)
        # Where it may write a column, the triggers still refuse.
        with pytest.raises(asyncpg.RaiseError, match="immutable"):
            await application.execute("UPDATE events SET position = 5 WHERE position = 1")
        with pytest.raises(asyncpg.RaiseError, match="only moves forward"):
            await application.execute("UPDATE event_head SET position = 0")
        # Even the owner cannot TRUNCATE or change a record without first disabling a trigger.
        with pytest.raises(asyncpg.RaiseError, match="TRUNCATE refused"):
            await owner.execute("TRUNCATE events CASCADE")
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await owner.execute("DELETE FROM compliance_records")
        assert await owner.fetchval("SELECT count(*) FROM compliance_records") == 1
    finally:
        await application.close()
        await owner.close()


async def test_a_server_as_the_application_role_streams_chained_hashes_and_anchors(
    settings, clock, pg_server, database_url, tmp_path
):
    generate_key(tmp_path / "anchor.key")
    name = database_url.rsplit("/", 1)[1]
    as_application = replace(
        settings,
        database_url=pg_server.app_dsn_for(name),
        migration_database_url=database_url,
        anchor_key=str(tmp_path / "anchor.key"),
        anchor_interval=0.2,
    )
    async with running(as_application, clock) as app:
        assert app.core is not None
        clients = {
            op: OperatorClient(f"127.0.0.1:{app.grpc_port}", f"dev-token-{op}", operator=op)
            for op in ("claro", "movistar", "osiptel")
        }
        try:
            await port_end_to_end(
                app, clock, clients["claro"], clients["movistar"], [block("940000001")]
            )
            for _ in range(100):  # the loop anchors within 0.2 s; allow a slow machine 10 s
                async with app.core.db.pool.acquire() as conn:
                    if await conn.fetchval("SELECT count(*) FROM anchors"):
                        break
                await asyncio.sleep(0.1)
            await settle(app)
            head = app.core.hub.head
            events = await collect(clients["osiptel"], 0, head, with_canonical_content=True)
            plain = await collect(clients["osiptel"], 0, head)
        finally:
            for client in clients.values():
                await client.close()
        assert [e.position for e in events][-1] == head
        assert all(len(e.hash) == 32 for e in events)
        pairs = [(a, b) for a, b in itertools.pairwise(events) if b.position == a.position + 1]
        assert len(pairs) >= len(events) // 2
        assert all(follows(a, b) for a, b in pairs)
        forged = events_pb2.Event()
        forged.CopyFrom(pairs[-1][1])
        forged.sender = "entel"
        assert not follows(pairs[-1][0], forged)  # a changed field breaks the link
        forged.CopyFrom(pairs[-1][1])
        forged.canonical_content = forged.canonical_content.replace(b'"', b" ", 1)
        assert not follows(pairs[-1][0], forged)  # and so do changed content bytes
        # Without asking, the stream leaves the content out, and the chain cannot be checked.
        assert [e.position for e in plain] == [e.position for e in events]
        assert not any(e.canonical_content for e in plain)
        with pytest.raises(ValueError, match="with_canonical_content"):
            follows(plain[0], plain[1])

        anchored = [e for e in events if e.type == ANCHORED]
        assert anchored and anchored[0].broadcast
        body = anchored[0].audit_anchor
        anchor = Anchor(
            body.position,
            body.hash,
            body.instant.ToDatetime(tzinfo=UTC),
            body.public_key,
            body.signature,
        )
        assert Anchor.from_json(stored_payload(anchored[0])) == anchor
        anchor.check_signature()
        assert anchor.hash == next(e.hash for e in events if e.position == anchor.position)
        assert (await verify_log(app.core.db, anchor=anchor)).intact
