"""What every step of the portability process shares: the handler's state, the parties' checks,
breaches, metrics and the request's events. The steps are in `consultation`, `request`,
`scheduling`, `execution` and `reads`; `handler` assembles them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from asyncpg import Record

from npc.config import PortabilitySettings
from npc.core import numbers as registry
from npc.core.clock import wall_seconds_since
from npc.core.compliance import Rule, record_breach
from npc.core.errors import FailedPrecondition, FieldViolation, InvalidArgument, PermissionDenied
from npc.core.events import CLEARINGHOUSE
from npc.core.identity import Caller
from npc.core.runtime import Core
from npc.core.validation import Violations
from npc.flows.portability import metrics, store
from npc.flows.portability import rules as R
from npc.flows.portability.events import request_payload
from npc.flows.portability.notices import STATUS_PATH, NoticeTexts, OperatorNames, tell_subscriber
from npc.store import operators
from npc.store.database import Txn

FLOW = R.FLOW

# The donor's unanswered message, by the rule its silence breaks.
_SILENT_MESSAGE = {R.CONSULTATION_ANSWER.key: "CP", R.REQUEST_ANSWER.key: "SP"}


class PortabilityBase:
    """The handler's state and the helpers its steps share."""

    def __init__(
        self,
        core: Core,
        settings: PortabilitySettings,
        public_base_url: str = "http://localhost:8080",
    ) -> None:
        self.core = core
        self.settings = settings
        self.timeline = R.Timeline(core.calendar(settings.jurisdiction), settings)
        # What the clearinghouse itself tells the subscriber (`notices`), with the names of the
        # operators the flow reads when it starts.
        self.operator_names = OperatorNames()
        self.notice_texts = NoticeTexts(
            self.timeline.calendar,
            settings.max_outage,
            f"{public_base_url.rstrip('/')}{STATUS_PATH}",
        )
        # Returns and suspensions ask about ports through the core, never with our SQL.
        core.ports = store.PortTables()

    @staticmethod
    def _require_operator(caller: Caller) -> None:
        if caller.is_regulator:
            raise PermissionDenied("the regulator's identity is read-only")

    async def _check_parties_and_numbers(
        self,
        txn: Txn,
        v: Violations,
        caller: Caller,
        donor: str,
        service: str,
        numbers: list[str],
        field: str,
    ) -> None:
        """The donor is another registered operator, and each number is in the numbering plan,
        of the right service, and served by the donor: one read for both (the donor's refusal
        comes first, as it would checked alone)."""
        if donor == caller.operator:
            v.add("donor", "the donor must differ from the recipient (the caller)")
        v.raise_if_any()
        known, served = await registry.who_serves_with_party(txn.conn, numbers, donor)
        if not known:
            raise InvalidArgument(FieldViolation("donor", f"unknown operator {donor!r}"))
        await self._learn_names(txn, (caller.operator, donor))
        for row in served:
            number = row.number
            if row.holder is None:
                raise FailedPrecondition(
                    f"number {number} is not in the numbering plan",
                    violation_type="NUMBER_NOT_IN_PLAN",
                    subject=f"{field}:{number}",
                )
            if row.service != service:
                raise FailedPrecondition(
                    f"number {number} is a {row.service} number, not {service}",
                    violation_type="WRONG_SERVICE",
                    subject=f"{field}:{number}",
                )
            if row.serving != donor:
                raise FailedPrecondition(
                    f"number {number} is neither in the donor's range nor ported to it",
                    violation_type="NUMBER_NOT_SERVED_BY_DONOR",
                    subject=f"{field}:{number}",
                )

    async def load_operator_names(self) -> None:
        """Read every operator's registered name, for the subscriber notices."""
        async with self.core.db.pool.acquire() as conn:
            self.operator_names.names.update(await operators.operator_list(conn))

    async def _learn_names(self, txn: Txn, ids: tuple[str, ...]) -> None:
        """Read the names of parties registered since the flow started (every request is filed
        before any notice names its parties; known names cost nothing)."""
        missing = [i for i in ids if i not in self.operator_names.names]
        if missing:
            self.operator_names.names.update(await operators.names(txn.conn, missing))

    @staticmethod
    def _answer_too_late(row: Record) -> FailedPrecondition:
        """The refusal of a donor's answer after its term: its silence was counted (kept)."""
        return FailedPrecondition(
            f"the {R.DONOR_ANSWER_MINUTES}-minute answer window of {row['id']} closed at"
            f" {row['donor_deadline'].isoformat()}; the donor's silence counted as no objection",
            violation_type="DEADLINE_PASSED",
            subject=row["id"],
            keep_effects=True,
        )

    async def _breach(
        self,
        txn: Txn,
        rule: Rule,
        operator: str,
        case_id: str,
        due_at: datetime | None,
        evidence: dict[str, Any],
    ) -> None:
        if await record_breach(
            txn,
            flow=FLOW,
            rule=rule,
            operator=operator,
            case_id=case_id,
            due_at=due_at,
            observed_at=txn.now,
            evidence=evidence,
        ):
            txn.after_commit(lambda: metrics.DEADLINE_MISSES.labels(operator, rule.key).inc())
            message = _SILENT_MESSAGE.get(rule.key)
            if message is not None:
                txn.after_commit(lambda: metrics.donor_silent(operator, message))

    @staticmethod
    def _count_outcome(txn: Txn, outcome: str) -> None:
        txn.after_commit(lambda: metrics.REQUEST_OUTCOMES.labels(outcome).inc())

    def _observe_answer(self, txn: Txn, donor: str, message: str, sent_at: datetime) -> None:
        # The SLO is about real seconds: an accelerated (demo) clock's are divided by its speed,
        # as deadline lateness is (the compliance ledger keeps judging in the clock's time).
        seconds = wall_seconds_since(self.core.clock, sent_at)
        txn.after_commit(lambda: metrics.donor_answered(donor, message, seconds))

    def _emit(
        self,
        txn: Txn,
        type_: str,
        code: str | None,
        row: Record,
        *,
        sender: str = CLEARINGHOUSE,
        to: tuple[str, ...] = (),
        broadcast: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> None:
        payload = request_payload(row, private=not broadcast)
        if extra:
            payload.update(extra)
        txn.emit(
            FLOW,
            f"portability.request.{type_}",
            code=code,
            case_id=row["id"],
            sender=sender,
            audience=to,
            broadcast=broadcast,
            payload=payload,
        )
        tell_subscriber(txn, type_, row, self.notice_texts, self.operator_names)

    async def _load_request(self, txn: Txn, case_id: str, caller: Caller, *roles: str) -> Record:
        return await store.REQUESTS.lock_for(txn, case_id, caller, *roles)
