"""WireEnum: the protobuf enums and the domain's StrEnums, matched by name (pure)."""

from __future__ import annotations

from enum import StrEnum

import pytest

from npc.api.enums import WireEnum
from npc.flows.portability.rules import State
from npc.v1 import common_pb2
from npc.v1 import portability_pb2 as pb


class Service(StrEnum):
    MOBILE = "mobile"
    FIXED = "fixed"


def test_members_map_both_ways_by_name() -> None:
    states = WireEnum(pb.PortRequestState, State)
    assert states.to_wire(State.ADMISSIBLE) == pb.PORT_REQUEST_STATE_ADMISSIBLE
    assert states.to_wire("scheduled") == pb.PORT_REQUEST_STATE_SCHEDULED  # as stored
    assert states.to_wire(None) == pb.PORT_REQUEST_STATE_UNSPECIFIED
    assert states.to_domain(pb.PORT_REQUEST_STATE_CANCELLED) is State.CANCELLED
    for member in State:
        assert states.to_domain(states.to_wire(member)) is member


def test_unspecified_and_unknown_numbers_read_as_none() -> None:
    services = WireEnum(common_pb2.ServiceType, Service)
    assert services.to_domain(common_pb2.SERVICE_TYPE_UNSPECIFIED) is None
    assert services.to_domain(12345) is None
    assert services.wire_names() == ["SERVICE_TYPE_MOBILE", "SERVICE_TYPE_FIXED"]


def test_a_member_missing_on_either_side_is_refused_at_import() -> None:
    class OnlyMobile(StrEnum):
        MOBILE = "mobile"

    class Extra(StrEnum):
        MOBILE = "mobile"
        FIXED = "fixed"
        SATELLITE = "satellite"

    with pytest.raises(TypeError, match="SERVICE_TYPE_FIXED"):
        WireEnum(common_pb2.ServiceType, OnlyMobile)
    with pytest.raises(TypeError, match="SATELLITE"):
        WireEnum(common_pb2.ServiceType, Extra)
    # A wire value the domain leaves out on purpose is declared, and reads as None.
    partial = WireEnum(common_pb2.ServiceType, OnlyMobile, unmapped=("FIXED",))
    assert partial.to_domain(common_pb2.SERVICE_TYPE_FIXED) is None


def test_rename_covers_values_that_do_not_upper_case_to_the_wire_name() -> None:
    class Kind(StrEnum):
        CELL = "cell"
        LANDLINE = "landline"

    kinds = WireEnum(
        common_pb2.ServiceType, Kind, rename={Kind.CELL: "MOBILE", Kind.LANDLINE: "FIXED"}
    )
    assert kinds.to_wire(Kind.LANDLINE) == common_pb2.SERVICE_TYPE_FIXED
