"""The public pages and the regulator's reports over plain HTTP: status texts, one answer for
every miss, escaping, security headers, the lookup rate limit and the report formats."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from datetime import timedelta

import aiohttp
import pytest
import redis.asyncio as aioredis

from npc.config import WebSettings
from npc.core.clock import FakeClock
from npc.embedded import free_port
from npc.v1 import portability_pb2 as pb
from npc.web.ratelimit import RateLimiter
from npc.web.render import CONTENT_SECURITY_POLICY, resolve_client
from tests.helpers import advance, advance_to, block, port_request, rid, subscriber, ts
from tests.web.conftest import LOOKUPS_PER_MINUTE

PAGE = "/portabilidad/consulta"
GENERIC = "No encontramos una solicitud con esos datos."
REGULATOR = {"Authorization": "Basic " + base64.b64encode(b"osiptel:dev-token-osiptel").decode()}


def text_of(html: str) -> str:
    """The visible text of a page, tags removed and spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


async def lookup(
    http: aiohttp.ClientSession, code: str, document: str, **headers: str
) -> tuple[int, str]:
    async with http.post(
        PAGE, data={"codigo": code, "documento": document}, headers=headers
    ) as response:
        return response.status, await response.text()


async def file_request(operators, clock, number: str = "940000001", dni: str = "44556677"):
    return await operators["claro"].call(
        "SubmitPortRequest",
        port_request(clock, numbers=[block(number)], subscriber=subscriber(dni)),
    )


async def test_home_page_is_spanish_plain_html_with_security_headers(app, http):
    async with http.get("/") as response:
        body = await response.text()
        assert response.status == 200
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.content_type == "text/html"
    assert '<html lang="es">' in body
    assert "<script" not in body
    assert f'href="{PAGE}"' in body
    # Nothing is loaded from anywhere else.
    assert not re.search(r'(src|href)="(https?:)?//', body)
    async with http.get("/static/npc.css") as response:
        assert response.status == 200
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    async with http.get("/no-existe") as response:
        assert response.status == 404
        assert "Página no encontrada" in await response.text()
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


async def test_form_has_a_label_for_every_field(app, http):
    async with http.get(PAGE) as response:
        body = await response.text()
        assert response.headers["Cache-Control"] == "no-store"
    inputs = re.findall(r'<input[^>]* id="([^"]+)"', body)
    assert inputs == ["campo-codigo", "campo-documento"]
    for field_id in inputs:
        assert f'<label for="{field_id}">' in body
    assert 'method="post"' in body


async def test_status_follows_the_request_in_plain_spanish(app, operators, clock, http):
    filed = await file_request(operators, clock)

    status, body = await lookup(http, filed.id, "44556677")
    assert status == 200
    page = text_of(body)
    assert f"Solicitud de portabilidad {filed.id}" in page
    assert "Estado: En evaluación" in page
    assert "Telefónica del Perú (Movistar)" in page
    assert "******001" in page and "940000001" not in page
    assert "lunes 23 de noviembre de 2026, 10:00" in page  # filed at 10:00 in Lima

    # Codes and documents are accepted with spaces and in lower case, as people type them.
    status, body = await lookup(http, " " + filed.id.lower(), "4455 6677")
    assert "Estado: En evaluación" in text_of(body)

    await operators["movistar"].call(
        "AnswerPortRequest",
        pb.AnswerPortRequestRequest(request_id=rid(), port_request_id=filed.id, accept=True),
    )
    page = text_of((await lookup(http, filed.id, "44556677"))[1])
    assert "Estado: Procedente" in page
    assert "Plazo máximo para el cambio" in page

    limit = filed.execution_limit.ToDatetime(tzinfo=clock.now().tzinfo)
    window_opens = limit - timedelta(hours=6)
    await operators["claro"].call(
        "SchedulePort",
        pb.SchedulePortRequest(
            request_id=rid(), port_request_id=filed.id, scheduled_at=ts(window_opens)
        ),
    )
    page = text_of((await lookup(http, filed.id, "44556677"))[1])
    assert "Estado: Programada" in page
    assert (
        "Cambio programado martes 24 de noviembre de 2026, 00:00 "
        "(la ventana de cambio termina a las 06:00)" in page
    )

    await advance_to(app, clock, window_opens)
    await advance(app, clock, timedelta(minutes=1))  # a new rate-limit window too
    page = text_of((await lookup(http, filed.id, "44556677"))[1])
    assert "Estado: Cambio realizado, en confirmación" in page


async def test_rejection_explains_the_donors_reason(app, operators, clock, http):
    filed = await file_request(operators, clock)
    await operators["movistar"].call(
        "AnswerPortRequest",
        pb.AnswerPortRequestRequest(
            request_id=rid(),
            port_request_id=filed.id,
            accept=False,
            objection=pb.Objection(reason=pb.OBJECTION_REASON_DOCUMENT_MISMATCH),
        ),
    )
    page = text_of((await lookup(http, filed.id, "44556677"))[1])
    assert "Estado: Rechazada" in page
    assert (
        "Telefónica del Perú (Movistar) observó la solicitud porque el documento de identidad "
        "no coincide con el del titular de la línea." in page
    )


async def test_wrong_code_and_wrong_document_get_the_same_answer(app, operators, clock, http):
    filed = await file_request(operators, clock)
    other = f"SP{int(filed.id[2:]) + 1:010d}"

    wrong_document = await lookup(http, filed.id, "87654321")
    wrong_code = await lookup(http, other, "44556677")

    assert wrong_document[0] == wrong_code[0] == 200
    assert GENERIC in wrong_document[1]
    # The pages differ only by the values the visitor typed, echoed back in the form.
    assert wrong_document[1].replace(filed.id, "C").replace("87654321", "D") == wrong_code[
        1
    ].replace(other, "C").replace("44556677", "D")
    assert "En evaluación" not in wrong_document[1]


async def test_malformed_input_is_escaped_and_explained(app, http):
    status, body = await lookup(http, "<script>x</script>", '"><img src=x onerror=f()>')
    assert status == 400
    # Both fields are echoed back (upper-cased, spaces removed), escaped.
    lowered = body.lower()
    assert "<script" not in lowered and "<img" not in lowered
    assert 'value="&lt;script&gt;x&lt;/script&gt;"' in lowered
    assert 'value="&#34;&gt;&lt;imgsrc=xonerror=f()&gt;"' in lowered
    page = text_of(body)
    assert "Escriba el número de solicitud: las letras SP seguidas de 10 dígitos." in page
    assert "Escriba el número de documento" in page
    assert 'aria-invalid="true"' in body


async def test_a_form_posted_from_another_site_is_refused(app, operators, clock, http):
    filed = await file_request(operators, clock)
    status, body = await lookup(http, filed.id, "44556677", Origin="http://evil.example")
    assert status == 403
    assert "En evaluación" not in body
    status, _ = await lookup(http, filed.id, "44556677", **{"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    status, _ = await lookup(http, filed.id, "44556677", **{"Sec-Fetch-Site": "same-origin"})
    assert status == 200


async def test_lookups_are_limited_per_client_and_window(app, operators, clock, http):
    filed = await file_request(operators, clock)
    for _ in range(LOOKUPS_PER_MINUTE):
        assert (await lookup(http, filed.id, "00000000"))[0] == 200
    status, body = await lookup(http, filed.id, "44556677")  # even the right answer waits
    assert status == 429
    assert "Demasiadas consultas" in body
    assert "espere 60 segundos" in text_of(body)
    assert "En evaluación" not in body

    # The window is a clock minute: one second before its end still refused, at its end allowed.
    await advance(app, clock, timedelta(seconds=59))
    async with http.post(PAGE, data={"codigo": filed.id, "documento": "44556677"}) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "1"
    await advance(app, clock, timedelta(seconds=1))
    status, body = await lookup(http, filed.id, "44556677")
    assert status == 200
    assert "En evaluación" in body


async def test_rate_limit_is_shared_through_redis_and_kept_in_memory_without_it(redis_server):
    clock = FakeClock()
    window = timedelta(minutes=1)
    shared = aioredis.Redis.from_url(redis_server.url)
    other_process = aioredis.Redis.from_url(redis_server.url)
    try:
        first = RateLimiter(shared, "rl-test", clock, limit=3, window=window)
        second = RateLimiter(other_process, "rl-test", clock, limit=3, window=window)
        verdicts = [await first.hit("lookup", "10.9.9.9") for _ in range(2)]
        verdicts.append(await second.hit("lookup", "10.9.9.9"))
        assert [v.allowed for v in verdicts] == [True, True, True]
        assert not (await second.hit("lookup", "10.9.9.9")).allowed
        assert not (await first.hit("lookup", "10.9.9.9")).allowed
        assert (await first.hit("lookup", "10.9.9.8")).allowed  # another client
    finally:
        await shared.aclose()
        await other_process.aclose()

    # Nothing listens on this port: every call to Redis fails and the process counts alone.
    gone = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    try:
        alone = RateLimiter(gone, "rl-test", clock, limit=2, window=window)
        assert [(await alone.hit("lookup", "10.1.1.1")).allowed for _ in range(3)] == [
            True,
            True,
            False,
        ]
        clock.advance(window)
        assert (await alone.hit("lookup", "10.1.1.1")).allowed
    finally:
        await gone.aclose()


def test_web_settings_validate_the_limit():
    with pytest.raises(ValueError):
        RateLimiter(None, "p", FakeClock(), limit=0, window=timedelta(minutes=1))  # type: ignore[arg-type]
    assert WebSettings().lookups_per_window == 10


async def donor_silence_breach(app, operators, clock):
    """A port request whose donor stays silent past its 5 minutes: one compliance record."""
    filed = await file_request(operators, clock, number="940000055")
    await advance(app, clock, timedelta(minutes=5))
    return filed


async def test_reports_need_a_token(app, http):
    async with http.get("/reportes/cumplimiento") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
        assert "Acceso restringido" in await response.text()
    bad = {"Authorization": "Basic " + base64.b64encode(b"x:wrong-token").decode()}
    async with http.get("/reportes/cumplimiento", headers=bad) as response:
        assert response.status == 401


async def test_compliance_report_as_html_csv_and_json(app, operators, clock, http):
    filed = await donor_silence_breach(app, operators, clock)
    query = {"desde": "2026-11-01", "hasta": "2026-11-30"}

    async with http.get("/reportes/cumplimiento", params=query, headers=REGULATOR) as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "private, no-store"
        body = await response.text()
    page = text_of(body)
    assert "1 registro" in page
    assert "Registro de incumplimientos, del 01/11/2026 al 30/11/2026" in page  # as cells say dates
    assert (
        f"23/11/2026 10:05:00 Telefónica del Perú (Movistar) Portabilidad numérica {filed.id}"
        " request_donor_answer norma del regulador 21" in page
    )
    assert "grave" in page
    assert '<th scope="col">Infracción</th>' in body
    assert 'id="descargar-csv"' in body

    async with http.get(
        "/reportes/cumplimiento", params={**query, "formato": "csv"}, headers=REGULATOR
    ) as response:
        assert response.status == 200
        assert response.content_type == "text/csv"
        assert "attachment" in response.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO((await response.text()).lstrip("\ufeff"))))
    assert len(rows) == 1
    assert (rows[0]["operator"], rows[0]["flow"]) == ("movistar", "portability")  # keys, not labels
    assert rows[0]["case_id"] == filed.id
    assert rows[0]["infraction"] == "21"
    assert rows[0]["observed_at"] == "2026-11-23T15:05:00+00:00"
    assert json.loads(rows[0]["evidence"])

    async with http.get(
        "/reportes/cumplimiento", params={**query, "formato": "json"}, headers=REGULATOR
    ) as response:
        document = await response.json()
    assert document["report"] == "cumplimiento"
    assert [c["key"] for c in document["columns"]][:3] == ["observed_at", "operator", "flow"]
    assert document["rows"][0]["rule"] == "request_donor_answer"
    assert document["rows"][0]["severity"] == "grave"
    assert document["rows"][0]["source"] == "regulation"

    # The period is in Lima's calendar: a period that ends the day before finds nothing.
    async with http.get(
        "/reportes/cumplimiento",
        params={"desde": "2026-11-01", "hasta": "2026-11-22", "formato": "json"},
        headers={"Authorization": "Bearer dev-token-osiptel"},
    ) as response:
        assert (await response.json())["rows"] == []


async def test_summary_and_operator_filter(app, operators, clock, http):
    await donor_silence_breach(app, operators, clock)
    params = {"desde": "2026-11-23", "hasta": "2026-11-23", "formato": "json"}
    async with http.get(
        "/reportes/cumplimiento-resumen", params=params, headers=REGULATOR
    ) as response:
        rows = (await response.json())["rows"]
    assert [(r["operator"], r["rule"], r["records"]) for r in rows] == [
        ("movistar", "request_donor_answer", 1)
    ]
    async with http.get(
        "/reportes/cumplimiento", params={**params, "operador": "claro"}, headers=REGULATOR
    ) as response:
        assert (await response.json())["rows"] == []


async def test_an_operator_reads_only_its_own_records(app, operators, clock, http):
    await donor_silence_breach(app, operators, clock)
    params = {"desde": "2026-11-23", "hasta": "2026-11-23", "formato": "json"}
    claro = {"Authorization": "Bearer dev-token-claro"}
    # claro asks for movistar's records: it gets its own (none), never movistar's.
    async with http.get(
        "/reportes/cumplimiento", params={**params, "operador": "movistar"}, headers=claro
    ) as response:
        document = await response.json()
    assert document["operator"] == "claro"
    assert document["rows"] == []
    async with http.get(
        "/reportes/cumplimiento",
        params=params,
        headers={"Authorization": "Bearer dev-token-movistar"},
    ) as response:
        assert len((await response.json())["rows"]) == 1


async def test_report_filter_errors_are_explained(app, http):
    async with http.get(
        "/reportes/cumplimiento",
        params={"desde": "2026-11-30", "hasta": "2026-11-01", "operador": "<b>x</b>"},
        headers=REGULATOR,
    ) as response:
        assert response.status == 400
        body = await response.text()
    assert "La fecha final no puede ser anterior a la inicial." in body
    assert "Operador desconocido." in body
    assert "<b>x</b>" not in body
    async with http.get(
        "/reportes/cumplimiento", params={"desde": "ayer"}, headers=REGULATOR
    ) as response:
        assert response.status == 400
        assert "Fecha no válida" in await response.text()
    async with http.get("/reportes/no-existe", headers=REGULATOR) as response:
        assert response.status == 404


async def test_report_cells_are_escaped(app, operators, clock, http):
    await donor_silence_breach(app, operators, clock)
    async with app.core.db.pool.acquire() as conn, conn.transaction():
        # The ledger is append-only: only its owner can step around the trigger.
        await conn.execute("ALTER TABLE compliance_records DISABLE TRIGGER USER")
        await conn.execute(
            """UPDATE compliance_records
               SET description = '<script>alert(1)</script>', case_id = '=HYPERLINK(1)'"""
        )
        await conn.execute("ALTER TABLE compliance_records ENABLE TRIGGER USER")
    params = {"desde": "2026-11-23", "hasta": "2026-11-23"}
    async with http.get("/reportes/cumplimiento", params=params, headers=REGULATOR) as response:
        body = await response.text()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    async with http.get(
        "/reportes/cumplimiento", params={**params, "formato": "csv"}, headers=REGULATOR
    ) as response:
        row = next(csv.DictReader(io.StringIO((await response.text()).lstrip("\ufeff"))))
    assert row["case_id"] == "'=HYPERLINK(1)"  # a spreadsheet shows it, never runs it


async def test_portability_requests_report(app, operators, clock, http):
    await donor_silence_breach(app, operators, clock)
    await file_request(operators, clock, number="940000056")
    async with http.get(
        "/reportes/portabilidad-solicitudes",
        params={"desde": "2026-11-23", "hasta": "2026-11-23", "formato": "json"},
        headers=REGULATOR,
    ) as response:
        rows = (await response.json())["rows"]
    assert rows == [
        {
            "recipient": "claro",
            "donor": "movistar",
            "service": "Telefonía móvil",
            "state": "Procedente",
            "requests": 1,
            "donor_silent": 1,
        },
        {
            "recipient": "claro",
            "donor": "movistar",
            "service": "Telefonía móvil",
            "state": "En evaluación",
            "requests": 1,
            "donor_silent": 0,
        },
    ]
    async with http.get("/reportes", headers={"Authorization": "Bearer dev-token-bitel"}) as r:
        listing = await r.text()
    assert "/reportes/portabilidad-solicitudes" in listing
    assert "solo sus propios registros" in listing


def test_forwarded_for_counts_only_behind_a_trusted_proxy():
    forwarded = ["198.51.100.1"]
    assert resolve_client("203.0.113.7", forwarded, frozenset()) == "203.0.113.7"
    assert resolve_client("203.0.113.7", forwarded, frozenset({"10.0.0.2"})) == "203.0.113.7"
    # The client may forge the left part; the nearest untrusted hop is who reached our proxies.
    chain = ["198.51.100.99, 198.51.100.1", "10.0.0.3"]
    assert resolve_client("10.0.0.2", chain, frozenset({"10.0.0.2", "10.0.0.3"})) == "198.51.100.1"
    assert resolve_client(None, [], frozenset()) == "unknown"


async def test_wrong_method_gets_a_spanish_page(app, http):
    async with http.put(PAGE) as response:
        assert response.status == 405
        assert "Operación no permitida" in await response.text()
        assert "GET" in response.headers["Allow"]
