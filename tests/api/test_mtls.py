"""Mutual TLS: the operator is who its client certificate says, nobody without a certificate from
the operators' CA gets in, and bearer tokens mean nothing on a TLS server."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from npc.api.tls import CA_CERT, issue_certificate, make_ca
from npc.app import Clearinghouse
from npc.v1 import portability_pb2 as pb
from npc_clients import OperatorClient
from tests.helpers import port_request, rid, run_npc, running, stream_head


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA with the server's certificate and certificates for claro, movistar, the regulator
    and an unregistered name; plus a rogue CA that issued a 'claro' certificate."""
    ca = tmp_path_factory.mktemp("pki")
    make_ca(ca)
    issue_certificate(ca, "server", server_hosts=["127.0.0.1", "localhost"])
    for name in ("claro", "movistar", "osiptel", "mallory"):
        issue_certificate(ca, name)
    rogue = ca / "rogue"
    make_ca(rogue, "someone else's CA")
    issue_certificate(rogue, "claro")
    return ca


@pytest.fixture
async def tls_app(settings, clock, pki: Path) -> AsyncIterator[Clearinghouse]:
    tls = replace(
        settings,
        tls_cert=str(pki / "server.crt"),
        tls_key=str(pki / "server.key"),
        tls_client_ca=str(pki / CA_CERT),
    )
    async with running(tls, clock, serve_http=False) as house:
        yield house


def _client(app: Clearinghouse, pki: Path, name: str, ca_dir: Path | None = None) -> OperatorClient:
    where = ca_dir or pki
    return OperatorClient.with_certificate(
        f"127.0.0.1:{app.grpc_port}",
        where / f"{name}.crt",
        where / f"{name}.key",
        pki / CA_CERT,  # the server is always verified against the real CA
        operator=name,
    )


async def test_the_certificate_is_the_identity(tls_app, pki, clock):
    async with (
        _client(tls_app, pki, "claro") as claro,
        _client(tls_app, pki, "movistar") as movistar,
    ):
        filed = await claro.call("SubmitPortRequest", port_request(clock, donor="movistar"))
        assert filed.recipient == "claro"
        # movistar is the donor: it may answer; claro, the recipient, may not.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await claro.call(
                "AnswerPortRequest",
                pb.AnswerPortRequestRequest(
                    request_id=rid(), port_request_id=filed.id, accept=True
                ),
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        answered = await movistar.call(
            "AnswerPortRequest",
            pb.AnswerPortRequestRequest(request_id=rid(), port_request_id=filed.id, accept=True),
        )
        assert answered.id == filed.id


async def test_a_token_on_a_tls_server_changes_nobody(tls_app, pki, clock):
    """claro's certificate with movistar's token still acts as claro."""
    async with _client(tls_app, pki, "claro") as claro:
        filed = await claro.portability.SubmitPortRequest(
            port_request(clock, donor="movistar"),
            metadata=(("authorization", "Bearer dev-token-movistar"),),
            timeout=5,
        )
        assert filed.recipient == "claro"


async def test_the_regulator_certificate_is_read_only(tls_app, pki, clock):
    async with _client(tls_app, pki, "osiptel") as osiptel:
        assert await stream_head(osiptel) >= 1
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await osiptel.call("SubmitPortRequest", port_request(clock, donor="movistar"))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_an_unregistered_name_is_unauthenticated(tls_app, pki):
    async with _client(tls_app, pki, "mallory") as mallory:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream_head(mallory)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _issue_with_two_names(ca: Path, first: str, second: str) -> str:
    """A client certificate from the real CA whose subject holds two common names."""
    ca_key = serialization.load_pem_private_key((ca / "ca.key").read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate((ca / CA_CERT).read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, first),
            x509.NameAttribute(NameOID.COMMON_NAME, second),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    name = f"{first}+{second}"
    (ca / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (ca / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return name


async def test_a_certificate_naming_two_operators_identifies_neither(tls_app, pki):
    for first, second in (("claro", "movistar"), ("movistar", "claro")):
        name = _issue_with_two_names(pki, first, second)
        async with _client(tls_app, pki, name) as ambiguous:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stream_head(ambiguous)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    async with _client(tls_app, pki, "claro") as claro:  # one name is still the identity
        assert await stream_head(claro) >= 0


async def test_no_certificate_or_a_rogue_ca_never_gets_in(tls_app, pki):
    credentials = grpc.ssl_channel_credentials(root_certificates=(pki / CA_CERT).read_bytes())
    async with OperatorClient(
        f"127.0.0.1:{tls_app.grpc_port}", "dev-token-claro", credentials=credentials
    ) as anonymous:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream_head(anonymous)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # the handshake fails
    async with _client(tls_app, pki, "claro", ca_dir=pki / "rogue") as impostor:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream_head(impostor)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    async with OperatorClient(f"127.0.0.1:{tls_app.grpc_port}", "dev-token-claro") as plain:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream_head(plain)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert await _count_requests(tls_app) == 0


async def _count_requests(app: Clearinghouse) -> int:
    assert app.core is not None
    async with app.core.db.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM port_requests"))


async def test_npc_admin_makes_a_ca_and_certificates(tmp_path):
    made = await run_npc("admin", "make-ca", str(tmp_path / "ca"))
    assert made.returncode == 0, made.stderr
    again = await run_npc("admin", "make-ca", str(tmp_path / "ca"))
    assert again.returncode == 1  # never replaces a CA
    issued = await run_npc("admin", "issue-cert", str(tmp_path / "ca"), "entel")
    assert issued.returncode == 0, issued.stderr
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_pem_x509_certificate((tmp_path / "ca" / "entel.crt").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "entel"


async def test_npc_serve_refuses_plain_tokens_outside_dev_mode(database_url, redis_server):
    env = {"NPC_DATABASE_URL": database_url, "NPC_REDIS_URL": redis_server.url}
    done = await run_npc("serve", env=env)
    assert done.returncode == 2
    assert "NPC_TLS_CERT" in done.stderr and "NPC_DEV_MODE" in done.stderr
