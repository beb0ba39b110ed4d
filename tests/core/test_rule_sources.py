"""Every rule of the compliance ledger against the seeds (pure: no database).

The tables below are written from the source documents in ../shared/seeds/: seed 003's table of
40 infractions (number, severity, article), and where each catalogued rule comes from. A rule
added to a flow fails here until it is classified.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest

from npc.api.enums import WireEnum
from npc.core.compliance import (
    PORTABILITY_REGULATION,
    Rule,
    Severity,
    Source,
    SourceKind,
    series,
)
from npc.flows.enabled import FLOWS
from npc.v1 import events_pb2

L, G, MG = Severity.LEVE, Severity.GRAVE, Severity.MUY_GRAVE

# Seed 003, "Régimen de infracciones y sanciones": number -> (severity, article it cites).
INFRACTION_TABLE: dict[int, tuple[Severity, int]] = {
    1: (L, 2), 2: (L, 5), 3: (L, 6), 4: (L, 6), 5: (G, 6), 6: (L, 7), 7: (L, 8), 8: (L, 8),
    9: (L, 9), 10: (G, 10), 11: (G, 12), 12: (L, 13), 13: (L, 13), 14: (L, 13), 15: (L, 13),
    16: (G, 16), 17: (G, 18), 18: (G, 20), 19: (L, 21), 20: (L, 21), 21: (G, 22), 22: (G, 22),
    23: (MG, 22), 24: (L, 23), 25: (L, 23), 26: (L, 23), 27: (G, 23), 28: (G, 23), 29: (L, 25),
    30: (L, 30), 31: (L, 30), 32: (G, 30), 33: (G, 30), 34: (MG, 37), 35: (G, 37), 36: (G, 38),
    37: (L, 48), 38: (G, 54), 39: (L, 55), 40: (L, 57),
}  # fmt: skip

REG, OWN, CH = SourceKind.REGULATION, SourceKind.OPERATOR_PROCEDURE, SourceKind.CLEARINGHOUSE
# Where each catalogued rule comes from: (flow, key) -> (kind, infraction, the seed it rests on).
# Seeds 000, 001, 002 and 004 give no infraction numbers or severities.
CATALOGUE: dict[tuple[str, str], tuple[SourceKind, int | None, str]] = {
    ("portability", "registration"): (REG, 20, "003"),
    ("portability", "consultation_donor_answer"): (REG, 18, "003"),
    ("portability", "request_donor_answer"): (REG, 21, "003"),
    ("portability", "improper_objection"): (REG, 23, "003"),
    ("portability", "mobile_schedule"): (REG, 24, "003"),
    ("portability", "fixed_schedule"): (REG, 25, "003"),
    ("portability", "donor_disable"): (REG, 27, "003"),
    ("portability", "recipient_enable"): (REG, 28, "003"),
    ("registry", "return_schedule"): (REG, 30, "003"),
    ("registry", "return_recipient_disable"): (REG, 32, "003"),
    ("registry", "return_donor_enable"): (REG, 33, "003"),
    ("suspension", "recipient_suspend"): (REG, 13, "003"),
    ("suspension", "donor_request_reactivation"): (REG, 14, "003"),
    ("suspension", "recipient_reactivate"): (REG, 15, "003"),
    # The report goes to the operator's own regulatory department ("regulatorio").
    ("inoperability", "report_inoperability"): (OWN, None, "002"),
    ("sgu", "sgu_answer_in_time"): (REG, None, "001"),
    ("sgu", "sgu_claim_code_at_once"): (REG, None, "001"),
    # A proposed rule without hour or term: the due hour and the check are the clearinghouse's.
    ("cancellations", "daily_report_missing"): (CH, None, "000"),
    ("cancellations", "scheduled_date_not_executed"): (CH, None, "000"),
    ("pqr", "provider_answer_pqr"): (REG, None, "004"),
    ("pqr", "provider_answer_reconsideration"): (REG, None, "004"),
    ("pqr", "provider_silence_effects"): (REG, None, "004"),
    ("pqr", "provider_transfer_to_sic"): (REG, None, "004"),
    ("pqr", "provider_acknowledge_queja_sms"): (REG, None, "004"),
    ("pqr", "provider_call_queja_sms"): (REG, None, "004"),
}
# What names each seed in a source's document.
SEED_DOCUMENTS = {
    "000": "Bajas y Migraciones",
    "001": "00170-2020-CD/OSIPTEL",
    "002": "procedimiento interno del operador",
    "003": PORTABILITY_REGULATION,
    "004": "CRC",
}

CATALOGUED = {(flow.name, rule.key): rule for flow in FLOWS for rule in flow.rules}


def test_the_catalogue_is_the_table_written_from_the_seeds() -> None:
    assert sorted(CATALOGUED) == sorted(CATALOGUE)


@pytest.mark.parametrize(("flow", "key"), sorted(CATALOGUE))
def test_each_rule_names_its_source_and_a_severity_only_where_the_source_gives_one(
    flow: str, key: str
) -> None:
    kind, infraction, seed = CATALOGUE[(flow, key)]
    source = CATALOGUED[(flow, key)].source
    assert (source.kind, source.infraction) == (kind, infraction)
    assert SEED_DOCUMENTS[seed] in source.document
    if infraction is None:
        assert source.severity is None
        assert source.severity_label == "none"
    else:
        severity, article = INFRACTION_TABLE[infraction]
        assert source.severity is severity
        assert source.article is not None
        assert re.match(rf"art\. {article}\b", source.article), source.article
    if kind is CH:
        assert source.note, "the clearinghouse's own rules say why"


def test_every_rule_a_flow_defines_is_on_its_manifest() -> None:
    for flow in FLOWS:
        module = importlib.import_module(f"npc.flows.{flow.name}.rules")
        defined = {value for value in vars(module).values() if isinstance(value, Rule)}
        assert defined <= set(flow.rules), (flow.name, defined - set(flow.rules))
        assert len({rule.key for rule in flow.rules}) == len(flow.rules)


def test_the_inoperability_report_is_no_infraction_of_the_regulators_table() -> None:
    rule = CATALOGUED[("inoperability", "report_inoperability")]
    assert (rule.infraction, rule.severity) == (None, None)
    assert rule.source.kind is SourceKind.OPERATOR_PROCEDURE
    assert "regulatory department" in rule.description
    assert "to the regulator" not in rule.description


def test_a_rule_built_the_older_way_is_an_infraction_of_the_portability_table() -> None:
    numbered = Rule("late", 5, "art. 6", "grave", "recipient", "Have the technical facilities.")
    assert numbered.source == Source.regulation(
        PORTABILITY_REGULATION, article="art. 6", infraction=5, severity=Severity.GRAVE
    )
    assert (numbered.infraction, numbered.severity) == (5, "grave")
    plain = Rule("other", None, "art. 2.1.5.2", "leve", "provider", "Answer in time.")
    assert (plain.source.kind, plain.source.severity) == (SourceKind.REGULATION, None)
    with pytest.raises(ValueError, match="its severity"):
        Rule("unrated", 5, "art. 6", None, "recipient", "Have the technical facilities.")


@pytest.mark.parametrize(
    ("build", "wrong"),
    [
        (lambda: Source.regulation("003", infraction=20), "infraction number and its severity"),
        (lambda: Source.regulation("003", severity=Severity.LEVE), "infraction number"),
        (lambda: Source.clearinghouse("", basis="000"), "says why"),
        (lambda: Source.regulation(""), "names its document"),
        (lambda: Source(SourceKind.OPERATOR_PROCEDURE, "002", None, 3, L), "only the regulator"),
        (
            lambda: Rule("x", 20, party="donor", description="d", source=Source.regulation("3")),
            "not its parts",
        ),
        (lambda: Rule("x", party="", description="d", source=Source.regulation("3")), "party"),
    ],
)
def test_sources_and_rules_refuse_what_no_seed_says(build, wrong) -> None:
    with pytest.raises(ValueError, match=wrong):
        build()


def test_zero_series_cover_every_rule_for_every_operator_of_its_country() -> None:
    flows = {flow.name: flow.rules for flow in FLOWS}
    catalogue = [
        ("inoperability", flows["inoperability"], ["claro", "entel"]),
        ("pqr", flows["pqr"], ["claro-co"]),
    ]
    labels = set(series(catalogue))
    assert ("inoperability", "report_inoperability", "none", "entel") in labels
    assert ("pqr", "provider_call_queja_sms", "none", "claro-co") in labels
    assert not any(operator == "claro-co" for flow, _, _, operator in labels if flow != "pqr")
    assert len(labels) == 2 + len(flows["pqr"])
    portability = set(series([("portability", flows["portability"], ["bitel"])]))
    assert ("portability", "improper_objection", "muy_grave", "bitel") in portability


@pytest.mark.parametrize(
    ("wire", "domain"),
    [(events_pb2.RuleSourceKind, SourceKind), (events_pb2.InfractionSeverity, Severity)],
)
def test_source_kinds_and_severities_travel_by_name(wire: Any, domain: Any) -> None:
    mapped = WireEnum(wire, domain)
    for member in domain:
        assert mapped.to_wire(member) != 0
        assert mapped.to_domain(mapped.to_wire(member)) is member
    assert len(wire.keys()) == len(domain) + 1  # and the unspecified value
