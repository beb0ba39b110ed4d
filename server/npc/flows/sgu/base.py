"""What every part of the SGU handler shares: its settings, the compliance ledger, outages,
the subscriber's identity check and the public status the subscriber's pages show."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from asyncpg import Record

from npc.core.compliance import Rule, record_breach
from npc.core.errors import NotFound, PermissionDenied
from npc.core.identity import Caller
from npc.core.runtime import Core
from npc.core.validation import DOCUMENT_TYPES
from npc.flows.sgu import store
from npc.flows.sgu.model import IdentityDocument
from npc.flows.sgu.rules import (
    DEFAULT_CLAIM_CODE_GRACE,
    FLOW,
    DeadlineUnit,
    escalable,
    extend_for_outages,
)
from npc.flows.sgu.store import CASES
from npc.store.database import Txn

# The public page that confirms an address; the e-mail links to it on the site's public address.
CONFIRM_PATH = "/sgu/confirmar"
DEFAULT_PUBLIC_BASE_URL = "http://localhost:8080"


def digest(token: str) -> bytes:
    """The SHA-256 of a confirmation token: only the digest is stored."""
    return hashlib.sha256(token.encode()).digest()


def public_status(row: Record) -> dict[str, Any]:
    """What the subscriber's pages show of a problem."""
    return {
        "problem_id": row["id"],
        "state": row["state"],
        "operator": row["operator"],
        "number": row["number"],
        "subcategory": row["subcategory"],
        "registered_at": row["registered_at"],
        "answer_deadline": row["answer_deadline"],
        "answered_at": row["answered_at"],
        "answer": row["answer"],
        "answered_late": row["answered_late"],
        "satisfied": row["satisfied"],
        "score": row["score"],
        "claimable": row["claimable"],
        "escalable": escalable(row["state"], row["claimable"], row["answered_late"]),
        "claim_code": row["claim_code"],
        "claim_deadline": row["claim_deadline"],
    }


class SguBase:
    """The handler's settings and the helpers its sub-processes share."""

    def __init__(
        self,
        core: Core,
        jurisdiction: str,
        *,
        claim_code_grace: timedelta = DEFAULT_CLAIM_CODE_GRACE,
        public_base_url: str = DEFAULT_PUBLIC_BASE_URL,
    ) -> None:
        self.core = core
        self.calendar = core.calendar(jurisdiction)
        self.claim_code_grace = claim_code_grace
        self.public_base_url = public_base_url.rstrip("/")

    def confirmation_link(self, token: str) -> str:
        """The address of the confirmation page for `token`, as the subscriber's e-mail gives it."""
        return f"{self.public_base_url}{CONFIRM_PATH}?{urlencode({'token': token})}"

    async def _breach(self, txn: Txn, rule: Rule, row: Record, due: datetime) -> None:
        await record_breach(
            txn,
            flow=FLOW,
            rule=rule,
            operator=row["operator"],
            case_id=row["id"],
            due_at=due,
            observed_at=txn.now,
            evidence={
                "number": row["number"],
                "subcategory": row["subcategory"],
                "due_at": due.isoformat(),
            },
        )

    async def _due(self, txn: Txn, operator: str, start: datetime, base: datetime) -> datetime:
        """The deadline `base` of a period starting at `start`, moved by the outages so far."""
        return extend_for_outages(start, base, await store.outages_of(txn.conn, operator))

    def _base_answer_deadline(self, start: datetime, unit: str, amount: int) -> datetime:
        if unit == DeadlineUnit.HOURS:
            return start + timedelta(hours=amount)
        return self.calendar.end_of_business_days(start, amount)

    @staticmethod
    def _check_caller_is_regulator(caller: Caller, what: str) -> None:
        if not caller.is_regulator:
            raise PermissionDenied(f"only the regulator {what}")

    @staticmethod
    def _same_document(row: Record, document: IdentityDocument) -> bool:
        return bool(
            DOCUMENT_TYPES.get(document.type) == row["document_type"]
            and document.number == row["document_number"]
        )

    async def _lock_for_subscriber(
        self, txn: Txn, problem_id: str, document: IdentityDocument
    ) -> Record:
        row = await CASES.lock(txn, problem_id)
        # A wrong document answers exactly as an unknown problem does.
        if row is None or not self._same_document(row, document):
            raise NotFound("problem", problem_id)
        return row
