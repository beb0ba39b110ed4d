"""The regulated texts a user reads: the status sentence by CUN (art. 2.1.5.14), the notice of the
file sent to the SIC, the recourse notice of every answer (art. 2.1.5.9.2) and the SMS QUEJA
acknowledgement (art. 2.1.5.1, parágrafo 1 a)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from npc.core.calendar import BusinessCalendar
from npc.flows.pqr.rules import (
    RECONSIDERATION_DAYS,
    SHORT_CODE,
    SIC_DAYS,
    UNANSWERED_ATTEMPTS_TO_CLOSE,
    spelled,
)

SIC_LINK = "https://www.sic.gov.co"

KIND_WORDS = {"petition": "petición", "complaint": "queja"}

# Art. 2.1.5.14 names two states of a pending PQR: analysis and evidence, by the provider or the SIC.
ANALYSIS_BY_PROVIDER = "análisis por parte del proveedor"
EVIDENCE_BY_PROVIDER = "etapa de pruebas que practica el proveedor"
ANALYSIS_BY_SIC = "análisis por parte de la SIC"

RECOURSE_NOTICE = (
    f"Señor usuario, dentro de los siguientes {spelled(RECONSIDERATION_DAYS)} días hábiles contados"
    " a partir de que usted "
    "tiene conocimiento de esta decisión, si lo elige, usted puede presentar recurso de reposición "
    "y en subsidio de apelación. Lo anterior, significa que usted puede presentar nuevamente una "
    "comunicación mediante la cual manifieste su inconformidad con la presente decisión, en los "
    "casos en que la misma le sea desfavorable total o parcialmente, con el fin de que volvamos a "
    "revisar su caso particular. Igualmente, si así lo quiere, en el mismo momento que presente la "
    "comunicación antes mencionada, puede expresar su interés de que su caso sea revisado y "
    "resuelto de fondo por la autoridad de vigilancia y control, es decir, por la "
    "Superintendencia de Industria y Comercio -SIC-, en el evento en que la decisión frente a su "
    "petición o queja sea confirmada o modificada y nuevamente le sea desfavorable. Tenga en "
    "cuenta, que la comunicación referida, puede presentarla en forma verbal o escrita, a través "
    "de nuestras oficinas físicas de atención al usuario, nuestra página Web, nuestra página de red "
    "social o a través de nuestra línea gratuita de atención al usuario."
)


def day(calendar: BusinessCalendar, instant: datetime) -> str:
    """The Bogotá date of an instant, as dd/mm/yyyy."""
    return calendar.local_date(instant).strftime("%d/%m/%Y")


def last_day(calendar: BusinessCalendar, limit: datetime) -> str:
    """The last day of a term that ends at local midnight `limit`."""
    return day(calendar, limit - timedelta(microseconds=1))


def moment(calendar: BusinessCalendar, instant: datetime) -> str:
    """The Bogotá date and time of an instant, as dd/mm/yyyy HH:MM."""
    return calendar.local(instant).strftime("%d/%m/%Y %H:%M")


def acknowledgement(provider_name: str) -> str:
    """The SMS that answers an SMS QUEJA to 85432 (art. 2.1.5.1, parágrafo 1, literal a)."""
    return (
        f"{provider_name} ha recibido su solicitud de atención, lo llamaremos a más tardar dentro "
        "del día calendario siguiente para conocer el detalle de su queja"
    )


def unreachable_notice(provider_name: str) -> str:
    """The SMS that closes an SMS QUEJA request after 3 unanswered calls (literal c)."""
    return (
        f"{provider_name}: intentamos comunicarnos con usted en "
        f"{spelled(UNANSWERED_ATTEMPTS_TO_CLOSE)} ocasiones para conocer el detalle de la queja que"
        f" solicitó presentar por SMS al {SHORT_CODE}, sin obtener respuesta. Su "
        "solicitud de atención se da por cerrada; puede presentar su queja en cualquier momento "
        "por nuestros mecanismos de atención."
    )


def _kind_word(row: Any) -> str:
    if row["rec_filed_at"] is not None:
        return "recurso"
    return KIND_WORDS[row["kind"]]


def _opening(calendar: BusinessCalendar, row: Any) -> str:
    filed = row["rec_filed_at"] or row["filed_at"]
    return (
        f"Señor usuario, le informamos que su {_kind_word(row)}, radicada bajo el Código Único "
        f"Numérico -CUN- {row['id']} en fecha {day(calendar, filed)}"
    )


def status_sentence(calendar: BusinessCalendar, row: Any) -> str:
    """What a user reads when checking a PQR by its CUN.

    While the PQR is pending this is the sentence of art. 2.1.5.14 verbatim, with its state
    (analysis or evidence, by the provider or the SIC) and the last day of the term. The seed
    gives no sentence for the other states; those keep its opening and say what happened.
    """
    state = row["state"]
    opening = _opening(calendar, row)
    pending = {
        "analysis": (ANALYSIS_BY_PROVIDER, row["answer_due"]),
        "evidence": (EVIDENCE_BY_PROVIDER, row["answer_due"]),
        "reconsideration": (ANALYSIS_BY_PROVIDER, row["rec_answer_due"]),
        "reconsideration_evidence": (EVIDENCE_BY_PROVIDER, row["rec_answer_due"]),
        "appeal": (ANALYSIS_BY_SIC, row["appeal_due"]),
    }
    if state in pending:
        phrase, due = pending[state]
        word = _kind_word(row)
        return (
            f"{opening}, se encuentra en {phrase}, y la misma será respondida a través del mismo "
            "mecanismo en que fue presentada y a la dirección de notificación suministrada por "
            f"usted al momento de presentación de su {word}, a más tardar el día "
            f"{last_day(calendar, due)}."
        )
    if state == "answered":
        return (
            f"{opening}, fue respondida el día {day(calendar, row['answered_at'])}. Puede "
            "presentar recurso de reposición y en subsidio de apelación a más tardar el día "
            f"{last_day(calendar, row['reconsideration_until'])}."
        )
    if state == "silence_applied":
        return (
            f"{opening}, se entiende resuelta a su favor por silencio administrativo positivo "
            f"desde el {moment(calendar, row['silence_at'])}; el proveedor debe materializar sus "
            f"efectos antes del {moment(calendar, row['silence_effects_due'])}."
        )
    if state == "transfer_due":
        return (
            f"{opening}, fue resuelta por el proveedor el día "
            f"{day(calendar, row['rec_answered_at'])} y el expediente será enviado a la "
            "Superintendencia de Industria y Comercio -SIC- para el trámite del recurso de "
            f"apelación a más tardar el día {last_day(calendar, row['transfer_due'])}."
        )
    return f"{opening}, se encuentra cerrada desde el día {day(calendar, row['closed_at'])}."


def transfer_notice(calendar: BusinessCalendar, row: Any) -> str:
    """The notice of the file sent to the SIC (art. 2.1.5.14, second paragraph), once sent."""
    if row["transferred_at"] is None:
        return ""
    return (
        f"Señor usuario, el expediente de su {_kind_word(row)}, fue enviado en fecha "
        f"{day(calendar, row['transferred_at'])} a la Superintendencia de Industria y Comercio, "
        "para el trámite del recurso de apelación, para lo cual dicha Entidad cuenta con "
        f"{spelled(SIC_DAYS)} días hábiles para revisar, estudiar su caso y dar respuesta de fondo, salvo que se "
        "requiera la práctica de pruebas, caso en el cual el tiempo mencionado podrá ampliarse "
        "hasta por un término igual. Para consultar dicho trámite, por favor ingrese a través del "
        f"siguiente enlace: {SIC_LINK} con el Código Único Numérico que le fue asignado a su PQR."
    )
