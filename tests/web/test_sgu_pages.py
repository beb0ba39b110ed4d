"""The SGU on the public site: the subscriber's status page, the page the confirmation e-mail
links to (a visit changes nothing, the button confirms), and the regulator's statistics."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlsplit

import aiohttp
import pytest

from npc.config import Settings, WebSettings
from npc.v1 import common_pb2, sgu_pb2
from tests.helpers import advance, rid
from tests.web.reporting import report_in_three_formats

PAGE = "/sgu/consulta"
CONFIRM = "/sgu/confirmar"
PUBLIC = "https://usuarios.example.pe"
GENERIC = "No encontramos un problema registrado con esos datos."
BAD_LINK = "El enlace o el código de confirmación no es válido."
REGULATOR = {"Authorization": "Basic " + base64.b64encode(b"osiptel:dev-token-osiptel").decode()}
DNI = common_pb2.IdentityDocument(type=common_pb2.DOCUMENT_TYPE_DNI, number="44556677")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The web tests' settings, with the site published at PUBLIC."""
    return replace(settings, web=replace(settings.web, public_base_url=PUBLIC))


def text_of(body: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


async def call(client, method, request):
    return await getattr(client.sgu, method)(request, metadata=client.metadata)


async def register(operators, number: str = "940000001", subcategory: str = "REC-01"):
    """A problem registered on the regulator's web: it awaits the e-mail's confirmation."""
    return await call(
        operators["osiptel"],
        "RegisterProblem",
        sgu_pb2.RegisterProblemRequest(
            request_id=rid(),
            channel=sgu_pb2.CHANNEL_WEB,
            subscriber=common_pb2.Subscriber(
                name="Rosa Quispe Mamani", document=DNI, email="rosa@example.pe"
            ),
            number=number,
            subcategory=subcategory,
            description="Recargué 10 soles el lunes y no se acreditaron.",
        ),
    )


async def confirmation_link(app, problem_id: str) -> str:
    """The link of the confirmation e-mail queued for `problem_id`."""
    async with app.core.db.pool.acquire() as conn:
        body = await conn.fetchval(
            "SELECT body FROM notifications WHERE flow = 'sgu' AND case_id = $1"
            " AND channel = 'email' ORDER BY id LIMIT 1",
            problem_id,
        )
    found = re.search(r"https?://\S+", body)
    assert found, body
    return found.group(0)


async def state_of(app, problem_id: str) -> str:
    async with app.core.db.pool.acquire() as conn:
        return await conn.fetchval("SELECT state FROM sgu_problems WHERE id = $1", problem_id)


async def lookup(http: aiohttp.ClientSession, code: str, document: str) -> tuple[int, str]:
    async with http.post(PAGE, data={"codigo": code, "documento": document}) as response:
        return response.status, await response.text()


async def confirm_by_link(http: aiohttp.ClientSession, link: str) -> str:
    """Open the e-mail's link on the server under test and press the button."""
    parts = urlsplit(link)
    async with http.get(f"{parts.path}?{parts.query}") as response:
        assert response.status == 200
        page = await response.text()
    token = re.search(r'<input type="hidden" name="token" value="([^"]+)">', page)
    assert token
    async with http.post(CONFIRM, data={"token": token.group(1)}) as response:
        assert response.status == 200
        return await response.text()


async def test_the_confirmation_email_links_to_the_public_page(app, operators, http):
    problem = await register(operators)
    link = await confirmation_link(app, problem.id)
    assert link.startswith(f"{PUBLIC}{CONFIRM}?token=")
    token = link.split("token=", 1)[1]

    # Opening the link (mail scanners and previews do it too) shows a button and changes nothing.
    for _ in range(2):
        async with http.get(f"{CONFIRM}?token={token}") as response:
            assert response.status == 200
            assert response.headers["Cache-Control"] == "no-store"
            page = await response.text()
    assert "Confirmar mi correo" in page
    assert f'<input type="hidden" name="token" value="{token}">' in page
    assert 'method="post"' in page
    assert await state_of(app, problem.id) == "awaiting_confirmation"

    async with http.post(CONFIRM, data={"token": token}) as response:
        assert response.status == 200
        done = text_of(await response.text())
    assert await state_of(app, problem.id) == "in_tray"
    assert f"Problema {problem.id}" in done
    assert "Estado: En atención por su empresa operadora" in done
    assert "Gracias: su correo electrónico está confirmado." in done
    assert "Telefónica del Perú (Movistar)" in done

    # A second press is harmless: the status again, the problem untouched.
    async with http.post(CONFIRM, data={"token": token}) as response:
        assert "Estado: En atención por su empresa operadora" in text_of(await response.text())
    assert await state_of(app, problem.id) == "in_tray"


async def test_the_code_can_be_typed_and_a_wrong_one_is_explained(app, operators, http):
    problem = await register(operators)
    async with http.get(CONFIRM) as response:
        page = await response.text()
    assert '<label for="campo-token">Código de confirmación</label>' in page
    async with http.post(CONFIRM, data={"token": "A" * 32}) as response:
        assert response.status == 200
        assert BAD_LINK in await response.text()
    async with http.post(CONFIRM, data={"token": '"><script>x</script>'}) as response:
        assert response.status == 400
        body = await response.text()
    assert BAD_LINK in body and "<script>x" not in body
    async with http.post(
        CONFIRM, data={"token": "A" * 32}, headers={"Origin": "http://evil.example"}
    ) as response:
        assert response.status == 403
    assert await state_of(app, problem.id) == "awaiting_confirmation"

    link = await confirmation_link(app, problem.id)
    token = link.split("token=", 1)[1]
    async with http.post(CONFIRM, data={"token": f" {token} "}) as response:  # pasted with spaces
        assert "está confirmado" in await response.text()
    assert await state_of(app, problem.id) == "in_tray"


async def test_a_link_opened_after_72_hours_says_the_registration_expired(
    app, operators, clock, http
):
    problem = await register(operators)
    link = await confirmation_link(app, problem.id)
    await advance(app, clock, timedelta(hours=72))
    page = text_of(await confirm_by_link(http, link))
    assert "Estado: Registro vencido" in page
    assert "está confirmado" not in page
    assert await state_of(app, problem.id) == "expired"


async def test_status_page_follows_the_problem(app, operators, clock, http):
    problem = await register(operators)
    status, body = await lookup(http, problem.id, "44556677")
    assert status == 200
    page = text_of(body)
    assert "Estado: Pendiente de confirmar su correo" in page
    assert "******001" in page and "940000001" not in page
    assert "Recarga no acreditada (REC-01)" in page
    assert "Registrado lunes 23 de noviembre de 2026, 10:00" in page

    await confirm_by_link(http, await confirmation_link(app, problem.id))
    page = text_of((await lookup(http, problem.id.lower(), "4455 6677"))[1])
    assert "Estado: En atención por su empresa operadora" in page
    assert "Plazo de respuesta martes 24 de noviembre de 2026, 10:00" in page  # 24 hours

    await call(
        operators["movistar"],
        "AnswerProblem",
        sgu_pb2.AnswerProblemRequest(
            request_id=rid(), problem_id=problem.id, answer="Se acreditó <b>hoy</b>.", solved=True
        ),
    )
    status, body = await lookup(http, problem.id, "44556677")
    page = text_of(body)
    assert "Estado: Respondido" in page
    assert "Respuesta de la empresa" in page
    assert "Se acreditó &lt;b&gt;hoy&lt;/b&gt;." in body and "<b>hoy" not in body
    assert "Plazo de respuesta" not in page

    await call(
        operators["osiptel"],
        "RateAnswer",
        sgu_pb2.RateAnswerRequest(
            request_id=rid(), problem_id=problem.id, document=DNI, satisfied=False, score=2
        ),
    )
    await advance(app, clock, timedelta(minutes=1))  # a new window of the lookup limit
    page = text_of((await lookup(http, problem.id, "44556677"))[1])
    assert "Estado: Respondido, sin su conformidad" in page
    assert "Puede convertir su problema en reclamo." in page
    assert "Su calificación 2 de 5, no satisfecho" in page

    await call(
        operators["osiptel"],
        "EscalateToClaim",
        sgu_pb2.EscalateToClaimRequest(request_id=rid(), problem_id=problem.id, document=DNI),
    )
    await call(
        operators["movistar"],
        "AssignClaimCode",
        sgu_pb2.AssignClaimCodeRequest(
            request_id=rid(), problem_id=problem.id, claim_code="MOV-2026-0001"
        ),
    )
    page = text_of((await lookup(http, problem.id, "44556677"))[1])
    assert "Estado: Reclamo registrado" in page
    assert "Código de reclamo MOV-2026-0001" in page
    # 3 business days from Monday 23 November: Tuesday, Wednesday and Thursday.
    assert "Plazo para resolver el reclamo jueves 26 de noviembre de 2026" in page


async def test_wrong_code_and_wrong_document_get_the_same_answer(app, operators, http):
    problem = await register(operators)
    other = f"SG{int(problem.id[2:]) + 1:010d}"
    wrong_document = await lookup(http, problem.id, "87654321")
    wrong_code = await lookup(http, other, "44556677")
    assert wrong_document[0] == wrong_code[0] == 200
    assert GENERIC in wrong_document[1]
    assert wrong_document[1].replace(problem.id, "C").replace("87654321", "D") == wrong_code[
        1
    ].replace(other, "C").replace("44556677", "D")
    assert "Pendiente de confirmar" not in wrong_document[1]

    status, body = await lookup(http, "SP0000000001", "44556677")  # a portability code
    assert status == 400
    assert "las letras SG seguidas de 10 dígitos" in text_of(body)


async def test_home_page_and_navigation_offer_the_sgu_page(app, http):
    async with http.get("/") as response:
        body = await response.text()
    assert f'href="{PAGE}"' in body
    assert "Consulte el estado de su problema (SGU)" in body
    assert f'href="{CONFIRM}' not in body  # reached from the e-mail only


def test_public_base_url_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("NPC_PUBLIC_BASE_URL", "https://portabilidad.example.pe/")
    assert WebSettings.from_env().public_base_url == "https://portabilidad.example.pe"
    monkeypatch.delenv("NPC_PUBLIC_BASE_URL")
    assert WebSettings.from_env().public_base_url == "http://localhost:8080"


async def statistics(app, operators, clock):
    """Four confirmed problems (three of Movistar, one of Claro), answered and rated over a day;
    one more never confirmed."""
    osiptel, movistar, claro = operators["osiptel"], operators["movistar"], operators["claro"]
    problems = []
    for number, subcategory in (
        ("940000001", "REC-01"),
        ("940000002", "REC-01"),
        ("940000003", "SUS-01"),
        ("910000001", "REC-01"),
    ):
        problem = await register(operators, number, subcategory)
        link = await confirmation_link(app, problem.id)
        await call(
            osiptel,
            "ConfirmEmail",
            sgu_pb2.ConfirmEmailRequest(request_id=rid(), token=link.split("token=", 1)[1]),
        )
        problems.append(problem)
    a, b, c, d = problems
    await register(operators, "960000001")

    async def answer(client, problem, satisfied, score):
        await call(
            client,
            "AnswerProblem",
            sgu_pb2.AnswerProblemRequest(
                request_id=rid(), problem_id=problem.id, answer="Atendido.", solved=True
            ),
        )
        await call(
            osiptel,
            "RateAnswer",
            sgu_pb2.RateAnswerRequest(
                request_id=rid(),
                problem_id=problem.id,
                document=DNI,
                satisfied=satisfied,
                score=score,
            ),
        )

    await advance(app, clock, timedelta(hours=2))
    await answer(movistar, a, True, 5)
    await advance(app, clock, timedelta(hours=4))
    await answer(movistar, b, False, 2)
    await answer(claro, d, True, 4)
    await advance(app, clock, timedelta(hours=20))  # c is overdue
    return problems


PERIOD = {"desde": "2026-11-23", "hasta": "2026-11-24"}


async def test_sgu_statistics_in_html_csv_and_json(app, operators, clock, http):
    await statistics(app, operators, clock)

    _, rows = await report_in_three_formats(http, "sgu-problemas-frecuentes", PERIOD, REGULATOR)
    assert rows == [
        {"subcategory": "REC-01", "problem": "Recarga no acreditada", "problems": 3},
        {"subcategory": "SUS-01", "problem": "Línea suspendida sin motivo", "problems": 1},
    ]
    _, rows = await report_in_three_formats(http, "sgu-tiempos-respuesta", PERIOD, REGULATOR)
    assert rows == [
        {
            "subcategory": "REC-01",
            "problem": "Recarga no acreditada",
            "answered": 3,
            "average_hours": round((2 + 6 + 6) / 3, 1),
            "max_hours": 6.0,
        }
    ]
    _, rows = await report_in_three_formats(http, "sgu-operadores", PERIOD, REGULATOR)
    assert rows == [
        {
            "operator": "movistar",
            "problems": 3,
            "answered_in_time": 2,
            "answered_late": 0,
            "unanswered_overdue": 1,
            "claims": 0,
        },
        {
            "operator": "claro",
            "problems": 1,
            "answered_in_time": 1,
            "answered_late": 0,
            "unanswered_overdue": 0,
            "claims": 0,
        },
    ]
    _, rows = await report_in_three_formats(http, "sgu-satisfaccion", PERIOD, REGULATOR)
    assert rows == [
        {
            "operator": "claro",
            "rated": 1,
            "satisfied": 1,
            "satisfied_pct": 100.0,
            "average_score": 4.0,
        },
        {
            "operator": "movistar",
            "rated": 2,
            "satisfied": 1,
            "satisfied_pct": 50.0,
            "average_score": 3.5,
        },
    ]

    # The period is in Lima's calendar: the next day holds nothing.
    _, rows = await report_in_three_formats(
        http, "sgu-operadores", {"desde": "2026-11-24", "hasta": "2026-11-24"}, REGULATOR
    )
    assert rows == []


async def test_the_regulator_filters_the_statistics_by_operator(app, operators, clock, http):
    await statistics(app, operators, clock)
    claro = {**PERIOD, "operador": "claro"}
    _, rows = await report_in_three_formats(http, "sgu-problemas-frecuentes", claro, REGULATOR)
    assert rows == [{"subcategory": "REC-01", "problem": "Recarga no acreditada", "problems": 1}]
    _, rows = await report_in_three_formats(http, "sgu-tiempos-respuesta", claro, REGULATOR)
    assert [(r["answered"], r["max_hours"]) for r in rows] == [(1, 6.0)]
    _, rows = await report_in_three_formats(http, "sgu-operadores", claro, REGULATOR)
    assert [r["operator"] for r in rows] == ["claro"]
    _, rows = await report_in_three_formats(http, "sgu-satisfaccion", claro, REGULATOR)
    assert [r["operator"] for r in rows] == ["claro"]


@pytest.mark.parametrize(
    "slug",
    ["sgu-problemas-frecuentes", "sgu-tiempos-respuesta", "sgu-operadores", "sgu-satisfaccion"],
)
@pytest.mark.asyncio(loop_scope="module")  # reads only: one clearinghouse for every page
async def test_sgu_statistics_are_the_regulators(module_http, slug):
    http = module_http
    movistar = {"Authorization": "Bearer dev-token-movistar"}
    async with http.get(f"/reportes/{slug}", headers=movistar) as response:
        assert response.status == 404
    async with http.get("/reportes", headers=movistar) as response:
        assert f"/reportes/{slug}" not in await response.text()
    async with http.get("/reportes", headers=REGULATOR) as response:
        assert f"/reportes/{slug}" in await response.text()
