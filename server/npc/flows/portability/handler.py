"""The portability process: prior consultation (CP), port request (SP), scheduling (PP), execution
in the change window, and confirmations. Every rule of the process lives in this flow's modules,
one per sub-process; the gRPC servicer only translates.

States of a port request::

    awaiting_donor --SAC / silence--> admissible --PP--> scheduled --window--> executed --> completed
          |  \\--OCC (debt)--> objected_debt --APD--> admissible
          |                         \\--no proof in time--> rejected (RABDCP)
          \\--OCC (other reason)--> rejected (RABDCP)
    admissible --no PP by the limit--> cancelled (CNPF)
    fixed, not installed by the installation limit --> cancelled

- `consultation`: CP and the donor's answer or silence;
- `request`: SP, the donor's answer or silence, the debt objection and its proof, the installation;
- `objections`: improper objections (infraction 23); `installation`: a fixed line's limit;
- `scheduling`: admissibility (SPR), PP / PEP, FLEP and CNPF;
- `execution`: the port in the change window and the parties' confirmations;
- `reads`: the queries, the subscriber's public status and the regulator's counts.
"""

from __future__ import annotations

from npc.flows.portability import rules as R
from npc.flows.portability import store
from npc.flows.portability.base import FLOW
from npc.flows.portability.consultation import PriorConsultations
from npc.flows.portability.execution import Execution
from npc.flows.portability.reads import Reads
from npc.flows.portability.request import PortRequests

# FLOW and REQUEST_ANSWER are named here for the bench (clients/npc_tools/bench.py).
__all__ = ["FLOW", "REQUEST_ANSWER", "PortabilityHandler"]

REQUEST_ANSWER = R.DeadlineKind.REQUEST_ANSWER


class PortabilityHandler(PriorConsultations, PortRequests, Execution, Reads):
    """Commands, queries and deadline handlers of the portability process."""

    def register_deadlines(self) -> None:
        """Plug this flow's deadline handlers into the core."""
        register = self.core.deadlines.register
        kind = R.DeadlineKind
        register(FLOW, kind.CONSULTATION_ANSWER, self._consultation_donor_silent)
        # Each of these begins with the port request's lock: taken with the deadline.
        requests = store.REQUESTS.table
        register(FLOW, kind.REQUEST_ANSWER, self._request_donor_silent, case_table=requests)
        register(FLOW, kind.DEBT_PROOF, self._debt_not_proven, case_table=requests)
        register(FLOW, kind.SCHEDULE, self._not_scheduled, case_table=requests)
        register(FLOW, kind.EXECUTE, self._execute, case_table=requests)
        register(FLOW, kind.DONOR_DISABLE, self._confirmation_missed, case_table=requests)
        register(FLOW, kind.RECIPIENT_ENABLE, self._confirmation_missed, case_table=requests)
        register(FLOW, kind.INSTALLATION, self._not_installed, case_table=requests)
