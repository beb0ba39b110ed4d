"""User management system, SGU (Res. 00170-2020-CD/OSIPTEL, Instructivo Técnico del SGU).

    (72 hours unconfirmed: expired)
    awaiting_confirmation --e-mail confirmed--> in_tray --operator answers--> answered --rated-->
    (registered at an office: in_tray at once)     |                            closed (satisfied,
                                          answer deadline missed              or not claimable)
                                                   v                          escalation_open
                                                overdue --late answer--> answered   (unsatisfied)
                                                   \\---------- escalated ----------/
                                                              v
                                                       claim_requested --claim code--> claimed

Deadlines: an e-mail not confirmed within 72 hours expires the registration; the operator
answers within its subcategory's deadline (business days on the Peruvian calendar, or hours);
escalated to a claim, it assigns its claim code at once (a short configurable grace). Both are
extended by recorded outages of the SGU or of the operator's system that ran during them.

The handler is one class the manifest builds, made of its sub-processes: registration
(`registration.py`), attention in the operator's tray (`attention.py`), closing and escalation
(`escalation.py`), the regulator's outages and catalogue (`regulator.py`) and the reads
(`reads.py`). Its commands take the flow's own commands (`model.py`) and return rows or records;
`convert.py` speaks protobuf.
"""

from __future__ import annotations

from npc.flows.sgu.attention import Attention
from npc.flows.sgu.escalation import Escalation
from npc.flows.sgu.reads import Reads
from npc.flows.sgu.registration import Registration
from npc.flows.sgu.regulator import Regulator
from npc.flows.sgu.rules import DEFAULT_CLAIM_CODE_GRACE, FLOW, DeadlineKind

__all__ = ["DEFAULT_CLAIM_CODE_GRACE", "FLOW", "SguHandler"]


class SguHandler(Registration, Attention, Escalation, Regulator, Reads):
    """Commands, deadlines and queries of the user management system."""

    def register_deadlines(self) -> None:
        """Plug the deadline handlers into the core."""
        self.core.deadlines.register(FLOW, DeadlineKind.ANSWER, self._not_answered)
        self.core.deadlines.register(FLOW, DeadlineKind.CLAIM_CODE, self._no_claim_code)
        self.core.deadlines.register(FLOW, DeadlineKind.CONFIRMATION, self._unconfirmed)
