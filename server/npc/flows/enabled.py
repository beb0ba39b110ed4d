"""The flows the clearinghouse runs: the one list the process plugs in, in this order.

Every flow is built the same way, ``flow_class(FlowContext(settings, commands))``; a new flow is
added here and nowhere else in the process's wiring.
"""

from __future__ import annotations

from npc.core.flow import Flow
from npc.flows.cancellations.flow import CancellationsFlow
from npc.flows.inoperability.flow import InoperabilityFlow
from npc.flows.portability.flow import PortabilityFlow
from npc.flows.pqr.flow import PqrFlow
from npc.flows.registry.flow import RegistryFlow
from npc.flows.sgu.flow import SguFlow
from npc.flows.suspension.flow import SuspensionFlow

FLOWS: tuple[type[Flow], ...] = (
    RegistryFlow,
    PortabilityFlow,
    SuspensionFlow,
    InoperabilityFlow,
    SguFlow,
    CancellationsFlow,
    PqrFlow,
)
