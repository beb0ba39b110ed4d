"""What the clearinghouse itself tells the subscriber of a port request, in plain Spanish.

When the request form carries the subscriber's e-mail, or a contact phone that is a mobile line
(Anexo 1: "Correo electrónico (opcional)", "Teléfono de consulta (opcional)"), the clearinghouse
queues a notice through the outbox when the request is registered, rejected or cancelled (with
the reason), scheduled (with the instant in Lima time) and executed: an e-mail when there is an
address, otherwise an SMS. This is the subscriber's second source: the recipient's own duties to
tell the subscriber (infractions 26 and 29) stay the recipient's.

The sentences on the outcome of a request are the public status page's own (`outcome_sentence`),
so the page and the notices say the same. Nothing here reads the database: the operators' names
come from `OperatorNames`, read when the flow starts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from npc.core.calendar import BusinessCalendar
from npc.core.spanish import mask_number, spanish_instant
from npc.core.validation import MOBILE_NUMBER
from npc.flows.portability.rules import FLOW
from npc.notifications.outbox import MAX_SMS_TEXT, defer_email, defer_sms
from npc.store.database import Txn

# The public page where the subscriber checks the request (the site's own path).
STATUS_PATH = "/portabilidad/consulta"
# An SMS notice is at most two concatenated GSM-7 segments, well inside what the outbox sends.
SMS_LIMIT = 306
assert SMS_LIMIT <= MAX_SMS_TEXT
# A subject line a mail client shows whole.
SUBJECT_LIMIT = 120
# Numbers a notice names; the others are counted.
NAMED_NUMBERS = 3
# A Peruvian mobile line written with the country code (+51 or 51).
_COUNTRY_CODE = re.compile(r"(?a)^\+?51(9\d{8})$")

# The donor's objection reasons, as the end of "... observó la solicitud porque ...".
OBJECTIONS: dict[str, str] = {
    "service_suspended": "el servicio está suspendido",
    "number_not_owned": "el número no está registrado a su nombre en ese operador",
    "wrong_service_type": "el tipo de servicio indicado (fijo o móvil) no corresponde",
    "document_mismatch": "el documento de identidad no coincide con el del titular de la línea",
    "wrong_modality": "la modalidad indicada (prepago o postpago) no corresponde",
    "debt": "hay una deuda pendiente",
    "contract_terminated": "el contrato terminó hace más de 30 días",
    "judicial_suspension": "el servicio está suspendido por orden judicial",
    "insolvency": "el servicio está suspendido por insolvencia",
    "misuse": "el servicio está suspendido por uso indebido",
}
UNKNOWN_OBJECTION = "no cumple los requisitos"
REJECTED = (
    "{donor} observó la solicitud porque {reason}. Si cree que es un error, consulte a "
    "{recipient}; puede presentar una nueva solicitud."
)
DEBT_NOT_PROVEN = (
    "La solicitud fue rechazada porque {donor} informó una deuda pendiente y no se presentó la "
    "constancia de pago dentro de las 24 horas. Si ya pagó, puede presentar una nueva solicitud "
    "con {recipient}."
)
NOT_SCHEDULED = (
    "{recipient} no programó el cambio dentro del plazo y la solicitud se canceló. Puede "
    "presentar una nueva solicitud."
)
NOT_INSTALLED = (
    "La solicitud se canceló porque {recipient} no instaló el servicio fijo dentro del plazo. "
    "Puede presentar una nueva solicitud."
)
SECOND_SOURCE = (
    "Este aviso lo envía el administrador de la portabilidad numérica. No reemplaza los avisos "
    "que {recipient}, su nuevo operador, está obligado a darle."
)


@dataclass(frozen=True)
class Notice:
    """One notice: the e-mail's subject and body, and the SMS text."""

    subject: str
    body: str
    sms: str


@dataclass
class OperatorNames:
    """Operators' registered names by id, read when the flow starts; an operator registered
    since is named by its id until the next start."""

    names: dict[str, str] = field(default_factory=dict)

    def __call__(self, operator: str) -> str:
        return self.names.get(operator, operator)


def outcome_sentence(
    state: str, donor: str, recipient: str, objection_reason: str | None, schedulable: bool
) -> str:
    """Why a request ended rejected or cancelled, as the page and the notices say it; "" for
    any other state. `schedulable`: the request ever had a scheduling limit."""
    names = {"donor": donor, "recipient": recipient}
    if state == "rejected":
        if objection_reason == "debt":
            return DEBT_NOT_PROVEN.format(**names)
        reason = OBJECTIONS.get(objection_reason or "", UNKNOWN_OBJECTION)
        return REJECTED.format(reason=reason, **names)
    if state == "cancelled":
        return (NOT_SCHEDULED if schedulable else NOT_INSTALLED).format(**names)
    return ""


def sms_line(contact_phone: str) -> str | None:
    """The Peruvian mobile line of a contact phone, in national form; None for any other."""
    phone = contact_phone.strip()
    match = _COUNTRY_CODE.fullmatch(phone)
    if match:
        return match.group(1)
    return phone if MOBILE_NUMBER.fullmatch(phone) else None


def masked_contact(subscriber: Mapping[str, Any]) -> str:
    """Where the notices go, as the public page may show it: "correo r***@example.pe", "SMS al
    ******001", or "" when the form has no usable contact."""
    email = subscriber.get("email") or ""
    if email:
        local, _, domain = email.partition("@")
        return f"correo {local[:1]}***@{domain}"
    line = sms_line(subscriber.get("contact_phone") or "")
    return f"SMS al {mask_number(line)}" if line else ""


def named_numbers(row: Mapping[str, Any]) -> str:
    """The request's numbers as a notice names them: masked, the first few, the rest counted."""
    shown: list[str] = []
    for block in row["numbers"]:
        first, last = block["first"], block.get("last") or block["first"]
        shown.append(mask_number(first) if first == last else f"{mask_number(first)} a {last[-3:]}")
        if len(shown) == NAMED_NUMBERS:
            break
    text = ", ".join(shown)
    named = sum(_block_size(b) for b in row["numbers"][:NAMED_NUMBERS])
    if row["number_count"] > named:
        text += f" y {row['number_count'] - named} más"
    return text


def _block_size(block: Mapping[str, str]) -> int:
    last = block.get("last") or block["first"]
    return int(last) - int(block["first"]) + 1


def bounded(text: str, limit: int) -> str:
    """`text`, cut at a word and marked with "…" when longer than `limit` characters."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


@dataclass(frozen=True)
class NoticeTexts:
    """The notices of one jurisdiction: its calendar (Lima), the outage a port may cause and the
    address of the public status page."""

    calendar: BusinessCalendar
    max_outage: timedelta
    status_page: str

    def when(self, instant: datetime) -> str:
        """An instant as the subscriber reads it: local date and time, zone named."""
        return f"{spanish_instant(instant, self.calendar.zone)} (hora de Lima)"

    def notice(self, event: str, row: Mapping[str, Any], name: OperatorNames) -> Notice | None:
        """The notice an event of the request gives its subscriber, or None."""
        donor, recipient = name(row["donor"]), name(row["recipient"])
        numbers, case = named_numbers(row), row["id"]
        footer = (
            f"Consulte el estado en {self.status_page} con el número de solicitud {case} y su "
            f"documento.\n\n{SECOND_SOURCE.format(recipient=recipient)}\n"
        )
        if event == "registered":
            subject = f"Portabilidad: registramos su solicitud {case}"
            lead = (
                f"Su solicitud de portabilidad {case} para pasar {numbers} de {donor} a "
                f"{recipient} quedó registrada el {self.when(row['submitted_at'])}."
            )
            detail = (
                f"{donor}, su operador actual, la revisa ahora; si no responde a tiempo, el "
                "trámite continúa igual."
            )
        elif event in ("rejected", "cancelled"):
            word = "rechazada" if event == "rejected" else "cancelada"
            subject = f"Portabilidad: su solicitud {case} fue {word}"
            lead = f"Su solicitud de portabilidad {case} fue {word}."
            objection = (row["objection"] or {}).get("reason")
            detail = outcome_sentence(
                event, donor, recipient, objection, row["schedule_deadline"] is not None
            )
        elif event == "scheduled":
            hours = int(self.max_outage.total_seconds() // 3600)
            subject = f"Portabilidad: su cambio de operador está programado ({case})"
            lead = (
                f"El cambio de {numbers} a {recipient} está programado para el "
                f"{self.when(row['scheduled_at'])}."
            )
            detail = f"Durante el cambio su servicio puede interrumpirse hasta {hours} horas."
        elif event == "executed":
            subject = f"Portabilidad: su número ya está con {recipient} ({case})"
            verb = "pasaron" if row["number_count"] > 1 else "pasó"
            lead = f"El {self.when(row['executed_at'])} {numbers} {verb} a {recipient}."
            detail = f"Si su línea no funciona, comuníquese con {recipient}."
        else:
            return None
        return Notice(
            bounded(subject, SUBJECT_LIMIT),
            f"{lead}\n{detail}\n\n{footer}",
            bounded(f"Portabilidad {case}: {lead} {detail}", SMS_LIMIT),
        )


# The request's events that tell its subscriber something (the others are operators' business).
TOLD = frozenset({"registered", "rejected", "cancelled", "scheduled", "executed"})


def tell_subscriber(
    txn: Txn, event: str, row: Mapping[str, Any], texts: NoticeTexts, names: OperatorNames
) -> None:
    """Queue the event's notice to the subscriber, by e-mail when the form has an address, else
    by SMS to a mobile contact phone; nothing without a contact. No round trip of its own: the
    notice rides in the transaction's flush."""
    if event not in TOLD:
        return
    subscriber = row["subscriber"] or {}
    email = subscriber.get("email") or ""
    line = sms_line(subscriber.get("contact_phone") or "")
    if not email and line is None:
        return
    notice = texts.notice(event, row, names)
    if notice is None:
        return
    if email:
        defer_email(
            txn, to=email, subject=notice.subject, body=notice.body, flow=FLOW, case_id=row["id"]
        )
    elif line is not None:
        defer_sms(txn, to=line, text=notice.sms, flow=FLOW, case_id=row["id"])
