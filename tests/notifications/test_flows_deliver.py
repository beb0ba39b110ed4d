"""From a flow's command to the subscriber's inbox: what the SGU and PQR flows queue is actually
delivered to a real SMTP server and a real HTTP SMS gateway, and the e-mailed link works."""

from __future__ import annotations

import re

import aiohttp
import pytest

from npc.app import Clearinghouse
from npc.flows.pqr.seed import seed_colombia
from npc.v1 import pqr_pb2, sgu_pb2
from tests.flows.pqr.conftest import Colombia, filing, user
from tests.flows.sgu.test_sgu import _call, _register
from tests.notifications.conftest import SmsSink, SmtpSink


@pytest.fixture
async def colombia(app, operators, clock) -> Colombia:
    """The Colombian demo providers with their CUN ranges."""
    await seed_colombia(app.core.db, clock.now())
    await app.authenticator.load()
    return Colombia(operators)


async def _deliver(app: Clearinghouse) -> None:
    assert app.notifications is not None
    await app.notifications.deliver_due()


async def test_the_sgu_confirmation_email_arrives_and_its_link_confirms(
    app, operators, smtp_sink: SmtpSink
):
    osiptel = operators["osiptel"]
    problem = await _call(osiptel, "RegisterProblem", _register())
    assert problem.state == sgu_pb2.PROBLEM_STATE_AWAITING_CONFIRMATION
    await _deliver(app)

    assert len(smtp_sink.received) == 1
    recipients, message = smtp_sink.received[0]
    assert recipients == ["rosa@example.pe"]
    body = message.get_content()
    assert problem.id in body
    link = re.search(r"https?://\S+/sgu/confirmar\?token=[A-Za-z0-9_-]+", body)
    assert link, body

    # The subscriber opens the link on this server and presses the button.
    path = link.group(0).split("/", 3)[3]
    base = f"http://127.0.0.1:{app.http_port}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/{path}") as page:
            assert page.status == 200
            html = await page.text()
        token = path.split("token=")[1]
        form = re.search(r'name="csrf"[^>]*value="([^"]+)"', html)
        data = {"token": token, **({"csrf": form.group(1)} if form else {})}
        async with session.post(
            f"{base}/sgu/confirmar", data=data, headers={"Origin": base}
        ) as confirmed:
            assert confirmed.status == 200, await confirmed.text()
    after = await _call(osiptel, "GetProblem", sgu_pb2.GetProblemRequest(problem_id=problem.id))
    assert after.state == sgu_pb2.PROBLEM_STATE_IN_TRAY


async def test_a_pqr_filed_without_email_sends_its_cun_by_sms(
    app, colombia: Colombia, sms_sink: SmsSink
):
    filed = await colombia["claro-co"](
        "FilePqr", filing(user=user(email="", address="Calle 26 # 13-19, Bogotá"))
    )
    await _deliver(app)
    assert len(sms_sink.received) == 1
    sms = sms_sink.received[0]
    assert sms["to"] == "3001234567"
    assert filed.cun in sms["text"]
    assert sms_sink.authorizations == ["Bearer sms-secret"]
    assert filed.state != pqr_pb2.PQR_STATE_UNSPECIFIED
