"""Who may call each RPC, in the scenarios of `test_wrong_callers.py`.

Peru's services (portability, registry, returns, suspension, cancellations, inoperability, SGU) are
for Peruvian operators and OSIPTEL; Colombia's PQR regime is for Colombian providers and the SIC. A
regulator reads its own country's cases; it writes only where its flow makes it act (SGU for the
subscriber, CUN ranges and appeals for the SIC).

In every scenario the cases are: port requests and consultations filed by claro (recipient) with
movistar (donor); the SGU problem on a movistar line; claro's attention points, inoperability
events and daily reports; claro-co's PQRs and SMS requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc

PERU = frozenset({"claro", "movistar", "entel", "bitel"})
COLOMBIA = frozenset({"claro-co", "movistar-co", "tigo"})
OSIPTEL = frozenset({"osiptel"})
SIC = frozenset({"sic"})
IDENTITIES = tuple(sorted(PERU)) + tuple(sorted(COLOMBIA)) + ("osiptel", "sic")
EVERYONE = frozenset(IDENTITIES)
ANONYMOUS = ("no token", "unknown token")


@dataclass(frozen=True)
class Access:
    """The callers allowed on one RPC, and how the others are refused."""

    who: str
    allowed: frozenset[str]
    # A read that answers NOT_FOUND to some wrong parties (named by the scenario's step), so as
    # not to reveal that the case exists: the reason.
    hides: str = ""
    # Callers whose request names their own registry (their own event number, attention point):
    # they cannot reach the case at all and get NOT_FOUND.
    own_registry: frozenset[str] = frozenset()
    # Callers for whom the scenario's request is not a question of rights, with the reason.
    exempt: dict[str, str] = field(default_factory=dict)
    # The request field naming the case, and the operators of the service's country that are no
    # party of the scenario's case: they get NOT_FOUND, identical to that of a missing case (a
    # party in the wrong role, the regulator and other countries get PERMISSION_DENIED).
    case: str = ""
    strangers: frozenset[str] = frozenset()

    def refusals(self, identity: str) -> frozenset[grpc.StatusCode]:
        """The status codes that refuse `identity` correctly."""
        if identity in ("no token", "unknown token"):
            return frozenset({grpc.StatusCode.UNAUTHENTICATED})
        if identity in self.strangers:
            return frozenset({grpc.StatusCode.NOT_FOUND})
        if identity in self.own_registry:
            return frozenset({grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND})
        return frozenset({grpc.StatusCode.PERMISSION_DENIED})


_SELF_DONOR = {"movistar": "a recipient naming itself as donor is an invalid argument (donor)"}
_ANY_PERUVIAN_OPERATOR = "any Peruvian operator, for itself"
_OTHER_PE = PERU - {"claro"}
# No party of the scenario's port (claro and movistar), its consultation, return or suspension.
_NOT_PARTIES = PERU - {"claro", "movistar"}
_NOT_SGU_OPERATOR = PERU - {"movistar"}
_NOT_PROVIDER = COLOMBIA - {"claro-co"}

AUTHZ: dict[str, Access] = {
    # --- portability (Peru)
    "PortabilityService/SubmitPriorConsultation": Access(
        "a Peruvian operator (the recipient) other than the donor",
        PERU - {"movistar"},
        exempt=_SELF_DONOR,
    ),
    "PortabilityService/AnswerPriorConsultation": Access(
        "the donor", frozenset({"movistar"}), case="consultation_id", strangers=_NOT_PARTIES
    ),
    "PortabilityService/GetPriorConsultation": Access(
        "recipient, donor, OSIPTEL",
        frozenset({"claro", "movistar", "osiptel"}),
        case="consultation_id",
        strangers=_NOT_PARTIES,
    ),
    "PortabilityService/SubmitPortRequest": Access(
        "a Peruvian operator (the recipient) other than the donor",
        PERU - {"movistar"},
        exempt=_SELF_DONOR,
    ),
    "PortabilityService/AnswerPortRequest": Access(
        "the donor", frozenset({"movistar"}), case="port_request_id", strangers=_NOT_PARTIES
    ),
    "PortabilityService/SubmitDebtPaymentProof": Access(
        "the recipient", frozenset({"claro"}), case="port_request_id", strangers=_NOT_PARTIES
    ),
    "PortabilityService/ReportInstallation": Access(
        "the recipient", frozenset({"claro"}), case="port_request_id", strangers=_NOT_PARTIES
    ),
    "PortabilityService/SchedulePort": Access(
        "the recipient", frozenset({"claro"}), case="port_request_id", strangers=_NOT_PARTIES
    ),
    "PortabilityService/ConfirmPortExecution": Access(
        "the donor (DONOR_DISABLED), the recipient (RECIPIENT_ENABLED)",
        frozenset({"claro", "movistar"}),
        case="port_request_id",
        strangers=_NOT_PARTIES,
    ),
    "PortabilityService/GetPortRequest": Access(
        "recipient, donor, OSIPTEL",
        frozenset({"claro", "movistar", "osiptel"}),
        case="port_request_id",
        strangers=_NOT_PARTIES,
    ),
    "PortabilityService/ListPortRequests": Access(
        "Peruvian operators (their own requests) and OSIPTEL (all)", PERU | OSIPTEL
    ),
    # --- Peru's number registry, and the event stream (every identity reads its own events)
    "RegistryService/LookupNumber": Access("Peruvian operators, OSIPTEL", PERU | OSIPTEL),
    "RegistryService/LookupNumbers": Access("Peruvian operators, OSIPTEL", PERU | OSIPTEL),
    "RegistryService/StreamSnapshot": Access("Peruvian operators, OSIPTEL", PERU | OSIPTEL),
    "EventService/Subscribe": Access("anyone identified (its own events)", EVERYONE),
    "EventService/GetStreamHead": Access("anyone identified", EVERYONE),
    # Identified once for the stream; each command then as its own RPC's row (tests/api/test_session)
    "SessionService/Session": Access("anyone identified (each command: its RPC's rules)", EVERYONE),
    # An operator reads its own records (naming another is PERMISSION_DENIED), a regulator those
    # of its country's flows: every identified caller may call.
    "ComplianceService/ListRecords": Access("anyone identified (its own records)", EVERYONE),
    "ComplianceService/Summarize": Access("anyone identified (its own records)", EVERYONE),
    # --- returns (Peru)
    "ReturnsService/ReportDisconnection": Access(
        "the operator serving the numbers", frozenset({"claro"})
    ),
    "ReturnsService/RequestReturn": Access(
        "the donor of the port",
        frozenset({"movistar"}),
        case="port_request_id",
        strangers=_NOT_PARTIES,
    ),
    "ReturnsService/AnswerReturn": Access(
        "the recipient of the port", frozenset({"claro"}), case="return_id", strangers=_NOT_PARTIES
    ),
    "ReturnsService/ConfirmReturnExecution": Access(
        "the recipient (RECIPIENT_DISABLED), the donor (DONOR_ENABLED)",
        frozenset({"claro", "movistar"}),
        case="return_id",
        strangers=_NOT_PARTIES,
    ),
    "ReturnsService/GetReturn": Access(
        "recipient, donor, OSIPTEL",
        frozenset({"claro", "movistar", "osiptel"}),
        case="return_id",
        strangers=_NOT_PARTIES,
    ),
    # --- suspension (Peru)
    "SuspensionService/RequestSuspension": Access(
        "the donor of the port",
        frozenset({"movistar"}),
        case="port_request_id",
        strangers=_NOT_PARTIES,
    ),
    "SuspensionService/ConfirmSuspension": Access(
        "the recipient", frozenset({"claro"}), case="suspension_id", strangers=_NOT_PARTIES
    ),
    "SuspensionService/RequestReactivation": Access(
        "the donor", frozenset({"movistar"}), case="suspension_id", strangers=_NOT_PARTIES
    ),
    "SuspensionService/ConfirmReactivation": Access(
        "the recipient", frozenset({"claro"}), case="suspension_id", strangers=_NOT_PARTIES
    ),
    "SuspensionService/GetSuspension": Access(
        "donor, recipient, OSIPTEL",
        frozenset({"claro", "movistar", "osiptel"}),
        case="suspension_id",
        strangers=_NOT_PARTIES,
    ),
    # --- cancellations tracking (Peru): claro is the registered reporting operator
    "CancellationsService/SubmitDailyReport": Access(
        "a registered reporting operator, for itself", frozenset({"claro"})
    ),
    "CancellationsService/StreamDailyReport": Access(
        "a registered reporting operator, for itself", frozenset({"claro"})
    ),
    "CancellationsService/GetTrackedRequest": Access(
        "the reporting operator, OSIPTEL",
        frozenset({"claro", "osiptel"}),
        case="request_code",
        strangers=_OTHER_PE,
    ),
    "CancellationsService/GetDailyReportCompliance": Access(
        "the operator (itself), OSIPTEL (any)", frozenset({"claro", "osiptel"})
    ),
    # --- inoperability registry (Peru): each operator keeps its own
    "InoperabilityService/RegisterAttentionPoint": Access(_ANY_PERUVIAN_OPERATOR, PERU),
    "InoperabilityService/RegisterInoperability": Access(
        "the operator owning the attention point", frozenset({"claro"}), own_registry=_OTHER_PE
    ),
    "InoperabilityService/CloseInoperability": Access(
        "the operator owning the event", frozenset({"claro"}), own_registry=_OTHER_PE
    ),
    "InoperabilityService/RecordCriticalTransaction": Access(
        "the operator owning the event", frozenset({"claro"}), own_registry=_OTHER_PE
    ),
    "InoperabilityService/SubmitInoperabilityReport": Access(
        "the operator owning the events", frozenset({"claro"}), own_registry=_OTHER_PE
    ),
    "InoperabilityService/GetInoperability": Access(
        "the operator owning the event, OSIPTEL",
        frozenset({"claro", "osiptel"}),
        case="number",
        strangers=_OTHER_PE,
    ),
    # --- SGU (Peru): OSIPTEL acts for the subscriber, the line's operator (movistar) answers
    "SguService/RegisterProblem": Access("OSIPTEL", OSIPTEL),
    "SguService/ConfirmEmail": Access("OSIPTEL", OSIPTEL),
    "SguService/AnswerProblem": Access(
        "the problem's operator",
        frozenset({"movistar"}),
        case="problem_id",
        strangers=_NOT_SGU_OPERATOR,
    ),
    "SguService/RateAnswer": Access("OSIPTEL", OSIPTEL),
    "SguService/EscalateToClaim": Access("OSIPTEL", OSIPTEL),
    "SguService/AssignClaimCode": Access(
        "the problem's operator",
        frozenset({"movistar"}),
        case="problem_id",
        strangers=_NOT_SGU_OPERATOR,
    ),
    "SguService/GetProblem": Access(
        "the problem's operator (once in its tray), OSIPTEL",
        frozenset({"movistar", "osiptel"}),
        hides="a problem awaiting the subscriber's e-mail confirmation is not yet its operator's",
        case="problem_id",
        strangers=_NOT_SGU_OPERATOR,
    ),
    "SguService/ListTray": Access("Peruvian operators (their own tray)", PERU),
    "SguService/WatchTray": Access("Peruvian operators (their own tray)", PERU),
    "SguService/UpsertSubcategory": Access("OSIPTEL", OSIPTEL),
    "SguService/ListCatalogue": Access("Peruvian operators, OSIPTEL", PERU | OSIPTEL),
    "SguService/RecordOutage": Access("OSIPTEL", OSIPTEL),
    "SguService/GetReport": Access("OSIPTEL", OSIPTEL),
    # --- PQR with CUN (Colombia): claro-co is the provider of the cases
    "PqrService/AssignCunRange": Access("the SIC", SIC),
    "PqrService/FilePqr": Access("a Colombian provider with a CUN range", COLOMBIA),
    "PqrService/ExtendPqrForEvidence": Access(
        "the provider", frozenset({"claro-co"}), case="cun", strangers=_NOT_PROVIDER
    ),
    "PqrService/AnswerPqr": Access(
        "the provider", frozenset({"claro-co"}), case="cun", strangers=_NOT_PROVIDER
    ),
    "PqrService/ConfirmSilenceEffects": Access(
        "the provider", frozenset({"claro-co"}), case="cun", strangers=_NOT_PROVIDER
    ),
    "PqrService/FileReconsideration": Access(
        "the provider", frozenset({"claro-co"}), case="cun", strangers=_NOT_PROVIDER
    ),
    "PqrService/RecordTransferToSic": Access(
        "the provider", frozenset({"claro-co"}), case="cun", strangers=_NOT_PROVIDER
    ),
    "PqrService/DecideAppeal": Access("the SIC", SIC),
    "PqrService/GetPqr": Access(
        "the provider, the SIC", frozenset({"claro-co", "sic"}), case="cun", strangers=_NOT_PROVIDER
    ),
    "PqrService/ReceiveQuejaSms": Access("a Colombian provider with a CUN range", COLOMBIA),
    "PqrService/AcknowledgeQuejaSms": Access(
        "the provider", frozenset({"claro-co"}), case="sms_request_id", strangers=_NOT_PROVIDER
    ),
    "PqrService/RecordCallAttempt": Access(
        "the provider", frozenset({"claro-co"}), case="sms_request_id", strangers=_NOT_PROVIDER
    ),
    "PqrService/GetSmsRequest": Access(
        "the provider, the SIC",
        frozenset({"claro-co", "sic"}),
        case="sms_request_id",
        strangers=_NOT_PROVIDER,
    ),
    "PqrService/GetMonthlyIndicators": Access(
        "the provider (itself), the SIC (any)", frozenset({"claro-co", "sic"})
    ),
}
