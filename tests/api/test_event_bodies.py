"""Typed event bodies: every event type the server can emit has a converter (and every converter
a type the server emits), checked on the sources; and driving the flows end to end, every
streamed event carries its body with integers as integers, states as enums, instants as
Timestamps and calendar dates as google.type.Dates, rebuilt from the JSON the log stores."""

from __future__ import annotations

import ast
import collections
import itertools
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from npc.api.event_bodies import BODIES, event_message
from npc.core.events import LoggedEvent
from npc.flows.cancellations.handler import register_reporting_operator
from npc.flows.registry.importer import import_ported
from npc.v1 import (
    cancellations_pb2,
    common_pb2,
    events_pb2,
    inoperability_pb2,
    portability_pb2,
    pqr_pb2,
    registry_pb2,
    sgu_pb2,
    suspension_pb2,
)
from tests.flows.pqr.conftest import co, filing, new_provider  # noqa: F401  (the `co` fixture)
from tests.helpers import (
    advance,
    advance_to,
    block,
    collect,
    day,
    head,
    port_end_to_end,
    rid,
    settle,
    ts,
)

SERVER = Path(__file__).resolve().parents[2] / "server" / "npc"
EMITTERS = ("emit", "_emit")

# ------------------------------------------------------------------------ the static check


def _sources() -> dict[Path, str]:
    """The flows' and the core's modules: where events are emitted."""
    paths = [*(SERVER / "flows").rglob("*.py"), *(SERVER / "core").rglob("*.py")]
    return {path: path.read_text() for path in paths}


_CONSTANT = re.compile(r'^([A-Z][A-Z0-9_]*)(?:: [A-Za-z]+)? = "([^"]*)"$', re.MULTILINE)


def _constants(sources: dict[Path, str]) -> dict[str, str]:
    """Module-level NAME = "a.b" string constants (the event type constants)."""
    return {name: value for text in sources.values() for name, value in _CONSTANT.findall(text)}


def _emitter(call: ast.Call) -> str | None:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name in EMITTERS or (name or "").startswith("emit_"):
        return name
    return None


class _Resolver:
    """The string values an expression can take inside one function, as far as the source says
    (literals, constants, conditionals, f-strings, unpacking of literal tuples)."""

    def __init__(self, function: ast.AST, constants: dict[str, str]) -> None:
        self.function = function
        self.constants = constants

    def values(self, node: ast.AST) -> set[str] | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.IfExp):
            a, b = self.values(node.body), self.values(node.orelse)
            return None if a is None or b is None else a | b
        if isinstance(node, ast.JoinedStr):
            parts: list[set[str]] = []
            for value in node.values:
                got = self.values(value.value if isinstance(value, ast.FormattedValue) else value)
                if got is None:
                    return None
                parts.append(got)
            return {"".join(p) for p in itertools.product(*parts)}
        if isinstance(node, ast.Name):
            local = self._assigned(node.id)
            if local is not None:
                return local
            if node.id in self.constants:
                return {self.constants[node.id]}
            return None
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            index = node.slice
            if isinstance(index, ast.Constant) and isinstance(index.value, int):
                return self._unpacked(node.value.id, index.value)
        return None

    def _rows(self, node: ast.AST) -> list[ast.AST] | None:
        """The literal tuples an expression stands for (a tuple of tuples, a conditional of
        tuples, a dict's values, an item of a dict of tuples)."""
        if isinstance(node, (ast.Tuple, ast.List)):
            return list(node.elts)
        if isinstance(node, ast.IfExp):
            return [node.body, node.orelse]
        if isinstance(node, ast.Dict):
            return list(node.values)
        return None

    def _unpacked(self, name: str, index: int) -> set[str] | None:
        for node in ast.walk(self.function):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets
            ):
                return self._pick(self._rows(node.value), index)
        return None

    def _pick(self, rows: list[ast.AST] | None, index: int) -> set[str] | None:
        if rows is None:
            return None
        found: set[str] = set()
        for row in rows:
            if not isinstance(row, ast.Tuple) or index >= len(row.elts):
                return None
            got = self.values(row.elts[index])
            if got is None:
                return None
            found |= got
        return found

    def _assigned(self, name: str) -> set[str] | None:
        for node in ast.walk(self.function):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id == name:
                        return self.values(node.value)
                    if isinstance(target, ast.Tuple):
                        names = [getattr(e, "id", None) for e in target.elts]
                        if name in names and isinstance(node.value, ast.Subscript):
                            container = node.value.value
                            if isinstance(container, ast.Name):
                                return self._from_container(container.id, names.index(name))
            if isinstance(node, ast.For) and isinstance(node.target, ast.Tuple):
                names = [getattr(e, "id", None) for e in node.target.elts]
                if name in names:
                    return self._pick(self._rows(node.iter), names.index(name))
        return None

    def _from_container(self, container: str, index: int) -> set[str] | None:
        for node in ast.walk(self.function):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == container for t in node.targets
            ):
                return self._pick(self._rows(node.value), index)
        return None


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def emitted_types() -> tuple[set[str], list[str]]:
    """(every event type the server's flows and core can emit, the call sites it cannot tell)."""
    sources = _sources()
    constants = _constants(sources)
    trees = {path: ast.parse(text) for path, text in sources.items() if "emit" in text}
    # Helpers that pass one of their parameters (maybe inside an f-string) as txn.emit's type:
    # name -> (the parameter's index in a call, its name, the type expression), per module and,
    # for the shared emit_* helpers, by name alone.
    local: dict[tuple[Path, str], tuple[int, str, ast.AST]] = {}
    shared: dict[str, tuple[int, str, ast.AST]] = {}
    package: dict[tuple[Path, str], tuple[int, str, ast.AST]] = {}
    for path, tree in trees.items():
        for function in _functions(tree):
            params = [a.arg for a in function.args.args if a.arg not in ("self", "txn")]
            for call in ast.walk(function):
                if not (isinstance(call, ast.Call) and _emitter(call) == "emit"):
                    continue
                kind = call.args[1]
                used = {n.id for n in ast.walk(kind) if isinstance(n, ast.Name)}
                for index, param in enumerate(params):
                    if param in used:
                        entry: tuple[int, str, ast.AST] = (index + 1, param, kind)  # after txn
                        local[(path, function.name)] = entry
                        # A flow's sub-process modules call the helpers of its base module.
                        package[(path.parent, function.name)] = entry
                        if function.name.startswith("emit_"):
                            shared[function.name] = entry
    found: set[str] = set()
    unresolved: list[str] = []
    for path, tree in trees.items():
        for function in _functions(tree):
            if (path, function.name) in local:
                continue  # its type is its callers'
            resolver = _Resolver(function, constants)
            for call in ast.walk(function):
                if not isinstance(call, ast.Call):
                    continue
                name = _emitter(call)
                if name is None:
                    continue
                helper = (
                    local.get((path, name)) or package.get((path.parent, name)) or shared.get(name)
                )
                values: set[str] | None
                if name == "emit":
                    values = resolver.values(call.args[1])
                elif helper is not None:
                    index, param, template = helper
                    args = resolver.values(call.args[index]) if index < len(call.args) else None
                    values = None if args is None else set()
                    for arg in args or ():
                        got = _Resolver(template, {**constants, param: arg}).values(template)
                        if got is None or values is None:
                            values = None
                            break
                        values |= got
                else:
                    continue  # a helper that emits a type of its own: found in its body
                if values is None:
                    unresolved.append(f"{path.relative_to(SERVER)}:{call.lineno}")
                else:
                    found |= values
    return found, unresolved


def test_every_type_the_server_emits_has_a_body_and_every_body_a_type() -> None:
    emitted, unresolved = emitted_types()
    assert not unresolved, f"emit calls whose type the check cannot read: {unresolved}"
    # Sanity: the scan sees the families it must (f-strings, helpers, constants, unpacking).
    assert {
        "portability.request.executed",
        "portability.consultation.admissible",
        "portability.consultation.rejected",
        "registry.return.donor_confirmed",
        "pqr.sms_call_unanswered",
        "sgu.claim.code_assigned",
        "registry.imported",
        "audit.anchored",
        "compliance.recorded",
    } <= emitted
    assert sorted(emitted - set(BODIES)) == [], "event types without a typed body"
    assert sorted(set(BODIES) - emitted) == [], "converters of types the server never emits"


def test_every_body_field_has_its_message() -> None:
    body = events_pb2.Event.DESCRIPTOR.oneofs_by_name["body"]
    fields = {f.name for f in body.fields}
    assert {field for field, _ in BODIES.values()} == fields
    assert "payload" not in events_pb2.Event.DESCRIPTOR.fields_by_name


# -------------------------------------------------------------------------- end to end

ENUM_KEYS = {
    "state",
    "service",
    "kind",
    "subject",
    "severity",
    "reason",
    "scenario",
    "request_type",
    "closing_reason",
    "channel",
    "modality",
    "stage",
    "outcome",
}


# Messages that are one value, not a record of facts.
WELL_KNOWN = ("google.protobuf.Timestamp", "google.type.Date")
CALENDAR_DATE = re.compile(r"(?a)\d{4}-\d{2}-\d{2}")


def _walk(message: Message) -> Iterator[tuple[FieldDescriptor, Any]]:
    """Every set field of a message and of its sub-messages, repeated ones item by item."""
    for field, value in message.ListFields():
        items = value if field.is_repeated else [value]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            continue
        for item in items:
            yield field, item
            if (
                field.type == FieldDescriptor.TYPE_MESSAGE
                and field.message_type is not None
                and field.message_type.full_name not in WELL_KNOWN
            ):
                yield from _walk(item)


def _facts(payload: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """(key, value) of every scalar of a stored payload, nested ones included (not evidence,
    which the body keeps as text)."""
    if isinstance(payload, dict):
        for name, value in payload.items():
            if name != "evidence":
                yield from _facts(value, name)
    elif isinstance(payload, list):
        for item in payload:
            yield from _facts(item, key)
    else:
        yield key, payload


def _is_instant(value: Any) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


# Payload keys whose body field has another name.
ALIASES = {
    "outage_id": ("id",),
    "answer_due": ("answer_deadline", "reconsideration_deadline"),
    "effects_due": ("silence_effects_deadline",),
    "outcome": ("outcome", "reconsideration_outcome", "appeal_outcome"),
}


def check_body(event: events_pb2.Event, payload: dict[str, Any]) -> None:
    """The body is the one of its type, and holds every fact of the stored payload typed, in
    the field of its name: each whole number in an integer field, each state or kind in an
    enum, each instant in a Timestamp, each YYYY-MM-DD date in a google.type.Date."""
    field, _ = BODIES[event.type]
    assert event.WhichOneof("body") == field, event.type
    facts: dict[str, set[Any]] = collections.defaultdict(set)
    for descriptor, value in _walk(getattr(event, field)):
        if descriptor.type == FieldDescriptor.TYPE_ENUM:
            enum = descriptor.enum_type
            assert enum is not None
            prefix = enum.values_by_number[0].name.removesuffix("UNSPECIFIED")
            facts[descriptor.name].add(enum.values_by_number[value].name[len(prefix) :].lower())
        elif descriptor.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64):
            assert isinstance(value, int)
            facts[descriptor.name].add(value)
        elif descriptor.message_type is not None and (
            descriptor.message_type.full_name == "google.protobuf.Timestamp"
        ):
            facts[descriptor.name].add(value.ToDatetime(tzinfo=UTC))
        elif descriptor.message_type is not None and (
            descriptor.message_type.full_name == "google.type.Date"
        ):
            facts[descriptor.name].add(date(value.year, value.month, value.day))
    for key, value in _facts(payload):
        where = f"{event.type} {key}={value!r}"
        held = set().union(*(facts[name] for name in (key, *ALIASES.get(key, ()))))
        if isinstance(value, bool) or value is None or value == 0:
            continue  # proto3 leaves false, zero and absent unset alike
        if (
            isinstance(value, int)
            or key in ENUM_KEYS
            and isinstance(value, str)
            and value.isidentifier()
        ):
            assert value in held, where
        elif _is_instant(value):
            assert datetime.fromisoformat(value) in held, where
        elif isinstance(value, str) and CALENDAR_DATE.fullmatch(value):
            assert date.fromisoformat(value) in held, where


async def _stored(app) -> dict[int, dict[str, Any]]:
    async with app.core.db.pool.acquire() as conn:
        rows = await conn.fetch("SELECT position, payload FROM events WHERE position IS NOT NULL")
    return {r["position"]: r["payload"] for r in rows}


async def test_every_streamed_event_carries_its_typed_body(app, operators, clock, co, tmp_path):  # noqa: F811
    claro, movistar, osiptel = operators["claro"], operators["movistar"], operators["osiptel"]
    start = clock.now()  # Monday 23 November 2026, 10:00 Lima

    # Registry: a bulk import of ported numbers.
    ported_csv = tmp_path / "ported.csv"
    ported_csv.write_text(
        "number,serving_operator,ported_at\n910000001,movistar,2025-06-30T12:00Z\n"
    )
    await import_ported(app.core.db, ported_csv, now=start)

    # Cancellations: claro's daily report.
    await register_reporting_operator(
        app.core.db,
        app.settings.cancellations,
        operator="claro",
        since=(start - timedelta(days=1)).date(),
        subscribers=1_000_000,
        now=start,
    )
    await claro.cancellations.SubmitDailyReport(
        cancellations_pb2.SubmitDailyReportRequest(
            request_id=rid(),
            report_date=day((start - timedelta(days=1)).date()),
            records=[
                cancellations_pb2.RequestRecord(
                    request_code="BJ-0001",
                    kind=cancellations_pb2.REQUEST_KIND_CANCELLATION,
                    service=cancellations_pb2.TRACKED_SERVICE_MOBILE_TELEPHONY,
                    channel=cancellations_pb2.ATTENTION_CHANNEL_STORE,
                    requested_at=ts(start - timedelta(days=1)),
                    subscriber_document=common_pb2.IdentityDocument(
                        type=common_pb2.DOCUMENT_TYPE_DNI, number="44556677"
                    ),
                    service_number="910000001",
                    service_status=cancellations_pb2.SERVICE_STATUS_ACTIVE,
                    scheduled_date=day((start + timedelta(days=2)).date()),
                    state=cancellations_pb2.TRACKED_REQUEST_STATE_PENDING,
                )
            ],
        ),
        metadata=claro.metadata,
    )

    # Inoperability: claro's attention point fails, recovers, and the event is reported.
    await claro.inoperability.RegisterAttentionPoint(
        inoperability_pb2.RegisterAttentionPointRequest(
            request_id=rid(),
            code="CAC-LIMA-01",
            name="Punto CAC-LIMA-01",
            type=inoperability_pb2.ATTENTION_POINT_TYPE_STORE,
            address="Av. Javier Prado Este 123",
            location="San Isidro, Lima, Lima",
        ),
        metadata=claro.metadata,
    )
    failure = await claro.inoperability.RegisterInoperability(
        inoperability_pb2.RegisterInoperabilityRequest(
            request_id=rid(),
            attention_point_code="CAC-LIMA-01",
            request_type=inoperability_pb2.REQUEST_TYPE_CLAIMS,
            scenario=inoperability_pb2.SCENARIO_MASS_FAILURE,
            started_at=ts(start - timedelta(hours=1)),
            detail="SIAC sin respuesta",
        ),
        metadata=claro.metadata,
    )
    await claro.inoperability.CloseInoperability(
        inoperability_pb2.CloseInoperabilityRequest(
            request_id=rid(),
            number=failure.number,
            ended_at=ts(start - timedelta(minutes=10)),
            closing_reason=inoperability_pb2.CLOSING_REASON_MASS_APPLICATION_FAILURE,
        ),
        metadata=claro.metadata,
    )
    await claro.inoperability.SubmitInoperabilityReport(
        inoperability_pb2.SubmitInoperabilityReportRequest(
            request_id=rid(), numbers=[failure.number]
        ),
        metadata=claro.metadata,
    )

    # SGU: a problem registered at an office goes to movistar's tray and is answered; an outage.
    problem = await osiptel.sgu.RegisterProblem(
        sgu_pb2.RegisterProblemRequest(
            request_id=rid(),
            channel=sgu_pb2.CHANNEL_OFFICE,
            subscriber=common_pb2.Subscriber(
                name="Rosa Quispe Mamani",
                document=common_pb2.IdentityDocument(
                    type=common_pb2.DOCUMENT_TYPE_DNI, number="44556677"
                ),
                email="rosa@example.pe",
            ),
            number="940000001",
            subcategory="REC-01",
            description="Recargué 10 soles y no se acreditaron.",
            office=sgu_pb2.Office(
                code="CUS-01",
                name="Oficina Desconcentrada Cusco",
                department="Cusco",
                province="Cusco",
                district="Wanchaq",
                ubigeo="080108",
            ),
            registered_by="Orientadora Ana Huamán",
        ),
        metadata=osiptel.metadata,
    )
    await movistar.sgu.AnswerProblem(
        sgu_pb2.AnswerProblemRequest(
            request_id=rid(), problem_id=problem.id, answer="Se acreditó.", solved=True
        ),
        metadata=movistar.metadata,
    )
    await osiptel.sgu.RecordOutage(
        sgu_pb2.RecordOutageRequest(
            request_id=rid(),
            operator="movistar",
            starts_at=ts(start - timedelta(hours=3)),
            ends_at=ts(start - timedelta(hours=2)),
            reason="caída del sistema de atención",
        ),
        metadata=osiptel.metadata,
    )

    # PQR (Colombia): a range, a complaint filed, extended for evidence and answered.
    await new_provider(app, "wom-co", "732130")
    await co["sic"](
        "AssignCunRange",
        pqr_pb2.AssignCunRangeRequest(
            request_id=rid(), provider="wom-co", first="000001", last="000099"
        ),
    )
    filed_pqr = await co["claro-co"]("FilePqr", filing())
    await co["claro-co"](
        "ExtendPqrForEvidence",
        pqr_pb2.ExtendPqrForEvidenceRequest(request_id=rid(), cun=filed_pqr.cun, reason="Pruebas."),
    )
    await co["claro-co"](
        "AnswerPqr",
        pqr_pb2.AnswerPqrRequest(
            request_id=rid(),
            cun=filed_pqr.cun,
            outcome=pqr_pb2.PQR_OUTCOME_FAVORABLE,
            summary="Se reversa el cobro.",
        ),
    )

    # Portability: one prior consultation answered, one objected for debt, one left silent (a
    # compliance breach).
    def consultation(number: str) -> portability_pb2.SubmitPriorConsultationRequest:
        return portability_pb2.SubmitPriorConsultationRequest(
            request_id=rid(),
            donor="movistar",
            service=common_pb2.SERVICE_TYPE_MOBILE,
            document=common_pb2.IdentityDocument(
                type=common_pb2.DOCUMENT_TYPE_DNI, number="44556677"
            ),
            numbers=[block(number)],
        )

    answered = await claro.call("SubmitPriorConsultation", consultation("940000001"))
    await movistar.call(
        "AnswerPriorConsultation",
        portability_pb2.AnswerPriorConsultationRequest(
            request_id=rid(), consultation_id=answered.id, accept=True
        ),
    )
    owing = await claro.call("SubmitPriorConsultation", consultation("940000005"))
    await movistar.call(
        "AnswerPriorConsultation",
        portability_pb2.AnswerPriorConsultationRequest(
            request_id=rid(),
            consultation_id=owing.id,
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
    await claro.call("SubmitPriorConsultation", consultation("940000003"))
    await advance(app, clock, timedelta(minutes=6))

    # Two whole ports: one completed (then a suspension for debt), one returned.
    kept = await port_end_to_end(app, clock, claro, movistar, [block("940000001")])
    for client, step in (
        (movistar, portability_pb2.EXECUTION_STEP_DONOR_DISABLED),
        (claro, portability_pb2.EXECUTION_STEP_RECIPIENT_ENABLED),
    ):
        await client.call(
            "ConfirmPortExecution",
            portability_pb2.ConfirmPortExecutionRequest(
                request_id=rid(), port_request_id=kept.id, step=step, done_at=ts(clock.now())
            ),
        )
    returned = await port_end_to_end(app, clock, claro, movistar, [block("940000002")])
    notified = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    window = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
    await advance_to(app, clock, notified)
    asked = await movistar.returns.RequestReturn(
        registry_pb2.RequestReturnRequest(
            request_id=rid(),
            port_request_id=returned.id,
            resolution="RES-123-2026",
        ),
        metadata=movistar.metadata,
    )
    await claro.returns.AnswerReturn(
        registry_pb2.AnswerReturnRequest(
            request_id=rid(),
            return_id=asked.id,
            accept=True,
            disable_at=ts(window + timedelta(hours=1)),
        ),
        metadata=claro.metadata,
    )
    await advance_to(app, clock, window + timedelta(hours=1))
    for client, return_step in (
        (claro, registry_pb2.RETURN_STEP_RECIPIENT_DISABLED),
        (movistar, registry_pb2.RETURN_STEP_DONOR_ENABLED),
    ):
        await client.returns.ConfirmReturnExecution(
            registry_pb2.ConfirmReturnExecutionRequest(
                request_id=rid(), return_id=asked.id, step=return_step
            ),
            metadata=client.metadata,
        )

    await advance_to(app, clock, datetime(2026, 12, 24, 15, 0, tzinfo=UTC))  # day 30 after
    suspension = await movistar.suspension.RequestSuspension(
        suspension_pb2.RequestSuspensionRequest(
            request_id=rid(),
            port_request_id=kept.id,
            number="940000001",
            bill_number="B001-000123",
            due_date=day("2026-12-15"),
            owed=common_pb2.Money(amount="89.90", currency="PEN"),
        ),
        metadata=movistar.metadata,
    )
    await claro.suspension.ConfirmSuspension(
        suspension_pb2.ConfirmSuspensionRequest(request_id=rid(), suspension_id=suspension.id),
        metadata=claro.metadata,
    )
    await settle(app)

    # Everything the regulators read: OSIPTEL every Peruvian flow, the SIC the PQRs.
    stored = await _stored(app)
    async with app.core.db.pool.acquire() as conn:
        peru, colombia = await conn.fetchrow(
            "SELECT max(position) FILTER (WHERE flow <> 'pqr'), max(position) FILTER"
            " (WHERE flow = 'pqr') FROM events"
        )
    events = await collect(osiptel, 0, peru, timeout=20)
    events += await collect(operators["sic"], 0, colombia, timeout=20)
    assert sorted({e.position for e in events}) == list(range(1, head(app) + 1))
    for event in events:
        check_body(event, stored[event.position])
    types = {e.type for e in events}
    assert {
        "registry.imported",
        "cancellations.report_received",
        "inoperability.registered",
        "inoperability.closed",
        "inoperability.reported",
        "sgu.problem.transferred",
        "sgu.problem.answered",
        "sgu.outage.recorded",
        "pqr.cun_range_assigned",
        "pqr.filed",
        "pqr.extended",
        "pqr.answered",
        "portability.consultation.answered",
        "portability.consultation.admissible",
        "compliance.recorded",
        "portability.request.scheduled_for_execution",
        "portability.request.executed",
        "portability.request.completed",
        "registry.numbers_changed",
        "registry.return.requested",
        "registry.return.accepted",
        "registry.return.executed",
        "registry.return.recipient_confirmed",
        "registry.return.donor_confirmed",
        "suspension.requested",
        "suspension.suspended",
    } <= types
    # Spot checks of what the generic check means.
    silent = next(
        e
        for e in events
        if e.type == "portability.consultation.admissible" and e.prior_consultation.donor_silent
    )
    assert silent.prior_consultation.state == portability_pb2.PRIOR_CONSULTATION_STATE_ADMISSIBLE
    breach = next(e for e in events if e.type == "compliance.recorded")
    assert breach.compliance_recorded.infraction > 0
    assert breach.compliance_recorded.severity != events_pb2.INFRACTION_SEVERITY_UNSPECIFIED
    report = next(e for e in events if e.type == "cancellations.report_received")
    assert (report.cancellations_report.records, report.cancellations_report.version) == (1, 1)
    assert report.cancellations_report.report_date == day((start - timedelta(days=1)).date())
    objected = next(
        e
        for e in events
        if e.type == "portability.consultation.answered"
        and e.prior_consultation.objection.reason == portability_pb2.OBJECTION_REASON_DEBT
    )
    assert objected.prior_consultation.objection.debt.due_date == day("2026-10-31")
    asked = next(e for e in events if e.type == "suspension.requested")
    assert asked.suspension.due_date == day("2026-12-15")


def test_an_unreadable_payload_streams_without_a_body(caplog) -> None:
    """A stored payload its converter cannot read leaves the body unset (and is logged) rather
    than ending every stream at its position."""
    now = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    broken = LoggedEvent(
        7, now, "portability", "portability.request.executed", None, "SP1", "clearinghouse",
        (), True, {"state": "executed"}, bytes(32),
    )  # fmt: skip
    message = event_message(broken)
    assert message.position == 7 and message.type == "portability.request.executed"
    assert message.WhichOneof("body") is None
    assert "event 7 (portability.request.executed)" in caplog.text
    fine = LoggedEvent(
        8, now, "registry", "registry.imported", None, None, "clearinghouse", (), True,
        {"kind": "plan", "rows": 3}, bytes(32),
    )  # fmt: skip
    body = event_message(fine).registry_imported
    assert (body.kind, body.rows) == (events_pb2.REGISTRY_IMPORT_KIND_PLAN, 3)
