"""Caller identification. Each operator presents its API token (``authorization: Bearer …``);
the clearinghouse stores only its SHA-256 digest. The identity it establishes, `Caller`, is the
core's (`npc.core.identity`): flows read it without depending on the transport."""

from __future__ import annotations

import contextvars
import functools
import time

from cryptography import x509
from cryptography.x509.oid import NameOID

from npc.core.errors import Unauthenticated
from npc.core.identity import Caller
from npc.store import operators
from npc.store.database import Database
from npc.store.operators import token_digest

CURRENT_CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar("npc_caller")


def current_caller() -> Caller:
    """The caller of the RPC being served."""
    return CURRENT_CALLER.get()


@functools.lru_cache(maxsize=1024)
def _common_name_count(pem: bytes) -> int:
    """How many common names the subject of the certificate `pem` holds (0 if unreadable)."""
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return 0
    return len(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME))


class TokenAuthenticator:
    """Maps API tokens to operators, cached in memory and refreshed on unknown tokens."""

    def __init__(self, db: Database, *, refresh_seconds: float = 2.0) -> None:
        self.db = db
        self.refresh_seconds = refresh_seconds
        self._by_digest: dict[bytes, Caller] = {}
        self._by_id: dict[str, Caller] = {}
        self._loaded_at = 0.0

    async def load(self) -> None:
        """Reload the token table."""
        async with self.db.pool.acquire() as conn:
            everyone = await operators.registered(conn)
        self._by_digest = {
            r.token_sha256: Caller(r.id, r.role, r.country)
            for r in everyone
            if r.token_sha256 is not None
        }
        self._by_id = {r.id: Caller(r.id, r.role, r.country) for r in everyone}
        self._loaded_at = time.monotonic()

    async def authenticate_certificate(
        self, common_names: list[bytes] | None, pem: bytes | None = None
    ) -> Caller:
        """The caller whose verified client certificate carries `common_names` (mutual TLS).

        The TLS layer already checked the certificate against the operators' CA; its common name
        must be a registered operator (or the regulator). grpc reports only one common name of a
        subject that has several, so the certificate itself (`pem`) is read: a subject naming
        two operators identifies neither.
        """
        if not common_names:
            raise Unauthenticated("a client certificate with a common name is required")
        if pem is not None and _common_name_count(pem) != 1:
            raise Unauthenticated("a client certificate must carry exactly one common name")
        name = common_names[0].decode(errors="replace")
        caller = self._by_id.get(name)
        if caller is None and time.monotonic() - self._loaded_at > self.refresh_seconds:
            await self.load()
            caller = self._by_id.get(name)
        if caller is None:
            raise Unauthenticated(f"no operator {name!r} is registered for this certificate")
        return caller

    async def authenticate(self, metadata: tuple[tuple[str, str | bytes], ...] | None) -> Caller:
        """The caller presenting `metadata`, or Unauthenticated."""
        token = ""
        for key, value in metadata or ():
            if key == "authorization":
                text = value.decode() if isinstance(value, bytes) else value
                scheme, _, credential = text.partition(" ")
                if scheme.lower() == "bearer":
                    token = credential.strip()
        if not token:
            raise Unauthenticated("missing 'authorization: Bearer <token>' metadata")
        digest = token_digest(token)
        caller = self._by_digest.get(digest)
        if caller is None and time.monotonic() - self._loaded_at > self.refresh_seconds:
            await self.load()
            caller = self._by_digest.get(digest)
        if caller is None:
            raise Unauthenticated("unknown API token")
        return caller
