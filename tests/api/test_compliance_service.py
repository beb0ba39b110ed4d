"""ComplianceService over the wire: who reads which records, the filters, the pages, the summary,
and bad filters refused INVALID_ARGUMENT with their field paths.

One clearinghouse for the module: the tests only read the six records the module writes with
the ledger's own `record_breach`, at instants chosen around Lima's midnight.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.type.date_pb2 import Date

from npc.config import Settings
from npc.core.clock import FakeClock
from npc.core.compliance import Rule, record_breach
from npc.embedded import EmbeddedRedis
from npc.flows.inoperability import rules as inoperability
from npc.flows.portability import rules as portability
from npc.flows.pqr import rules as pqr
from npc.flows.pqr.seed import seed_colombia
from npc.flows.sgu import rules as sgu
from npc.v1 import compliance_pb2 as pb
from npc.v1 import events_pb2
from tests.conftest import DEFAULT_START, DatabaseSupply, Operators
from tests.helpers import error_info, field_violations, running

pytestmark = pytest.mark.asyncio(loop_scope="module")

# (flow, rule, operator, case, observed at): R2 is observed on the 24th in UTC, the 23rd in Lima.
RECORDS: list[tuple[str, Rule, str, str, datetime]] = [
    ("portability", portability.REQUEST_ANSWER, "movistar", "SP0000000001", datetime(2026, 11, 23, 15, 5)),
    ("portability", portability.MOBILE_SCHEDULE, "claro", "SP0000000002", datetime(2026, 11, 24, 3, 0)),
    ("inoperability", inoperability.REPORT, "claro", "claro-000001", datetime(2026, 11, 25, 5, 0)),
    ("sgu", sgu.ANSWER, "movistar", "SG0000000001", datetime(2026, 11, 26, 14, 0)),
    ("pqr", pqr.ANSWER, "claro-co", "CUN-1", datetime(2026, 11, 26, 15, 0)),
    ("portability", portability.REQUEST_ANSWER, "movistar", "SP0000000003", datetime(2026, 11, 27, 15, 0)),
]  # fmt: skip


@pytest.fixture(scope="module")
def shared_database(database_supply: DatabaseSupply) -> Iterator[str]:
    """A fresh database for this module."""
    name, dsn = database_supply.take()
    yield dsn
    database_supply.drop(name)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ledger(shared_database: str, redis_server: EmbeddedRedis) -> AsyncIterator[Operators]:
    """One clearinghouse with the six records, and clients of every identity."""
    settings = Settings(
        database_url=shared_database,
        redis_url=redis_server.url,
        redis_prefix=f"ledger{os.getpid()}",
        grpc_port=0,
        http_port=0,
        db_pool_size=5,
    )
    async with running(settings, FakeClock(DEFAULT_START), serve_http=False) as house:
        assert house.core is not None and house.authenticator is not None
        await seed_colombia(house.core.db, DEFAULT_START)
        await house.authenticator.load()
        for flow, rule, operator, case, observed in RECORDS:
            at = observed.replace(tzinfo=UTC)
            async with house.core.db.transaction("test.breach", at) as txn:
                await record_breach(
                    txn,
                    flow=flow,
                    rule=rule,
                    operator=operator,
                    case_id=case,
                    due_at=None,
                    observed_at=at,
                    evidence={"observed": at.isoformat()},
                )
        clients = Operators(f"127.0.0.1:{house.grpc_port}")
        try:
            yield clients
        finally:
            await clients.close()


def _date(text: str) -> Date:
    year, month, day = (int(part) for part in text.split("-"))
    return Date(year=year, month=month, day=day)


async def cases(
    clients: Operators, who: str, *, page_size: int = 0, token: str = "", **fields: Any
) -> tuple[list[str], str]:
    """The case ids of one page of ListRecords as `who`, and the next page's token."""
    client = clients[who]
    page = await client.compliance.ListRecords(
        pb.ListRecordsRequest(
            filter=pb.RecordFilter(**fields), page_size=page_size, page_token=token
        ),
        metadata=client.metadata,
    )
    return [r.case_id for r in page.records], page.next_page_token


async def test_the_regulator_reads_every_record_of_its_countrys_flows(ledger) -> None:
    client = ledger["osiptel"]
    page = await client.compliance.ListRecords(pb.ListRecordsRequest(), metadata=client.metadata)
    assert [r.case_id for r in page.records] == [
        "SP0000000001", "SP0000000002", "claro-000001", "SG0000000001", "SP0000000003",
    ]  # fmt: skip
    silent, _, report, *_ = page.records
    assert (silent.flow, silent.record.operator, silent.record.rule) == (
        "portability",
        "movistar",
        "request_donor_answer",
    )
    assert (silent.record.infraction, silent.record.severity) == (
        21,
        events_pb2.INFRACTION_SEVERITY_GRAVE,
    )
    assert silent.record.source.kind == events_pb2.RULE_SOURCE_KIND_REGULATION
    # The inoperability report is the operator's own procedure, no infraction of the table.
    assert (report.record.infraction, report.record.severity) == (
        0,
        events_pb2.INFRACTION_SEVERITY_UNSPECIFIED,
    )
    assert report.record.source.kind == events_pb2.RULE_SOURCE_KIND_OPERATOR_PROCEDURE
    assert "Inoperatividad" in report.record.source.document
    assert report.record.evidence["observed"] == "2026-11-25T05:00:00+00:00"
    # Colombia's regulator reads Colombia's flows only.
    assert await cases(ledger, "sic") == (["CUN-1"], "")


async def test_an_operator_reads_only_its_own_records(ledger) -> None:
    assert await cases(ledger, "claro") == (["SP0000000002", "claro-000001"], "")
    assert await cases(ledger, "claro", operator="claro") == (
        ["SP0000000002", "claro-000001"],
        "",
    )
    assert await cases(ledger, "bitel") == ([], "")
    claro = ledger["claro"]
    for call, request in (
        (claro.compliance.ListRecords, pb.ListRecordsRequest),
        (claro.compliance.Summarize, pb.SummarizeRequest),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(
                request(filter=pb.RecordFilter(operator="movistar")), metadata=claro.metadata
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_info(refused.value).reason == "PERMISSION_DENIED"
    movistar = ledger["movistar"]
    summary = await movistar.compliance.Summarize(pb.SummarizeRequest(), metadata=movistar.metadata)
    assert {(c.operator, c.rule, c.records) for c in summary.counts} == {
        ("movistar", "request_donor_answer", 2),
        ("movistar", "sgu_answer_in_time", 1),
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"operator": "movistar"}, ["SP0000000001", "SG0000000001", "SP0000000003"]),
        ({"rules": ["request_donor_answer"]}, ["SP0000000001", "SP0000000003"]),
        # Lima's calendar: 03:00 UTC on the 24th is the evening of the 23rd.
        ({"from_date": "2026-11-23", "to_date": "2026-11-23"}, ["SP0000000001", "SP0000000002"]),
        ({"from_date": "2026-11-24", "to_date": "2026-11-25"}, ["claro-000001"]),
        ({"from_date": "2026-11-26"}, ["SG0000000001", "SP0000000003"]),
        ({"to_date": "2026-11-22"}, []),
        ({"severities": [events_pb2.INFRACTION_SEVERITY_GRAVE]}, ["SP0000000001", "SP0000000003"]),
        (
            {"severities": [events_pb2.INFRACTION_SEVERITY_UNSPECIFIED]},
            ["claro-000001", "SG0000000001"],
        ),
        ({"flow": "inoperability", "operator": "claro"}, ["claro-000001"]),
    ],
)
async def test_filters(ledger, fields: dict[str, object], expected: list[str]) -> None:
    dates = {k: _date(str(v)) for k, v in fields.items() if k.endswith("_date")}
    assert await cases(ledger, "osiptel", **{**fields, **dates}) == (expected, "")


async def test_pages_follow_each_other_oldest_first(ledger) -> None:
    seen: list[list[str]] = []
    token = ""
    while True:
        page, token = await cases(ledger, "osiptel", page_size=2, token=token)
        seen.append(page)
        if not token:
            break
    assert seen == [
        ["SP0000000001", "SP0000000002"],
        ["claro-000001", "SG0000000001"],
        ["SP0000000003"],
    ]


async def test_summary_counts_per_operator_and_rule(ledger) -> None:
    client = ledger["osiptel"]
    summary = await client.compliance.Summarize(pb.SummarizeRequest(), metadata=client.metadata)
    assert [(c.operator, c.flow, c.rule, c.records) for c in summary.counts] == [
        ("claro", "inoperability", "report_inoperability", 1),
        ("claro", "portability", "mobile_schedule", 1),
        ("movistar", "portability", "request_donor_answer", 2),
        ("movistar", "sgu", "sgu_answer_in_time", 1),
    ]
    assert summary.total == 5
    mobile = summary.counts[1]
    assert (mobile.infraction, mobile.severity, mobile.source_kind) == (
        24,
        events_pb2.INFRACTION_SEVERITY_LEVE,
        events_pb2.RULE_SOURCE_KIND_REGULATION,
    )
    graves = await client.compliance.Summarize(
        pb.SummarizeRequest(
            filter=pb.RecordFilter(
                severities=[events_pb2.INFRACTION_SEVERITY_GRAVE], to_date=_date("2026-11-26")
            )
        ),
        metadata=client.metadata,
    )
    assert [(c.operator, c.records) for c in graves.counts] == [("movistar", 1)]


async def test_bad_filters_are_refused_with_their_field_paths(ledger) -> None:
    client = ledger["osiptel"]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.compliance.ListRecords(
            pb.ListRecordsRequest(
                filter=pb.RecordFilter(
                    operator="<b>",
                    rules=["request_donor_answer", "no_such_rule"],
                    from_date=_date("2026-11-30"),
                    to_date=_date("2026-11-01"),
                    severities=[events_pb2.INFRACTION_SEVERITY_LEVE, 99],  # type: ignore[list-item]
                    flow="pqr",  # Colombia's: not in OSIPTEL's ledger
                ),
                page_size=-1,
                page_token="not-a-token",
            ),
            metadata=client.metadata,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(refused.value)) == {
        "filter.operator",
        "filter.rules[1]",
        "filter.to_date",
        "filter.severities[1]",
        "filter.flow",
        "page_size",
        "page_token",
    }
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.compliance.Summarize(
            pb.SummarizeRequest(
                filter=pb.RecordFilter(
                    from_date=Date(year=2026, month=13, day=1), to_date=_date("2028-01-01")
                )
            ),
            metadata=client.metadata,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(refused.value) == {
        "filter.from_date": "not a valid date: a full year (1-9999), month and day"
    }
