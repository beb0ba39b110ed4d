"""The files of ops/: Prometheus configuration and rules (checked and unit-tested by promtool),
Grafana dashboards whose every query names series the server exports, and a runbook line for
every alert."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from npc.config import Settings
from npc.core.clock import FakeClock
from npc.embedded import EmbeddedRedis
from tests.conftest import DEFAULT_START, DatabaseSupply, Operators
from tests.helpers import running
from tests.ops.conftest import Traffic, driven

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops"
RULE_FILES = sorted((OPS / "rules").glob("npc-*.yml"))
RULES = [p for p in RULE_FILES if not p.name.endswith(".test.yml")]
DASHBOARDS = sorted((OPS / "grafana" / "dashboards").glob("*.json"))

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or"}
_KEYWORDS |= {"unless", "offset", "inf", "nan"}
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Series Prometheus itself adds to every scrape.
_SCRAPE_SERIES = {"up"}


def promtool() -> str:
    """The promtool binary; in CI (CI=true) its absence is a failure, not a skip."""
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: ./dev setup installs Debian's prometheus package")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool from ops/rules (rule test files name their rules relative to it)."""
    return subprocess.run(
        [promtool(), *args], cwd=OPS / "rules", capture_output=True, text=True, timeout=120
    )


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (recording rules' names included)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        before = expr[match.start() - 1] if match.start() else " "
        if before.isdigit() or before == ".":
            continue  # an exponent (1e3) or a duration's unit
        if expr[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group().lower() not in _KEYWORDS:
            names.add(match.group())
    return names


def base_name(name: str) -> str:
    """A histogram's name without its sample suffix."""
    for suffix in _HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def rules() -> Iterator[dict[str, Any]]:
    """Every recording and alerting rule."""
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield from group["rules"]


def recorded() -> set[str]:
    """Names of the recording rules."""
    return {rule["record"] for rule in rules() if "record" in rule}


def panel_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, expression) of every panel target and template variable of a dashboard."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        found = re.match(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,", text)
        if found:
            yield f"variable {variable['name']}", found.group(1)


@pytest.fixture(scope="module")
def traffic(database_supply: DatabaseSupply, redis_server: EmbeddedRedis) -> Iterator[Traffic]:
    """/metrics of one clearinghouse after the traffic of `driven`, shared by the file checks:
    they only read which series are exported (the metrics tests keep one server each)."""
    name, dsn = database_supply.take()

    async def observe() -> Traffic:
        settings = Settings(
            database_url=dsn,
            redis_url=redis_server.url,
            redis_prefix=f"ops-files{os.getpid()}",
            grpc_port=0,
            http_port=0,
            db_pool_size=10,
        )
        clock = FakeClock(DEFAULT_START)
        async with running(settings, clock) as app:
            operators = Operators(f"127.0.0.1:{app.grpc_port}")
            try:
                async with driven(app, operators, clock) as seen:
                    return seen
            finally:
                await operators.close()

    try:
        yield asyncio.run(observe())
    finally:
        database_supply.drop(name)


def exported(traffic: Traffic) -> set[str]:
    """Names the server declares at /metrics (histograms by their base name)."""
    return {base_name(name) for name in traffic.after} | set(traffic.families)


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (flow, le) (rate(npc_x_bucket{le="1.0"}[$__rate_interval])))'
        " / on (flow) group_left npc:y:rate5m > bool 1e3 and npc_z offset 5m"
    )
    assert metric_names(expr) == {"npc_x_bucket", "npc:y:rate5m", "npc_z"}


@pytest.mark.slow
def test_prometheus_config_and_rules_pass_promtool_check() -> None:
    checked = subprocess.run(
        [promtool(), "check", "config", str(OPS / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for path in RULES:
        assert path.name in (OPS / "prometheus.yml").read_text()


@pytest.mark.slow
def test_alerts_behave_as_their_unit_tests_expect() -> None:
    result = run_promtool("test", "rules", "npc-alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


RUNBOOK_URL = "https://github.com/npc-clearinghouse/npc/blob/main/ops/runbook.md#"


def test_every_alert_has_a_runbook_url_naming_a_section_of_the_runbook() -> None:
    sections = {
        line[3:].strip().lower()
        for line in (OPS / "runbook.md").read_text().splitlines()
        if line.startswith("## ")
    }
    alerts = [rule for rule in rules() if "alert" in rule]
    assert len(alerts) >= 10
    problems = []
    for alert in alerts:
        url = alert.get("annotations", {}).get("runbook_url", "")
        anchor = url.removeprefix(RUNBOOK_URL)
        if not url.startswith(RUNBOOK_URL) or anchor != alert["alert"].lower():
            problems.append((alert["alert"], url))
        elif anchor not in sections:
            problems.append((alert["alert"], "no such section in ops/runbook.md"))
    assert not problems, problems


def test_scrape_target_labels_do_not_clash_with_the_servers_labels(traffic: Traffic) -> None:
    config = yaml.safe_load((OPS / "prometheus.yml").read_text())
    target_labels = {
        label
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for label in static.get("labels", {})
    }
    assert target_labels, "the targets carry no label: the check would prove nothing"
    assert not target_labels & exported_labels(traffic)
    # The labels the RPC rules group by are the server's own, not renamed exported_*.
    assert {"service", "method"} <= exported_labels(traffic)


def exported_labels(traffic: Traffic) -> set[str]:
    """Every label name the server's samples carry."""
    return {name for samples in traffic.after.values() for labels, _ in samples for name in labels}


def test_rules_select_only_series_the_server_exports(traffic: Traffic) -> None:
    known = exported(traffic) | recorded() | _SCRAPE_SERIES
    unknown = {
        (rule.get("record") or rule.get("alert"), name)
        for rule in rules()
        for name in metric_names(rule["expr"])
        if base_name(name) not in known and name not in known
    }
    assert not unknown, f"rules selecting series nobody exports: {sorted(unknown)}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_dashboard_panels_query_exported_series(path: Path, traffic: Traffic) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["panels"]
    known = exported(traffic) | _SCRAPE_SERIES
    rule_names = recorded()
    # A variable, not a uid: the dashboards import into any Grafana.
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "npc-prometheus" not in path.read_text()
    problems = []
    for panel in dashboard["panels"]:
        assert panel["datasource"] == datasource, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
    for title, expr in panel_queries(dashboard):
        names = metric_names(expr)
        if not names:
            problems.append((title, "selects no series", expr))
        for name in names:
            if ":" in name:
                if name not in rule_names:
                    problems.append((title, "no such recording rule", name))
            elif base_name(name) not in known and name not in known:
                problems.append((title, "not exported by the server", name))
    assert not problems, problems


def test_grafana_provisioning_points_at_the_dashboards_datasource() -> None:
    provisioning = OPS / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())
    assert [s["uid"] for s in sources["datasources"]] == ["npc-prometheus"]
    providers = yaml.safe_load((provisioning / "dashboards" / "npc.yaml").read_text())
    assert providers["providers"][0]["type"] == "file"
    assert len(DASHBOARDS) == 5


def test_compose_mounts_files_that_exist() -> None:
    compose = yaml.safe_load((OPS / "compose.yaml").read_text())
    mounts = [
        volume.split(":")[0]
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith("./")
    ]
    assert len(mounts) == 4
    missing = [m for m in mounts if not (OPS / m).exists()]
    assert not missing, missing
    # Grafana finds the provisioning where it looks, and the dashboards where the provider says.
    grafana = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    providers = yaml.safe_load((OPS / "grafana/provisioning/dashboards/npc.yaml").read_text())
    assert grafana["./grafana/provisioning"] == "/etc/grafana/provisioning"
    assert grafana["./grafana/dashboards"] == providers["providers"][0]["options"]["path"]
    # Prometheus reads rule files relative to its configuration: the rules are mounted there.
    prometheus = dict(v.split(":")[:2] for v in compose["services"]["prometheus"]["volumes"])
    config = PurePosixPath(prometheus["./prometheus.yml"])
    assert f"--config.file={config}" in compose["services"]["prometheus"]["command"]
    for rule_file in yaml.safe_load((OPS / "prometheus.yml").read_text())["rule_files"]:
        assert (config.parent / rule_file).parent == PurePosixPath(prometheus["./rules"])
    # Grafana's datasource is the Prometheus the compose file runs.
    sources = yaml.safe_load((OPS / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    listen = [
        arg.split("=", 1)[1]
        for arg in compose["services"]["prometheus"]["command"]
        if arg.startswith("--web.listen-address=")
    ]
    assert [s["url"] for s in sources["datasources"]] == [f"http://{a}" for a in listen]
