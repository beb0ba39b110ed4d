"""ComplianceService: the compliance ledger read over gRPC, by the regulator and the operators.

The regulator reads every record of its country's flows; an operator reads only its own. An
operator naming another operator in its filter is refused PERMISSION_DENIED rather than answered
with its own records: a silent substitution would let a script believe it read a competitor's
clean record. The rules and flows a filter may name are those the flows' manifests catalogue.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import grpc

from npc.api.event_bodies._convert import enum
from npc.api.event_bodies.compliance import recorded
from npc.api.identity import current_caller
from npc.core import ledger
from npc.core.calendar import calendar_for
from npc.core.compliance import NO_SEVERITY, Rule
from npc.core.dates import check_date, read_date
from npc.core.errors import PermissionDenied
from npc.core.identity import Caller
from npc.core.validation import OPERATOR_ID, Violations
from npc.store.database import Database
from npc.v1 import compliance_pb2 as pb
from npc.v1 import compliance_pb2_grpc as pb_grpc
from npc.v1 import events_pb2

# Records per page of ListRecords: when not asked, and at most.
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Rule keys one filter may name, and the longest period both of whose ends are given.
MAX_RULES = 50
MAX_PERIOD_DAYS = 366
# The severities a filter may name, by wire value; the unspecified value stands for none.
_SEVERITIES = {
    events_pb2.INFRACTION_SEVERITY_UNSPECIFIED: NO_SEVERITY,
    events_pb2.INFRACTION_SEVERITY_LEVE: "leve",
    events_pb2.INFRACTION_SEVERITY_GRAVE: "grave",
    events_pb2.INFRACTION_SEVERITY_MUY_GRAVE: "muy_grave",
}


@dataclass(frozen=True)
class _Catalogue:
    """A country's flows and the keys of their rules."""

    flows: set[str]
    rules: set[str]


class ComplianceServicer(pb_grpc.ComplianceServiceServicer):
    """ListRecords and Summarize over the ledger, limited to what the caller may read."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._catalogues: dict[str, _Catalogue] = {}

    def add_flow(self, flow: str, countries: Iterable[str], rules: Iterable[Rule]) -> None:
        """Let the callers of `countries` read the records of `flow`, whose manifest catalogues
        `rules`."""
        keys = {rule.key for rule in rules}
        for country in countries:
            catalogue = self._catalogues.setdefault(country, _Catalogue(set(), set()))
            catalogue.flows.add(flow)
            catalogue.rules.update(keys)

    async def ListRecords(  # noqa: N802
        self, request: pb.ListRecordsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRecordsResponse:
        """A page of the records the caller may read, oldest first."""
        caller = current_caller()
        v = Violations()
        where = self._filter(v, caller, request.filter)
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            v.add("page_size", f"between 1 and {MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE})")
        after = _cursor(v, request.page_token)
        v.raise_if_any()
        size = request.page_size or DEFAULT_PAGE_SIZE
        rows = await ledger.records(self.db, where, after, size + 1)
        token = ""
        if len(rows) > size:
            last = rows[size - 1]
            token = base64.urlsafe_b64encode(
                f"{last['observed_at'].isoformat()}|{last['id']}".encode()
            ).decode()
        return pb.ListRecordsResponse(
            records=[_record_message(row) for row in rows[:size]], next_page_token=token
        )

    async def Summarize(  # noqa: N802
        self, request: pb.SummarizeRequest, context: grpc.aio.ServicerContext
    ) -> pb.SummarizeResponse:
        """Counts per operator and rule of the records the caller may read."""
        caller = current_caller()
        v = Violations()
        where = self._filter(v, caller, request.filter)
        v.raise_if_any()
        counts = [
            pb.RuleCount(
                operator=row["operator_id"],
                flow=row["flow"],
                rule=row["rule"],
                infraction=row["infraction"] or 0,
                severity=enum(events_pb2.InfractionSeverity, row["severity"]),
                source_kind=enum(events_pb2.RuleSourceKind, row["source_kind"]),
                records=row["records"],
            )
            for row in await ledger.counts(self.db, where)
        ]
        return pb.SummarizeResponse(counts=counts, total=sum(c.records for c in counts))

    def _filter(self, v: Violations, caller: Caller, wire: pb.RecordFilter) -> ledger.LedgerFilter:
        """The caller's filter as the ledger reads it; its mistakes recorded in `v`.

        Raises:
            PermissionDenied: when an operator names another operator.
        """
        catalogue = self._catalogues.get(caller.country, _Catalogue(set(), set()))
        operator: str | None = wire.operator or None
        malformed = operator is not None and not OPERATOR_ID.fullmatch(operator)
        if malformed:
            v.add("filter.operator", "an operator id such as 'claro'")
        if not caller.is_regulator:
            if not malformed and operator not in (None, caller.operator):
                raise PermissionDenied(
                    f"{caller.operator} reads only its own compliance records, not {operator}'s"
                )
            operator = caller.operator
        flows = catalogue.flows
        if wire.flow:
            if wire.flow not in catalogue.flows:
                v.add("filter.flow", f"not a flow of the ledger: one of {sorted(catalogue.flows)}")
            flows = {wire.flow}
        if len(wire.rules) > MAX_RULES:
            v.add("filter.rules", f"at most {MAX_RULES} rules")
        for index, key in enumerate(wire.rules[:MAX_RULES]):
            if key not in catalogue.rules:
                v.add(f"filter.rules[{index}]", "not a rule of the ledger's catalogue")
        severities = []
        if len(wire.severities) > len(_SEVERITIES):
            v.add("filter.severities", f"at most {len(_SEVERITIES)} severities")
        for index, value in enumerate(wire.severities[: len(_SEVERITIES)]):
            if value not in _SEVERITIES:
                v.add(f"filter.severities[{index}]", "unknown severity")
            else:
                severities.append(_SEVERITIES[value])
        start, end = self._period(v, caller, wire)
        return ledger.LedgerFilter(
            flows=tuple(sorted(flows)),
            operator=operator,
            rules=tuple(wire.rules) or None,
            start=start,
            end=end,
            severities=tuple(severities) or None,
        )

    @staticmethod
    def _period(
        v: Violations, caller: Caller, wire: pb.RecordFilter
    ) -> tuple[datetime | None, datetime | None]:
        """The instants of the period's local midnights (the end exclusive)."""
        first = check_date(v, "filter.from_date", read_date(wire, "from_date"), required=False)
        last = check_date(v, "filter.to_date", read_date(wire, "to_date"), required=False)
        if first is not None and last is not None:
            if last < first:
                v.add("filter.to_date", "on or after from_date")
            elif (last - first).days >= MAX_PERIOD_DAYS:
                v.add("filter.to_date", f"at most {MAX_PERIOD_DAYS} days after from_date")
        if last is not None and last == date.max:
            v.add("filter.to_date", "a date before 9999-12-31")
            last = None
        calendar = calendar_for(caller.country)
        return (
            calendar.at(first, time()) if first is not None else None,
            calendar.at(last + timedelta(days=1), time()) if last is not None else None,
        )


def _cursor(v: Violations, token: str) -> tuple[datetime, int] | None:
    """The last record of the previous page, from its token."""
    if not token:
        return None
    try:
        stamp, _, record = base64.urlsafe_b64decode(token.encode()).decode().partition("|")
        after, last = datetime.fromisoformat(stamp), int(record)
    except (ValueError, UnicodeDecodeError):
        after, last = None, -1
    if after is None or after.tzinfo is None or not 0 < last < 2**63:
        v.add("page_token", "not a token returned by ListRecords")
        return None
    return after, last


def _record_message(row: Mapping[str, Any]) -> pb.ComplianceRecord:
    """A ledger row as the wire carries it, through the same converter as its event."""
    source = (
        {
            "kind": row["source_kind"],
            "document": row["source_document"],
            "note": row["source_note"],
        }
        if row["source_kind"]
        else None
    )
    payload = {
        "record_id": row["id"],
        "operator": row["operator_id"],
        "rule": row["rule"],
        "infraction": row["infraction"],
        "article": row["article"],
        "severity": row["severity"],
        "description": row["description"],
        "due_at": row["due_at"].isoformat() if row["due_at"] else None,
        "observed_at": row["observed_at"].isoformat(),
        "evidence": row["evidence"],
        "source": source,
    }
    return pb.ComplianceRecord(flow=row["flow"], case_id=row["case_id"], record=recorded(payload))
