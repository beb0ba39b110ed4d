"""What the SGU e-mails the subscriber, in plain Spanish: pure texts, queued by the handler."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from npc.core.calendar import BusinessCalendar
from npc.core.validation import MOBILE_NUMBER
from npc.flows.sgu.rules import CONFIRMATION_HOURS


@dataclass(frozen=True)
class Email:
    """An e-mail's subject and body."""

    subject: str
    body: str


def confirm_address(
    problem_id: str, subcategory_name: str, number: str, link: str, page: str, token: str
) -> Email:
    """Asks the subscriber to confirm the address before the problem goes to the operator."""
    return Email(
        f"SGU: confirme su correo para el problema {problem_id}",
        f"Registramos su problema {problem_id} ({subcategory_name}) con la línea "
        f"{number}.\nPara enviarlo a su empresa operadora, confirme su correo "
        f"abriendo este enlace:\n{link}\n"
        f"o ingresando este código en {page}: {token}\n"
        f"El enlace y el código vencen a las {CONFIRMATION_HOURS} horas.\n",
    )


def transferred(row: Mapping[str, Any], calendar: BusinessCalendar) -> Email:
    """The problem is in the operator's tray, with the answer deadline in Lima time."""
    local = calendar.local(row["answer_deadline"]).strftime("%d/%m/%Y %H:%M")
    return Email(
        f"SGU: su problema {row['id']} fue trasladado a {row['operator']}",
        f"Su problema {row['id']} fue trasladado a la empresa operadora "
        f"{row['operator']}, que debe responder a más tardar el {local} "
        "(hora de Lima).\n",
    )


def answered(row: Mapping[str, Any]) -> Email:
    """The operator's answer, and the invitation to rate it."""
    return Email(
        f"SGU: respuesta a su problema {row['id']}",
        f"{row['operator']} respondió su problema {row['id']}:\n\n{row['answer']}\n\n"
        "Califique la respuesta en el SGU (satisfecho o no satisfecho).\n",
    )


def not_answered(row: Mapping[str, Any]) -> Email:
    """The operator missed the deadline: the problem may become a claim."""
    return Email(
        f"SGU: su problema {row['id']} no fue respondido a tiempo",
        f"{row['operator']} no respondió su problema {row['id']} en el plazo. "
        "Puede convertirlo en reclamo desde el SGU.\n",
    )


def claim_registered(row: Mapping[str, Any], calendar: BusinessCalendar) -> Email:
    """The claim code, the claim form and the operator's deadline to resolve it."""
    # The deadline is the midnight that ends its last business day: name that day.
    deadline = calendar.local(row["claim_deadline"] - _SECOND)
    return Email(
        f"SGU: su reclamo {row['claim_code']} ante {row['operator']}",
        f"Su problema {row['id']} se convirtió en reclamo.\n"
        f"Código de reclamo: {row['claim_code']}\n"
        f"La empresa operadora {row['operator']} debe resolverlo a más tardar el "
        f"{deadline.strftime('%d/%m/%Y')} ({row['claim_business_days']} días hábiles).\n\n"
        "Formulario de reclamo\n"
        f"  Nombre: {row['subscriber_name']}\n"
        f"  Documento: {row['document_type'].upper()} {row['document_number']}\n"
        f"  Servicio: {service_word(row['number'])}, línea {row['number']}\n"
        f"  Materia: {row['subcategory']}\n"
        f"  Descripción: {row['description']}\n"
        f"  Respuesta de la empresa: {row['answer'] or '(sin respuesta en el plazo)'}\n"
        f"  Código de reclamo: {row['claim_code']}\n",
    )


def service_word(number: str) -> str:
    """The service of a line as the claim form names it: mobile lines have 9 digits."""
    return "móvil" if MOBILE_NUMBER.fullmatch(number) else "fijo"


_SECOND = timedelta(seconds=1)
