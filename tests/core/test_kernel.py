"""The kernel's vocabulary agrees with the wire: pure checks, no server."""

from __future__ import annotations

from npc.core import validation
from npc.core.validation import Violations, check_document
from npc.v1 import common_pb2


def test_document_types_mirror_the_proto_enum() -> None:
    """The core names documents by npc.v1.DocumentType's numbers without importing it."""
    assert validation.DOCUMENT_TYPES == {
        common_pb2.DOCUMENT_TYPE_DNI: "dni",
        common_pb2.DOCUMENT_TYPE_CARNET_EXTRANJERIA: "ce",
        common_pb2.DOCUMENT_TYPE_RUC: "ruc",
        common_pb2.DOCUMENT_TYPE_OTHER: "other",
    }


def test_a_request_message_is_checked_as_a_document() -> None:
    """A generated IdentityDocument satisfies the core's protocol and is judged by its kind."""
    v = Violations()
    check_document(
        v, "d", common_pb2.IdentityDocument(type=common_pb2.DOCUMENT_TYPE_DNI, number="123")
    )
    check_document(
        v, "e", common_pb2.IdentityDocument(type=common_pb2.DOCUMENT_TYPE_RUC, number="20100047218")
    )
    check_document(v, "f", common_pb2.IdentityDocument(number="12345678"))
    assert [(i.field, i.description) for i in v.items] == [
        ("d.number", "a DNI has exactly 8 digits"),
        ("f.type", "required: DNI, CARNET_EXTRANJERIA, RUC or OTHER"),
    ]
