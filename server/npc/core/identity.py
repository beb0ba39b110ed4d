"""Who is asking: the caller of a command or a query, as every flow sees it.

The transports establish it (an API token or a client certificate in `npc.api.identity`, a token
in the web reports); flows only read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """An identified caller: an operator, or the regulator (read-only), of one country."""

    operator: str
    role: str = "operator"
    country: str = "PE"  # whose regulation it is under: "PE" (OSIPTEL) or "CO" (CRC, SIC)

    @property
    def is_regulator(self) -> bool:
        """True for the regulator's read-only identity."""
        return self.role == "regulator"
