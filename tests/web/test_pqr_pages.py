"""The PQR status page by CUN (art. 2.1.5.14) and the monthly indicators report over HTTP, with
PQRs filed through the gRPC API by the Colombian demo providers."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import aiohttp

from npc.v1 import pqr_pb2
from tests.flows.pqr.conftest import co, filing, user
from tests.helpers import advance, advance_to, rid
from tests.web.three_formats import three_formats

__all__ = ["co"]  # the Colombian providers' fixture, shared with the flow's own tests

PAGE = "/pqr/consulta"
GENERIC = "No encontramos una petición, queja o recurso con ese CUN."
REPORT = "pqr-indicadores"


def basic(operator: str) -> dict[str, str]:
    token = base64.b64encode(f"{operator}:dev-token-{operator}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def text_of(page: str) -> str:
    """The visible text of a page, tags removed and spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


async def lookup(http: aiohttp.ClientSession, cun: str) -> tuple[int, str]:
    async with http.post(PAGE, data={"cun": cun}) as response:
        return response.status, await response.text()


async def test_a_user_reads_the_regulated_sentence_of_their_pqr(app, co, http):
    filed = await co["claro-co"]("FilePqr", filing())
    status, body = await lookup(http, f" {filed.cun[:4]} {filed.cun[4:]} ")  # pasted with spaces
    assert status == 200
    page = text_of(body)
    assert f"Su PQR con CUN {filed.cun}" in page
    assert "Estado: En análisis por parte del proveedor" in page
    # The sentence of art. 2.1.5.14 is the status block's explanation, with Bogotá dates.
    explanation = re.search(r'<p class="explanation">(.*?)</p>', body, re.S)
    assert explanation is not None
    assert explanation.group(1) == (
        "Señor usuario, le informamos que su queja, radicada bajo el Código Único Numérico -CUN- "
        f"{filed.cun} en fecha 23/11/2026, se encuentra en análisis por parte del proveedor, y la "
        "misma será respondida a través del mismo mecanismo en que fue presentada y a la "
        "dirección de notificación suministrada por usted al momento de presentación de su "
        "queja, a más tardar el día 15/12/2026."
    )
    assert "Proveedor Claro Colombia" in page
    assert "Tipo Queja" in page
    assert "Radicada lunes 23 de noviembre de 2026, 10:00" in page  # 15:00 UTC in Bogotá
    assert "Fecha máxima de respuesta martes 15 de diciembre de 2026" in page
    assert "Zona horaria hora de Colombia" in page
    # Whoever holds the CUN reads no personal data.
    assert "Luz Marina" not in page and "52123456" not in page and "luz@example.co" not in page


async def test_the_page_follows_the_pqr_to_the_sic(app, co, clock, http):
    claro = co["claro-co"]
    filed = await claro("FilePqr", filing())
    await claro(
        "AnswerPqr",
        pqr_pb2.AnswerPqrRequest(
            request_id=rid(),
            cun=filed.cun,
            outcome=pqr_pb2.PQR_OUTCOME_UNFAVORABLE,
            summary="El cobro corresponde al plan contratado.",
        ),
    )
    _, answered = await lookup(http, filed.cun)
    assert "Estado: Respondida por el proveedor" in text_of(answered)
    assert "Último día para presentar recurso de reposición" in text_of(answered)
    await advance(app, clock, timedelta(days=1))
    await claro(
        "FileReconsideration",
        pqr_pb2.FileReconsiderationRequest(
            request_id=rid(),
            cun=filed.cun,
            facts="No estoy de acuerdo con la respuesta.",
            appeal_in_subsidy=True,
        ),
    )
    await advance_to(app, clock, datetime(2026, 12, 4, 15, 0, tzinfo=UTC))
    await claro(
        "AnswerPqr",
        pqr_pb2.AnswerPqrRequest(
            request_id=rid(),
            cun=filed.cun,
            outcome=pqr_pb2.PQR_OUTCOME_UNFAVORABLE,
            summary="Se confirma la decisión.",
        ),
    )
    _, decided = await lookup(http, filed.cun)
    page = text_of(decided)
    assert "Estado: Recurso de apelación: expediente por enviar a la SIC" in page
    # Notified Friday 4 December; 5 business days skipping 8 December end on Monday 14.
    assert "Último día para enviar el expediente a la SIC lunes 14 de diciembre de 2026" in page
    await claro(
        "RecordTransferToSic", pqr_pb2.RecordTransferToSicRequest(request_id=rid(), cun=filed.cun)
    )
    _, appealed = await lookup(http, filed.cun)
    page = text_of(appealed)
    assert "Estado: Recurso de apelación en análisis por parte de la SIC" in page
    assert "se encuentra en análisis por parte de la SIC" in page
    assert "Envío del expediente a la SIC Señor usuario, el expediente de su recurso" in page
    assert "https://www.sic.gov.co" in page


async def test_an_unknown_or_wrong_cun_gets_the_generic_message(app, co, http):
    filed = await co["claro-co"]("FilePqr", filing())
    unknown = str(int(filed.cun) + 1)
    for cun in (unknown, "2000000000", "999999"):
        status, body = await lookup(http, cun)
        assert status == 200
        assert GENERIC in body
        assert "Claro Colombia" not in body and "Estado:" not in body
    # Not a CUN at all: the form says what a CUN looks like, and still reveals nothing.
    status, body = await lookup(http, "1000-ABC")
    assert status == 400
    assert "Escriba el CUN: solo dígitos, entre 6 y 18." in body
    assert "Claro Colombia" not in body


async def test_colombian_pages_are_the_pqr_service_and_claim_nothing_of_portability(app, http):
    pages = []
    for path in ("/co", PAGE):
        async with http.get(path) as response:
            assert response.status == 200
            pages.append(await response.text())
    pages.append((await lookup(http, "2000000000"))[1])  # an answer, rendered by the page too
    for body in pages:
        brand = re.search(r'<a class="brand" href="/co">(.*?)</a>', body)
        assert brand is not None and brand.group(1) == "Consulta de PQR"
        footer = re.search(r'<footer class="site">(.*?)</footer>', body, re.S)
        assert footer is not None and "(PQR)" in footer.group(1)
        assert "gratuita" not in footer.group(1)  # that promise is portability's, in Peru
        assert "portabilidad" not in text_of(body).lower(), text_of(body)
    # Peru's home keeps its own masthead.
    async with http.get("/") as response:
        peru = text_of(await response.text())
    assert "Portabilidad numérica" in peru and "La portabilidad es gratuita." in peru


async def test_the_lookups_are_rate_limited_with_the_other_pages(app, co, http):
    from tests.web.conftest import LOOKUPS_PER_MINUTE

    filed = await co["claro-co"]("FilePqr", filing())
    for _ in range(LOOKUPS_PER_MINUTE):
        status, _ = await lookup(http, "1999999999")
        assert status == 200
    status, body = await lookup(http, filed.cun)
    assert status == 429
    assert "Demasiadas consultas" in body and "Claro Colombia" not in body


async def _november(app, co, clock) -> str:
    """claro-co: one SMS QUEJA acknowledged late, three complaints and one petition, one answered
    in time. tigo: one petition. Returns the answered complaint's CUN."""
    claro = co["claro-co"]
    sms = await claro(
        "ReceiveQuejaSms",
        pqr_pb2.ReceiveQuejaSmsRequest(
            request_id=rid(), msisdn="3101111111", short_code="85432", text="QUEJA"
        ),
    )
    await advance(app, clock, timedelta(minutes=6))
    await claro(
        "AcknowledgeQuejaSms",
        pqr_pb2.AcknowledgeQuejaSmsRequest(request_id=rid(), sms_request_id=sms.id),
    )
    answered = await claro("FilePqr", filing())
    await claro("FilePqr", filing())
    await claro("FilePqr", filing(subject=pqr_pb2.PQR_SUBJECT_SERVICE_QUALITY))
    await claro("FilePqr", filing(kind=pqr_pb2.PQR_KIND_PETITION))
    await co["tigo"](
        "FilePqr", filing(kind=pqr_pb2.PQR_KIND_PETITION, user=user(name="Pedro Ruiz"))
    )
    await claro(
        "AnswerPqr",
        pqr_pb2.AnswerPqrRequest(
            request_id=rid(),
            cun=answered.cun,
            outcome=pqr_pb2.PQR_OUTCOME_FAVORABLE,
            summary="Se reversa el cobro.",
        ),
    )
    return answered.cun


async def test_the_sic_reads_the_monthly_indicators_in_three_formats(app, co, clock, http):
    await _november(app, co, clock)
    rows = await three_formats(http, REPORT, {"desde": "2026-11", "hasta": "2026-11"}, basic("sic"))
    by_provider = {row["provider"]: row for row in rows}
    assert set(by_provider) == {"claro-co", "movistar-co", "tigo"}
    claro = by_provider["claro-co"]
    assert claro["month"] == "2026-11"
    assert (claro["sms_requests"], claro["sms_acknowledged_in_time"]) == (1, 0)
    assert claro["sms_acknowledged_in_time_pct"] == 0.0
    assert claro["pqrs_filed"] == 4
    assert (claro["answers"], claro["answers_in_time"]) == (1, 1)
    assert claro["answers_in_time_pct"] == 100.0
    assert claro["frequent_complaints"] == "facturación: 2; calidad del servicio: 1"
    assert by_provider["tigo"]["pqrs_filed"] == 1
    assert by_provider["tigo"]["frequent_complaints"] == ""
    # The same figures as the gRPC indicators of the flow.
    grpc_view = await co["sic"](
        "GetMonthlyIndicators",
        pqr_pb2.GetMonthlyIndicatorsRequest(month="2026-11", provider="claro-co"),
    )
    [indicators] = grpc_view.providers
    assert (indicators.pqrs_filed, indicators.answers_in_time) == (4, 1)


async def test_the_report_picks_whole_months_and_lists_each(app, co, clock, http):
    await _november(app, co, clock)
    # December: the three unanswered claro-co complaints and petition fall into silence.
    await advance_to(app, clock, datetime(2026, 12, 31, 12, 0, tzinfo=UTC))
    params = {"desde": "2026-11", "hasta": "2026-12", "operador": "claro-co"}
    rows = await three_formats(http, REPORT, params, basic("sic"))
    assert [(r["month"], r["pqrs_filed"], r["silences_applied"]) for r in rows] == [
        ("2026-11", 4, 0),
        ("2026-12", 0, 3),
    ]
    # A full date names its month; the JSON gives the whole months' first and last days.
    async with http.get(
        f"/reportes/{REPORT}",
        params={"desde": "2026-12-15", "hasta": "2026-12-16", "formato": "json"},
        headers=basic("sic"),
    ) as response:
        document = await response.json()
    assert (document["from"], document["to"]) == ("2026-12-01", "2026-12-31")
    assert {r["month"] for r in document["rows"]} == {"2026-12"}
    # The page offers month pickers, defaulting to the current Bogotá month.
    async with http.get(f"/reportes/{REPORT}", headers=basic("sic")) as response:
        page = await response.text()
    assert '<input type="month" id="desde" name="desde" value="2026-12"' in page
    # The SIC's report pages are Colombia's: the PQR service's header, not portability's.
    assert '<a class="brand" href="/co">Consulta de PQR</a>' in page
    assert ", de 12/2026 a 12/2026</caption>" in page
    async with http.get("/reportes", headers=basic("sic")) as response:
        assert '<a class="brand" href="/co">Consulta de PQR</a>' in await response.text()
    for bad, message in (
        ({"desde": "2026-13"}, "Mes no válido: use el formato AAAA-MM."),
        ({"desde": "2026-12", "hasta": "2026-11"}, "El mes final no puede ser anterior"),
        ({"desde": "2025-12", "hasta": "2026-12"}, "como máximo 12 meses"),
    ):
        async with http.get(f"/reportes/{REPORT}", params=bad, headers=basic("sic")) as response:
            assert response.status == 400
            assert message in await response.text()


async def test_a_provider_reads_only_its_own_indicators(app, co, clock, http):
    await _november(app, co, clock)
    params = {"desde": "2026-11", "hasta": "2026-11", "operador": "tigo"}
    rows = await three_formats(http, REPORT, params, basic("claro-co"))
    assert [r["provider"] for r in rows] == ["claro-co"]  # the operator filter is its own
    async with http.get(f"/reportes/{REPORT}", headers={}) as response:
        assert response.status == 401
