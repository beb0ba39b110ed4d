"""The regulator's records: outages, which stop the deadlines that ran during them, and the
catalogue of subcategories."""

from __future__ import annotations

from asyncpg import Record

from npc.core.errors import FieldViolation, InvalidArgument
from npc.core.events import CLEARINGHOUSE
from npc.core.identity import Caller
from npc.core.instants import check_instant, within
from npc.core.validation import Violations, check_operator, printable
from npc.flows.sgu import store
from npc.flows.sgu.base import SguBase
from npc.flows.sgu.catalogue import check_subcategory, upsert
from npc.flows.sgu.events import emit_outage, emit_problem
from npc.flows.sgu.model import Outage, RecordOutage, UpsertSubcategory
from npc.flows.sgu.rules import (
    FLOW,
    OUTAGE_FUTURE,
    OUTAGE_PAST,
    OUTAGE_REASON_LIMIT,
    DeadlineKind,
    State,
)
from npc.flows.sgu.store import CASES
from npc.store.database import Txn
from npc.store.operators import is_operator


class Regulator(SguBase):
    """Outages and the catalogue, the regulator's alone."""

    async def record_outage(self, txn: Txn, caller: Caller, command: RecordOutage) -> Outage:
        """Record an outage and move the deadlines that ran during it."""
        self._check_caller_is_regulator(caller, "records outages")
        v = Violations()
        if command.operator:
            check_operator(v, "operator", command.operator)
        starts = check_instant(v, "starts_at", command.starts_at)
        ends = check_instant(v, "ends_at", command.ends_at)
        for field, value in (("starts_at", starts), ("ends_at", ends)):
            within(v, field, value, txn.now, past=OUTAGE_PAST, future=OUTAGE_FUTURE)
        if starts is not None and ends is not None and ends <= starts:
            v.add("ends_at", "must be after starts_at")
        if not printable(command.reason, limit=OUTAGE_REASON_LIMIT):
            v.add("reason", f"required: up to {OUTAGE_REASON_LIMIT} printable characters")
        v.raise_if_any()
        assert starts is not None and ends is not None
        operator = command.operator or None
        if operator is not None and not await is_operator(
            txn.conn, operator, country=caller.country
        ):
            raise InvalidArgument(
                FieldViolation("operator", "not an operator under this regulator")
            )
        outage_id = await store.insert_outage(
            txn, operator, starts, ends, command.reason, caller.operator
        )
        moved = 0
        for problem_id in await store.deadlines_running_during(txn.conn, operator, starts, ends):
            row = await CASES.lock(txn, problem_id)
            if row is not None and await self._reschedule(txn, row):
                moved += 1
        outage = Outage(outage_id, operator, starts, ends, command.reason, moved)
        emit_outage(txn, outage, caller.operator)
        return outage

    async def _reschedule(self, txn: Txn, row: Record) -> bool:
        """Move the running deadline of a problem by the outages recorded so far."""
        if row["state"] == State.IN_TRAY:
            kind, start, base, column = (
                DeadlineKind.ANSWER,
                row["transferred_at"],
                row["answer_base_deadline"],
                "answer_deadline",
            )
        elif row["state"] == State.CLAIM_REQUESTED:
            kind, start, base, column = (
                DeadlineKind.CLAIM_CODE,
                row["escalated_at"],
                row["claim_code_base_deadline"],
                "claim_code_deadline",
            )
        else:
            return False
        due = await self._due(txn, row["operator"], start, base)
        if due == row[column]:
            return False
        row = await CASES.update(txn, row["id"], {column: due})
        txn.set_deadline(FLOW, kind, row["id"], due, f"{kind} deadline extended by an outage")
        emit_problem(txn, "sgu.problem.deadline_moved", row, CLEARINGHOUSE)
        return True

    async def upsert_subcategory(
        self, txn: Txn, caller: Caller, command: UpsertSubcategory
    ) -> Record:
        """Add or change a subcategory of the catalogue (problems under way keep their terms)."""
        self._check_caller_is_regulator(caller, "edits the catalogue")
        v = Violations()
        check_subcategory(v, command.subcategory)
        v.raise_if_any()
        return await upsert(txn, command.subcategory, caller.operator)
