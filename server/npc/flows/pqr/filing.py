"""CUN ranges and filing: the SIC assigns ranges, a provider files a PQR under its next CUN and
the user receives the filing's receipt (art. 2.1.5.3)."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from asyncpg import Record

from npc.core.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied
from npc.core.identity import Caller
from npc.core.validation import Violations
from npc.flows.pqr import events, store, texts
from npc.flows.pqr import validation as check
from npc.flows.pqr.base import PqrBase
from npc.flows.pqr.model import AssignCunRange, FilePqr, PqrCase, UserData
from npc.flows.pqr.rules import (
    ALWAYS_VERBAL,
    ANSWER_DAYS,
    FLOW,
    NEVER_VERBAL,
    Channel,
    DeadlineKind,
    Kind,
    State,
    Subject,
)
from npc.store.database import Txn
from npc.store.operators import is_operator

# A filing that waited on a range another filing exhausted tries the next range, this many times.
ALLOCATION_TRIES = 5


class Filing(PqrBase):
    """CUN ranges and the filing of petitions and complaints."""

    async def assign_cun_range(self, txn: Txn, caller: Caller, request: AssignCunRange) -> Record:
        """The SIC assigns a range of CUNs to a provider (art. 2.1.5.3, parágrafo 2)."""
        v = Violations()
        check.check_provider(v, "provider", request.provider)
        check.check_cun(v, "first", request.first)
        check.check_cun(v, "last", request.last)
        if check.CUN.fullmatch(request.first) and check.CUN.fullmatch(request.last):
            if len(request.first) != len(request.last):
                v.add("last", "first and last have the same number of digits")
            elif int(request.first) > int(request.last):
                v.add("last", "not before first")
        v.raise_if_any()
        if not caller.is_regulator:
            raise PermissionDenied("only the regulator (SIC) assigns CUN ranges")
        # A provider under the regulator's own regime: the SIC assigns no CUN to a Peruvian operator.
        if not await is_operator(txn.conn, request.provider, country=caller.country):
            raise NotFound("provider", request.provider)
        try:
            # A savepoint: the transaction must still read which range is in the way.
            async with txn.conn.transaction():
                row = await store.insert_cun_range(
                    txn.conn,
                    request.provider,
                    request.first,
                    request.last,
                    txn.now,
                    caller.operator,
                )
        except asyncpg.ExclusionViolationError:
            assigned = await store.overlapping_cun_range(txn.conn, request.first, request.last)
            raise AlreadyExists(
                "cun_range",
                assigned,
                f"the range overlaps the CUN range {assigned} already assigned",
                collided=f"{request.first}-{request.last}",
            ) from None
        events.emit_range_assigned(
            txn, request.provider, request.first, request.last, caller.operator
        )
        return row

    async def _allocate_cun(self, txn: Txn, provider: str) -> str:
        """The next free CUN of the provider's lowest range with room."""
        for _ in range(ALLOCATION_TRIES):
            cun = await store.take_next_cun(txn.conn, provider)
            if cun is not None:
                return cun
            if not await store.has_cun_left(txn.conn, provider):
                break
        raise FailedPrecondition(
            f"{provider} has no CUN left: the SIC must assign it a CUN range",
            violation_type="NO_CUN_RANGE",
            subject=provider,
        )

    async def file_pqr(self, txn: Txn, caller: Caller, request: FilePqr) -> PqrCase:
        """A user presented a petition or complaint to the provider; it gets its CUN."""
        v = Violations()
        if request.kind is None:
            v.add("kind", "required: PETITION or COMPLAINT")
        if request.channel in (None, Channel.SMS_85432):
            v.add(
                "channel",
                "required: OFFICE, PHONE_LINE, WEBSITE or SOCIAL_NETWORK (SMS QUEJA requests are"
                " registered by RecordCallAttempt)",
            )
        if request.subject is None:
            v.add("subject", "required: what the PQR is about")
        verbal = request.verbal or request.channel in ALWAYS_VERBAL
        if request.verbal and request.channel in NEVER_VERBAL:
            v.add("verbal", "a PQR through the website or a social network is written")
        check.check_user(v, "user", request.user, verbal=verbal)
        check.check_text(v, "facts", request.facts, "the facts the PQR rests on")
        presented = check.check_presented(v, "presented_at", request.presented_at, txn.now)
        v.raise_if_any()
        assert request.kind is not None and request.channel is not None
        assert request.subject is not None
        if caller.is_regulator:
            raise PermissionDenied("PQRs are filed by the provider that received them")
        row = await self._register(
            txn,
            caller.operator,
            kind=request.kind,
            channel=request.channel,
            subject=request.subject,
            user=request.user,
            facts=request.facts,
            sms_request_id=None,
            presented_at=presented,
        )
        return self.case(row)

    async def _register(
        self,
        txn: Txn,
        provider: str,
        *,
        kind: Kind,
        channel: Channel,
        subject: Subject,
        user: UserData,
        facts: str,
        sms_request_id: str | None,
        presented_at: datetime,
    ) -> Record:
        """Store the PQR under the provider's next CUN, start its answer term from the day after
        the user presented it (art. 2.1.5.2), tell the user."""
        assert user.document_type is not None  # checked with the user
        cun = await self._allocate_cun(txn, provider)
        due = self.calendar.end_of_business_days(presented_at, ANSWER_DAYS)
        await txn.lock_case(FLOW, cun)
        row = await store.insert_pqr(
            txn.conn,
            store.NewPqr(
                id=cun,
                provider=provider,
                kind=kind,
                channel=channel,
                subject=subject,
                state=State.ANALYSIS,
                user_name=user.name,
                document_type=user.document_type,
                document_number=user.document_number,
                email=user.email or None,
                address=user.address or None,
                phone=user.phone or None,
                facts=facts,
                sms_request_id=sms_request_id,
                filed_at=presented_at,
                answer_due=due,
            ),
        )
        txn.set_deadline(
            FLOW,
            DeadlineKind.ANSWER,
            cun,
            due,
            f"answer within {ANSWER_DAYS} business days from the day after filing; else positive"
            " silence (art. 2.1.5.2)",
        )
        # The event's own instant is the registration; the row's filed_at the presentation.
        events.emit_pqr(txn, "filed", row, provider, answer_due=due.isoformat())
        word = texts.KIND_WORDS[kind]
        await self._notify_user(
            txn,
            row,
            f"Constancia de presentación de su {word} - CUN {cun}",
            f"Su {word} fue radicada el {texts.moment(self.calendar, presented_at)} bajo el Código "
            f"Único Numérico -CUN- {cun}. Con este código puede consultar su estado en cualquier "
            f"momento. Será respondida a más tardar el día {texts.last_day(self.calendar, due)}.",
        )
        return row
