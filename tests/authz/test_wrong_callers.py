"""Every RPC, called as every identity that has no right to it, is refused with PERMISSION_DENIED
(UNAUTHENTICATED without a known token; NOT_FOUND, byte for byte that of a missing case, for an
operator that is no party of the case) and changes nothing: no table the flows write and not the
event log.

Each service gets one clearinghouse and one scenario; each step probes one RPC on a case it applies
to, then lets the rightful caller make the same call, which must work (so the refusals come from
the caller's rights and not from a wrong request). The allowed callers are in `table.py`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
import pytest

from npc.flows.cancellations.handler import register_reporting_operator
from npc.flows.pqr.seed import seed_colombia
from npc.v1 import (
    cancellations_pb2,
    common_pb2,
    compliance_pb2,
    events_pb2,
    inoperability_pb2,
    portability_pb2,
    pqr_pb2,
    registry_pb2,
    sgu_pb2,
    suspension_pb2,
)
from tests.authz.harness import METHODS, Prober, invoke
from tests.authz.table import AUTHZ
from tests.flows.cancellations.test_cancellations import record
from tests.flows.pqr.conftest import filing
from tests.flows.sgu.test_sgu import _at_office
from tests.helpers import (
    advance,
    advance_to,
    block,
    day,
    port_end_to_end,
    port_request,
    rid,
    ts,
)


def test_every_rpc_is_classified() -> None:
    """A new RPC fails here until the table says who may call it."""
    assert METHODS, "no RPC found in the generated descriptors"
    unclassified = sorted(set(METHODS) - set(AUTHZ))
    assert not unclassified, f"RPCs missing from tests/authz/table.py: {unclassified}"
    stale = sorted(set(AUTHZ) - set(METHODS))
    assert not stale, f"table entries for RPCs that no longer exist: {stale}"


@pytest.fixture
async def prober(app, clock) -> AsyncIterator[Prober]:
    """A prober on the clearinghouse, with the Colombian providers and the SIC registered."""
    await seed_colombia(app.core.db, clock.now())
    await app.authenticator.load()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        probe = Prober(app, channel)
        yield probe
        print(f"wrong calls made: {probe.wrong_calls}, hidden as missing: {probe.hidden_checks}")


DNI = common_pb2.IdentityDocument(type=common_pb2.DOCUMENT_TYPE_DNI, number="44556677")


# ---------------------------------------------------------------- portability, registry, events


async def test_portability_registry_and_events(prober, app, clock) -> None:
    p = prober
    pc = await p.check(
        "PortabilityService/SubmitPriorConsultation",
        lambda: portability_pb2.SubmitPriorConsultationRequest(
            request_id=rid(),
            donor="movistar",
            service=common_pb2.SERVICE_TYPE_MOBILE,
            document=DNI,
            numbers=[block("940000009")],
        ),
        right="claro",
    )
    await p.check(
        "PortabilityService/GetPriorConsultation",
        lambda: portability_pb2.GetPriorConsultationRequest(consultation_id=pc.id),
        right="osiptel",
    )
    await p.check(
        "PortabilityService/AnswerPriorConsultation",
        lambda: portability_pb2.AnswerPriorConsultationRequest(
            request_id=rid(), consultation_id=pc.id, accept=True
        ),
        right="movistar",
    )
    filed = await p.check(
        "PortabilityService/SubmitPortRequest",
        lambda: port_request(clock, donor="movistar", numbers=[block("940000001")]),
        right="claro",
    )
    await p.check(
        "PortabilityService/GetPortRequest",
        lambda: portability_pb2.GetPortRequestRequest(port_request_id=filed.id),
        right="movistar",
    )
    await p.check(
        "PortabilityService/ListPortRequests",
        lambda: portability_pb2.ListPortRequestsRequest(),
        right="claro",
    )
    await p.check(
        "PortabilityService/AnswerPortRequest",
        lambda: portability_pb2.AnswerPortRequestRequest(
            request_id=rid(), port_request_id=filed.id, accept=True
        ),
        right="movistar",
    )
    # A fixed-line port, admissible, waiting for the recipient's installation report.
    fixed = await p.check(
        "PortabilityService/SubmitPortRequest",
        lambda: port_request(
            clock,
            donor="movistar",
            numbers=[block("12000001")],
            service=common_pb2.SERVICE_TYPE_FIXED,
        ),
        right="claro",
    )
    await invoke_as(p, "PortabilityService/AnswerPortRequest", "movistar", accept(fixed.id))
    await p.check(
        "PortabilityService/ReportInstallation",
        lambda: portability_pb2.ReportInstallationRequest(
            request_id=rid(),
            port_request_id=fixed.id,
            installation_date=day(clock.now().date()),
        ),
        right="claro",
    )
    # A port objected for debt, waiting for the recipient's proof of payment.
    owed = await invoke_as(
        p,
        "PortabilityService/SubmitPortRequest",
        "claro",
        port_request(clock, donor="movistar", numbers=[block("940000005")]),
    )
    objected = await invoke_as(
        p,
        "PortabilityService/AnswerPortRequest",
        "movistar",
        portability_pb2.AnswerPortRequestRequest(
            request_id=rid(),
            port_request_id=owed.id,
            accept=False,
            objection=portability_pb2.Objection(
                reason=portability_pb2.OBJECTION_REASON_DEBT,
                debt=portability_pb2.Debt(
                    owed=common_pb2.Money(amount="120.50", currency="PEN"),
                    due_date=day("2026-10-31"),
                ),
            ),
        ),
    )
    assert objected.state == portability_pb2.PORT_REQUEST_STATE_OBJECTED_DEBT
    await p.check(
        "PortabilityService/SubmitDebtPaymentProof",
        lambda: portability_pb2.SubmitDebtPaymentProofRequest(
            request_id=rid(),
            port_request_id=owed.id,
            receipt_number="REC-998877",
            paid_at=ts(clock.now() - timedelta(minutes=1)),
        ),
        right="claro",
    )
    window_opens = filed.execution_limit.ToDatetime(tzinfo=UTC) - timedelta(hours=6)
    await p.check(
        "PortabilityService/SchedulePort",
        lambda: portability_pb2.SchedulePortRequest(
            request_id=rid(), port_request_id=filed.id, scheduled_at=ts(window_opens)
        ),
        right="claro",
    )
    await advance_to(app, clock, window_opens)
    for step, who in (
        (portability_pb2.EXECUTION_STEP_DONOR_DISABLED, "movistar"),
        (portability_pb2.EXECUTION_STEP_RECIPIENT_ENABLED, "claro"),
    ):
        await p.check(
            "PortabilityService/ConfirmPortExecution",
            lambda step=step: portability_pb2.ConfirmPortExecutionRequest(
                request_id=rid(), port_request_id=filed.id, step=step
            ),
            allowed={who},
            right=who,
        )
    p.assert_covered("PortabilityService")

    await p.check(
        "RegistryService/LookupNumber",
        lambda: registry_pb2.LookupNumberRequest(number="940000001"),
        right="entel",
    )
    await p.check(
        "RegistryService/LookupNumbers",
        lambda: registry_pb2.LookupNumbersRequest(numbers=["940000001", "910000001"]),
        right="osiptel",
    )
    await p.check(
        "RegistryService/StreamSnapshot",
        lambda: registry_pb2.StreamSnapshotRequest(),
        right="bitel",
    )
    p.assert_covered("RegistryService")
    await p.check("EventService/Subscribe", lambda: events_pb2.SubscribeRequest(), right="claro-co")
    await p.check(
        "EventService/GetStreamHead", lambda: events_pb2.GetStreamHeadRequest(), right="sic"
    )
    p.assert_covered("EventService")
    await p.check(
        "ComplianceService/ListRecords", lambda: compliance_pb2.ListRecordsRequest(), right="sic"
    )
    await p.check(
        "ComplianceService/Summarize", lambda: compliance_pb2.SummarizeRequest(), right="claro"
    )
    p.assert_covered("ComplianceService")


def accept(port_request_id: str) -> portability_pb2.AnswerPortRequestRequest:
    """The donor's acceptance of a port request."""
    return portability_pb2.AnswerPortRequestRequest(
        request_id=rid(), port_request_id=port_request_id, accept=True
    )


async def invoke_as(p: Prober, rpc: str, identity: str, request: Any) -> Any:
    """A setup call made by its rightful caller."""
    return await invoke(p.channel, rpc, request, identity)


# ---------------------------------------------------------------------------- suspension


async def test_suspension(prober, app, clock, operators) -> None:
    p = prober
    filed = await port_end_to_end(
        app, clock, operators["claro"], operators["movistar"], [block("940000001")]
    )
    await advance(app, clock, timedelta(days=31))
    asked = await p.check(
        "SuspensionService/RequestSuspension",
        lambda: suspension_pb2.RequestSuspensionRequest(
            request_id=rid(),
            port_request_id=filed.id,
            number="940000001",
            bill_number="B001-000123",
            due_date=day("2026-11-15"),
            owed=common_pb2.Money(amount="89.90", currency="PEN"),
        ),
        right="movistar",
    )
    await p.check(
        "SuspensionService/GetSuspension",
        lambda: suspension_pb2.GetSuspensionRequest(suspension_id=asked.id),
        right="claro",
    )
    await p.check(
        "SuspensionService/ConfirmSuspension",
        lambda: suspension_pb2.ConfirmSuspensionRequest(request_id=rid(), suspension_id=asked.id),
        right="claro",
    )
    await advance(app, clock, timedelta(days=3))
    paid = clock.now() - timedelta(hours=2)
    await p.check(
        "SuspensionService/RequestReactivation",
        lambda: suspension_pb2.RequestReactivationRequest(
            request_id=rid(), suspension_id=asked.id, paid_at=ts(paid)
        ),
        right="movistar",
    )
    await p.check(
        "SuspensionService/ConfirmReactivation",
        lambda: suspension_pb2.ConfirmReactivationRequest(request_id=rid(), suspension_id=asked.id),
        right="claro",
    )
    p.assert_covered("SuspensionService")


# ------------------------------------------------------------------------------- returns

NOTIFIED = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # Monday 30 November, 10:00 Lima
WINDOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)  # Wednesday 2 December, 00:00 Lima


async def test_returns(prober, app, clock, operators) -> None:
    p = prober
    filed = await port_end_to_end(
        app, clock, operators["claro"], operators["movistar"], [block("940000001", "940000002")]
    )
    await advance_to(app, clock, NOTIFIED)
    asked = await p.check(
        "ReturnsService/RequestReturn",
        lambda: registry_pb2.RequestReturnRequest(
            request_id=rid(),
            port_request_id=filed.id,
            numbers=["940000001"],
            resolution="RES-123-2026",
        ),
        right="movistar",
    )
    await p.check(
        "ReturnsService/GetReturn",
        lambda: registry_pb2.GetReturnRequest(return_id=asked.id),
        right="osiptel",
    )
    await p.check(
        "ReturnsService/AnswerReturn",
        lambda: registry_pb2.AnswerReturnRequest(
            request_id=rid(),
            return_id=asked.id,
            accept=True,
            disable_at=ts(WINDOW + timedelta(hours=1)),
        ),
        right="claro",
    )
    await advance_to(app, clock, WINDOW + timedelta(hours=1))
    for step, who in (
        (registry_pb2.RETURN_STEP_RECIPIENT_DISABLED, "claro"),
        (registry_pb2.RETURN_STEP_DONOR_ENABLED, "movistar"),
    ):
        await p.check(
            "ReturnsService/ConfirmReturnExecution",
            lambda step=step: registry_pb2.ConfirmReturnExecutionRequest(
                request_id=rid(), return_id=asked.id, step=step
            ),
            allowed={who},
            right=who,
        )
    gone = await p.check(
        "ReturnsService/ReportDisconnection",
        lambda: registry_pb2.ReportDisconnectionRequest(request_id=rid(), numbers=["940000002"]),
        right="claro",
    )
    assert [r.serving_operator for r in gone.returned] == ["movistar"]
    p.assert_covered("ReturnsService")


# ------------------------------------------------------------------------- cancellations

REPORT_DAY = date(2026, 11, 22)


async def test_cancellations(prober, app, clock) -> None:
    p = prober
    await register_reporting_operator(
        app.core.db,
        app.settings.cancellations,
        operator="claro",
        since=REPORT_DAY,
        subscribers=12_000_000,
        now=clock.now(),
    )
    await p.check(
        "CancellationsService/SubmitDailyReport",
        lambda: cancellations_pb2.SubmitDailyReportRequest(
            request_id=rid(), report_date=day(REPORT_DAY), records=[record("BJ-0001")]
        ),
        right="claro",
    )
    await p.check(
        "CancellationsService/StreamDailyReport",
        lambda: [
            cancellations_pb2.DailyReportChunk(
                request_id=rid(), report_date=day(REPORT_DAY), records=[record("BJ-0001")]
            ),
            cancellations_pb2.DailyReportChunk(records=[record("BJ-0002")]),
        ],
        right="claro",
    )
    await p.check(
        "CancellationsService/GetTrackedRequest",
        lambda: cancellations_pb2.GetTrackedRequestRequest(
            operator="claro", request_code="BJ-0001"
        ),
        right="osiptel",
    )
    await p.check(
        "CancellationsService/GetDailyReportCompliance",
        lambda: cancellations_pb2.DailyReportComplianceRequest(
            operator="claro", from_date=day(REPORT_DAY), to_date=day(REPORT_DAY)
        ),
        right="claro",
    )
    p.assert_covered("CancellationsService")


# ------------------------------------------------------------------------- inoperability


async def test_inoperability(prober, app, clock) -> None:
    p = prober
    await p.check(
        "InoperabilityService/RegisterAttentionPoint",
        lambda: inoperability_pb2.RegisterAttentionPointRequest(
            request_id=rid(),
            code="CAC-LIMA-01",
            name="Punto CAC-LIMA-01",
            type=inoperability_pb2.ATTENTION_POINT_TYPE_STORE,
            address="Av. Javier Prado Este 123",
            location="San Isidro, Lima, Lima",
        ),
        right="claro",
    )
    started = clock.now()
    opened = await p.check(
        "InoperabilityService/RegisterInoperability",
        lambda: inoperability_pb2.RegisterInoperabilityRequest(
            request_id=rid(),
            attention_point_code="CAC-LIMA-01",
            request_type=inoperability_pb2.REQUEST_TYPE_CLAIMS,
            scenario=inoperability_pb2.SCENARIO_MASS_FAILURE,
            started_at=ts(started),
            detail="SIAC ÚNICO sin respuesta",
        ),
        right="claro",
    )
    await p.check(
        "InoperabilityService/RecordCriticalTransaction",
        lambda: inoperability_pb2.RecordCriticalTransactionRequest(
            request_id=rid(),
            number=opened.number,
            kind=inoperability_pb2.CRITICAL_TRANSACTION_BLOCK_STOLEN_OR_LOST,
            reference="TK-1",
        ),
        right="claro",
    )
    await advance(app, clock, timedelta(minutes=20))
    await p.check(
        "InoperabilityService/CloseInoperability",
        lambda: inoperability_pb2.CloseInoperabilityRequest(
            request_id=rid(),
            number=opened.number,
            ended_at=ts(clock.now()),
            closing_reason=inoperability_pb2.CLOSING_REASON_MASS_APPLICATION_FAILURE,
        ),
        right="claro",
    )
    await p.check(
        "InoperabilityService/GetInoperability",
        lambda: inoperability_pb2.GetInoperabilityRequest(operator="claro", number=opened.number),
        right="osiptel",
    )
    await p.check(
        "InoperabilityService/SubmitInoperabilityReport",
        lambda: inoperability_pb2.SubmitInoperabilityReportRequest(
            request_id=rid(), numbers=[opened.number]
        ),
        right="claro",
    )
    p.assert_covered("InoperabilityService")


# ----------------------------------------------------------------------------------- SGU


async def test_sgu(prober, app, clock) -> None:
    p = prober
    catalogue = await p.check(
        "SguService/ListCatalogue", lambda: sgu_pb2.ListCatalogueRequest(), right="entel"
    )
    rec01 = next(s for s in catalogue.subcategories if s.code == "REC-01")
    await p.check(
        "SguService/UpsertSubcategory",
        lambda: sgu_pb2.UpsertSubcategoryRequest(request_id=rid(), subcategory=rec01),
        right="osiptel",
    )
    # From the web: waits for the e-mail confirmation.
    web = await p.check(
        "SguService/RegisterProblem",
        lambda: sgu_pb2.RegisterProblemRequest(
            request_id=rid(),
            channel=sgu_pb2.CHANNEL_WEB,
            subscriber=common_pb2.Subscriber(
                name="Rosa Quispe Mamani", document=DNI, email="rosa@example.pe"
            ),
            number="940000001",
            subcategory="REC-01",
            description="Recargué 10 soles el lunes y no se acreditaron.",
        ),
        right="osiptel",
    )
    await p.check(
        "SguService/GetProblem",
        lambda: sgu_pb2.GetProblemRequest(problem_id=web.id),
        allowed={"osiptel"},
        hidden={"movistar"},
        right="osiptel",
    )
    token = await _confirmation_token(app, web.id)
    # A wrong caller must not confirm the e-mail; the same token then works for the regulator.
    await p.check(
        "SguService/ConfirmEmail",
        lambda: sgu_pb2.ConfirmEmailRequest(request_id=rid(), token=token),
        right="osiptel",
    )
    problem = await invoke_as(
        p, "SguService/RegisterProblem", "osiptel", _at_office(number="940000002")
    )
    await p.check(
        "SguService/GetProblem",
        lambda: sgu_pb2.GetProblemRequest(problem_id=problem.id),
        right="movistar",
    )
    await p.check("SguService/ListTray", lambda: sgu_pb2.ListTrayRequest(), right="movistar")
    await p.check(
        "SguService/WatchTray", lambda: sgu_pb2.WatchTrayRequest(from_position=0), right="movistar"
    )
    await p.check(
        "SguService/AnswerProblem",
        lambda: sgu_pb2.AnswerProblemRequest(
            request_id=rid(), problem_id=problem.id, answer="Se acreditó.", solved=False
        ),
        right="movistar",
    )
    await p.check(
        "SguService/RateAnswer",
        lambda: sgu_pb2.RateAnswerRequest(
            request_id=rid(), problem_id=problem.id, document=DNI, satisfied=False, score=2
        ),
        right="osiptel",
    )
    await p.check(
        "SguService/EscalateToClaim",
        lambda: sgu_pb2.EscalateToClaimRequest(
            request_id=rid(), problem_id=problem.id, document=DNI
        ),
        right="osiptel",
    )
    await p.check(
        "SguService/AssignClaimCode",
        lambda: sgu_pb2.AssignClaimCodeRequest(
            request_id=rid(), problem_id=problem.id, claim_code="RCL-2026-000123"
        ),
        right="movistar",
    )
    await p.check(
        "SguService/RecordOutage",
        lambda: sgu_pb2.RecordOutageRequest(
            request_id=rid(),
            operator="movistar",
            starts_at=ts(clock.now() - timedelta(hours=3)),
            ends_at=ts(clock.now() - timedelta(hours=1)),
            reason="caída del sistema de atención de Movistar",
        ),
        right="osiptel",
    )
    await p.check(
        "SguService/GetReport",
        lambda: sgu_pb2.GetReportRequest(
            **{"from": ts(clock.now() - timedelta(days=1)), "to": ts(clock.now())}
        ),
        right="osiptel",
    )
    p.assert_covered("SguService")


async def _confirmation_token(app, problem_id: str) -> str:
    async with app.core.db.pool.acquire() as conn:
        body = await conn.fetchval(
            "SELECT body FROM notifications WHERE flow = 'sgu' AND case_id = $1"
            " AND channel = 'email' ORDER BY id LIMIT 1",
            problem_id,
        )
    found = re.search(r"token=([A-Za-z0-9_-]+)", body)
    assert found
    return found.group(1)


# ----------------------------------------------------------------------------------- PQR


async def test_pqr(prober, app, clock) -> None:
    p = prober
    await p.check(
        "PqrService/AssignCunRange",
        lambda: pqr_pb2.AssignCunRangeRequest(
            request_id=rid(), provider="tigo", first="4000000000", last="4999999999"
        ),
        right="sic",
    )
    filed = await p.check("PqrService/FilePqr", filing, right="claro-co")
    cun = filed.cun
    await p.check("PqrService/GetPqr", lambda: pqr_pb2.GetPqrRequest(cun=cun), right="sic")
    await p.check(
        "PqrService/ExtendPqrForEvidence",
        lambda: pqr_pb2.ExtendPqrForEvidenceRequest(
            request_id=rid(), cun=cun, reason="Se requiere revisar los registros de consumo."
        ),
        right="claro-co",
    )
    await p.check(
        "PqrService/AnswerPqr",
        lambda: pqr_pb2.AnswerPqrRequest(
            request_id=rid(),
            cun=cun,
            outcome=pqr_pb2.PQR_OUTCOME_UNFAVORABLE,
            summary="El cobro es correcto.",
        ),
        right="claro-co",
    )
    await advance(app, clock, timedelta(days=1))
    await p.check(
        "PqrService/FileReconsideration",
        lambda: pqr_pb2.FileReconsiderationRequest(
            request_id=rid(), cun=cun, appeal_in_subsidy=True, facts="No estoy de acuerdo."
        ),
        right="claro-co",
    )
    decided = await invoke_as(
        p,
        "PqrService/AnswerPqr",
        "claro-co",
        pqr_pb2.AnswerPqrRequest(
            request_id=rid(),
            cun=cun,
            outcome=pqr_pb2.PQR_OUTCOME_UNFAVORABLE,
            summary="Se confirma la decisión.",
        ),
    )
    assert decided.state == pqr_pb2.PQR_STATE_TRANSFER_DUE
    await p.check(
        "PqrService/RecordTransferToSic",
        lambda: pqr_pb2.RecordTransferToSicRequest(request_id=rid(), cun=cun),
        right="claro-co",
    )
    await p.check(
        "PqrService/DecideAppeal",
        lambda: pqr_pb2.DecideAppealRequest(
            request_id=rid(),
            cun=cun,
            outcome=pqr_pb2.PQR_OUTCOME_FAVORABLE,
            summary="Se ordena el reintegro.",
        ),
        right="sic",
    )
    sms = await p.check(
        "PqrService/ReceiveQuejaSms",
        lambda: pqr_pb2.ReceiveQuejaSmsRequest(
            request_id=rid(), msisdn="3109876543", short_code="85432", text="QUEJA"
        ),
        right="claro-co",
    )
    await p.check(
        "PqrService/GetSmsRequest",
        lambda: pqr_pb2.GetSmsRequestRequest(sms_request_id=sms.id),
        right="sic",
    )
    await p.check(
        "PqrService/AcknowledgeQuejaSms",
        lambda: pqr_pb2.AcknowledgeQuejaSmsRequest(request_id=rid(), sms_request_id=sms.id),
        right="claro-co",
    )
    await p.check(
        "PqrService/RecordCallAttempt",
        lambda: pqr_pb2.RecordCallAttemptRequest(
            request_id=rid(), sms_request_id=sms.id, answered=False
        ),
        right="claro-co",
    )
    await p.check(
        "PqrService/GetMonthlyIndicators",
        lambda: pqr_pb2.GetMonthlyIndicatorsRequest(month="2026-11", provider="claro-co"),
        right="claro-co",
    )
    # Left unanswered past its 15 business days, a PQR is decided for the user by silence.
    silent = await invoke_as(p, "PqrService/FilePqr", "claro-co", filing())
    await advance_to(app, clock, silent.answer_deadline.ToDatetime(tzinfo=UTC))
    assert (
        await invoke_as(p, "PqrService/GetPqr", "claro-co", pqr_pb2.GetPqrRequest(cun=silent.cun))
    ).state == pqr_pb2.PQR_STATE_SILENCE_APPLIED
    await p.check(
        "PqrService/ConfirmSilenceEffects",
        lambda: pqr_pb2.ConfirmSilenceEffectsRequest(
            request_id=rid(), cun=silent.cun, description="Se reintegró el cobro doble."
        ),
        right="claro-co",
    )
    p.assert_covered("PqrService")
