"""Reading PQRs: by CUN for its provider and the SIC, the public status by CUN (art. 2.1.5.14)
and the monthly indicators per provider (art. 2.1.5.15.3, 2.1.5.15.4)."""

from __future__ import annotations

from datetime import date, datetime, time

from npc.core.calendar import BusinessCalendar
from npc.core.errors import PermissionDenied
from npc.core.identity import Caller
from npc.core.validation import Violations
from npc.flows.pqr import store, texts
from npc.flows.pqr import validation as check
from npc.flows.pqr.base import PqrBase
from npc.flows.pqr.model import (
    GetMonthlyIndicators,
    GetPqr,
    PqrCase,
    ProviderIndicators,
    PublicStatus,
)
from npc.flows.pqr.rules import SILENCE_EFFECTS, TRANSFER, State
from npc.flows.pqr.store import CASES
from npc.store.operators import name_of

# The column holding the date a public status shows, by state (the closed state shows none).
DUE_COLUMN = {
    State.ANALYSIS: "answer_due",
    State.EVIDENCE: "answer_due",
    State.RECONSIDERATION: "rec_answer_due",
    State.RECONSIDERATION_EVIDENCE: "rec_answer_due",
    State.APPEAL: "appeal_due",
    State.TRANSFER_DUE: "transfer_due",
    State.SILENCE_APPLIED: "silence_effects_due",
    State.ANSWERED: "reconsideration_until",
}


def month_bounds(calendar: BusinessCalendar, month: str) -> tuple[datetime, datetime]:
    """The first instant of a ``YYYY-MM`` month in the calendar's zone and of the next one."""
    year, number = int(month[:4]), int(month[5:7])
    first = date(year, number, 1)
    following = date(year + number // 12, number % 12 + 1, 1)
    return calendar.at(first, time(0, 0)), calendar.at(following, time(0, 0))


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


class Queries(PqrBase):
    """A PQR by CUN, its public status and the monthly indicators."""

    async def get_pqr(self, caller: Caller, request: GetPqr) -> PqrCase:
        """A PQR by CUN, for its provider and the regulator."""
        v = Violations()
        check.check_cun(v, "cun", request.cun)
        v.raise_if_any()
        row = await CASES.read_for(
            self.core.db, request.cun, caller.operator, sees_all=caller.is_regulator
        )
        return self.case(row)

    async def public_status(self, cun: str) -> PublicStatus | None:
        """What anyone holding a CUN may read (art. 2.1.5.14): no personal data.

        The seed gives the CUN as the key of the consultation, with no further identity check.
        Returns None when there is no PQR with that CUN.
        """
        if not check.CUN.fullmatch(cun):
            return None
        async with self.core.db.pool.acquire() as conn:
            row = await store.read_pqr(conn, cun)
            provider_name = None if row is None else await name_of(conn, row["provider"])
        if row is None or provider_name is None:
            return None
        due_column = DUE_COLUMN.get(row["state"])
        return {
            "cun": row["id"],
            "provider": row["provider"],
            "provider_name": provider_name,
            "kind": row["kind"],
            "state": row["state"],
            "filed_at": row["filed_at"],
            "due_at": None if due_column is None else row[due_column],
            "sentence": texts.status_sentence(self.calendar, row),
            "transfer_notice": texts.transfer_notice(self.calendar, row),
        }

    async def report(self, month: str, provider: str | None = None) -> list[ProviderIndicators]:
        """Monthly indicators per provider (art. 2.1.5.15.3, 2.1.5.15.4), Bogotá month.

        SMS requests count in the month they were received; answers, silences and transfers in
        the month they happened; late silence effects and late transfers are the compliance
        records whose due instant fell in the month. Percentages are 0 when nothing was counted.

        Args:
            month: ``YYYY-MM``.
            provider: one provider, or None for every provider holding a CUN range.
        """
        start, end = month_bounds(self.calendar, month)
        async with self.core.db.pool.acquire() as conn:
            providers = await store.range_holders(conn, provider)
            if provider is not None and provider not in providers:
                providers = [provider]
            sms = await store.sms_counts(conn, start, end)
            counts = await store.pqr_counts(conn, start, end)
            late = await store.late_counts(conn, start, end)
            subjects = await store.complaint_subjects(conn, start, end)
        rows: list[ProviderIndicators] = []
        for name in providers:
            s = sms.get(name)
            c = counts.get(name)
            n = s["n"] if s else 0
            answers = c["answers"] if c else 0
            rows.append(
                {
                    "provider": name,
                    "month": month,
                    "sms_requests": n,
                    "sms_acknowledged_in_time": s["ack"] if s else 0,
                    "sms_acknowledged_in_time_pct": _pct(s["ack"] if s else 0, n),
                    "sms_contacted_in_time": s["contacted"] if s else 0,
                    "sms_contacted_in_time_pct": _pct(s["contacted"] if s else 0, n),
                    "sms_closed_unreachable": s["unreachable"] if s else 0,
                    "pqrs_filed": c["filed"] if c else 0,
                    "answers": answers,
                    "answers_in_time": c["answers_in_time"] if c else 0,
                    "answers_in_time_pct": _pct(c["answers_in_time"] if c else 0, answers),
                    "silences_applied": c["silences"] if c else 0,
                    "silence_effects_late": late.get((name, SILENCE_EFFECTS.key), 0),
                    "transfers_to_sic": c["transfers"] if c else 0,
                    "transfers_to_sic_late": late.get((name, TRANSFER.key), 0),
                    "frequent_complaints": subjects.get(name, []),
                }
            )
        return rows

    async def monthly_indicators(
        self, caller: Caller, request: GetMonthlyIndicators
    ) -> list[ProviderIndicators]:
        """The monthly indicators: the regulator's of any provider, a provider's of its own."""
        v = Violations()
        if not check.MONTH.fullmatch(request.month):
            v.add("month", "required: YYYY-MM")
        if request.provider:
            check.check_provider(v, "provider", request.provider)
        v.raise_if_any()
        provider: str | None = request.provider or None
        if not caller.is_regulator:
            if provider not in (None, caller.operator):
                raise PermissionDenied("a provider reads its own indicators only")
            provider = caller.operator
        return await self.report(request.month, provider)
