"""Protobuf enums and the domain's `StrEnum`s, mapped by name instead of by hand-written tables.

A flow's rules name its states and reasons as a `StrEnum` (`State.AWAITING_DONOR ==
"awaiting_donor"`); the API carries them as a protobuf enum (`PORT_REQUEST_STATE_AWAITING_DONOR`).
`WireEnum` pairs the two by the member's value upper-cased behind the enum's prefix, and refuses
at import a domain member without a wire value or a wire value without a domain member, so adding
a state on one side only fails the first test that imports the flow, not an operator's call.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Generic, TypeVar

E = TypeVar("E", bound=StrEnum)


class WireEnum(Generic[E]):
    """One protobuf enum and the domain `StrEnum` it carries, both ways.

    `wire` is the generated enum (``portability_pb2.PortRequestState``); its zero value is
    ``<PREFIX>_UNSPECIFIED``, which maps to None. `rename` gives the wire name (without prefix) of
    members whose value does not upper-case to it; `unmapped` lists wire names (without prefix)
    the domain deliberately has no member for (they read as None, like an unknown number).
    """

    def __init__(
        self,
        wire: Any,
        domain: type[E],
        *,
        rename: Mapping[E, str] | None = None,
        unmapped: tuple[str, ...] = (),
    ) -> None:
        names: dict[str, int] = dict(wire.items())
        zero = [name for name, number in names.items() if number == 0]
        if len(zero) != 1 or not zero[0].endswith("_UNSPECIFIED"):
            raise TypeError(f"{wire.DESCRIPTOR.name}: its zero value must be *_UNSPECIFIED")
        self.prefix = zero[0].removesuffix("UNSPECIFIED")
        self.domain_type = domain
        renamed = dict(rename or {})
        self._to_wire: dict[E, int] = {}
        for member in domain:
            name = self.prefix + renamed.get(member, member.value.upper())
            if name not in names:
                raise TypeError(f"{domain.__name__}.{member.name}: no {name} in the wire enum")
            self._to_wire[member] = names[name]
        self._from_wire: dict[int, E] = {number: member for member, number in self._to_wire.items()}
        self._names: dict[int, str] = {number: name for name, number in names.items()}
        skipped = {self.prefix + name for name in unmapped} | set(zero)
        orphans = sorted(name for name, number in names.items() if number not in self._from_wire)
        if set(orphans) - skipped:
            raise TypeError(f"{domain.__name__} has no member for {sorted(set(orphans) - skipped)}")

    def to_wire(self, value: E | str | None) -> int:
        """The wire number of a domain value (a member or its string, as stored); None: zero."""
        if value is None:
            return 0
        return self._to_wire[self.domain_type(value)]

    def to_domain(self, number: int) -> E | None:
        """The domain member of a wire number; None for UNSPECIFIED, unmapped or unknown values
        (the handler's validation says which were required)."""
        return self._from_wire.get(number)

    def wire_names(self) -> list[str]:
        """The wire names of every domain member, in the domain's order (for error messages)."""
        return [self._names[self._to_wire[member]] for member in self.domain_type]
