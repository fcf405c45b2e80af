"""The dashboards cannot run here (no Docker): check that Prometheus scrapes every process in both
stacks, that every metric and label the Grafana dashboard queries is one the processes serve, and that
Grafana's provisioning (data source, dashboards provider, dashboard) fits together."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from shared.settings import HEALTH_PORTS, PROCESSES, Settings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "deploy" / "local"))

from localstack.components import Prometheus, all_components  # noqa: E402

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
PROMETHEUS_YML = REPO / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCES = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
PROVIDERS = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "shop.yml").read_text())
# Labels Prometheus gives every series of a target: its job and address, and the static config's own.
TARGET_LABELS = {"job", "instance", "process"}
# What Prometheus records of each scrape itself.
SCRAPE_SERIES = {"up"}


def shop_targets(config: dict) -> dict[str, str]:
    """process label -> target, of the job that scrapes the system's processes."""
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "shop"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = {}
    for static in job["static_configs"]:
        [target] = static["targets"]
        targets[static["labels"]["process"]] = target
    return targets


def volume_target(service: str, source: str) -> str:
    [target] = [v.split(":")[1] for v in SERVICES[service]["volumes"] if v.split(":")[0] == source]
    return target


# -- Prometheus ---------------------------------------------------------------------------------------


def test_compose_prometheus_scrapes_every_process_at_its_container_and_health_port():
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    assert shop_targets(config) == {p: f"{p}:{HEALTH_PORTS[p]}" for p in PROCESSES}
    for process in PROCESSES:  # each listens there on every interface of its container
        environment = SERVICES[process]["environment"]
        assert environment["HEALTH_PORT"] == HEALTH_PORTS[process]
        assert environment["HEALTH_HOST"] == "0.0.0.0"


def test_the_local_stack_scrapes_the_same_processes_on_loopback():
    [local] = [c for c in all_components(Settings()) if isinstance(c, Prometheus)]
    config = yaml.safe_load(local.scrape_config())
    assert shop_targets(config) == {p: f"127.0.0.1:{HEALTH_PORTS[p]}" for p in PROCESSES}
    compose = yaml.safe_load(PROMETHEUS_YML.read_text())
    for job in (*compose["scrape_configs"], *config["scrape_configs"]):
        for static in job["static_configs"]:
            static["targets"] = [t.split(":")[1] for t in static["targets"]]
    assert config == compose, "only the targets' hosts differ"


def test_compose_prometheus_runs_the_file_on_loopback_with_a_healthcheck_and_its_own_volume():
    prometheus = SERVICES["prometheus"]
    assert (
        volume_target("prometheus", "./deploy/prometheus/prometheus.yml") == "/etc/prometheus/prometheus.yml"
    )
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert "--storage.tsdb.path=/prometheus" in prometheus["command"]
    assert volume_target("prometheus", "prometheus-data") == "/prometheus"
    assert "prometheus-data" in COMPOSE["volumes"]
    assert prometheus["ports"] == ["127.0.0.1:9090:9090"]
    assert "http://localhost:9090/-/ready" in prometheus["healthcheck"]["test"]
    assert prometheus["restart"] == SERVICES["jaeger"]["restart"] == "unless-stopped"


def test_prometheus_has_the_same_host_port_in_both_stacks():
    [local] = [c for c in all_components(Settings()) if isinstance(c, Prometheus)]
    assert set(local.ports.values()) == {9090}
    assert Settings.model_fields["prometheus_url"].default == "http://localhost:9090"


def test_the_compose_image_is_the_release_the_local_stack_builds():
    # Prometheus 3.M.P is module v0.3MM.P of github.com/prometheus/prometheus.
    go_mod = (REPO / "deploy" / "local" / "prometheus" / "go.mod").read_text()
    minor, patch = re.search(r"github.com/prometheus/prometheus v0\.3(\d\d)\.(\d+)\n", go_mod).groups()
    assert SERVICES["prometheus"]["image"] == f"prom/prometheus:v3.{int(minor)}.{patch}"


# -- Grafana ------------------------------------------------------------------------------------------


def test_grafana_views_without_a_login_on_loopback_and_changes_nothing():
    grafana = SERVICES["grafana"]
    assert grafana["ports"] == ["127.0.0.1:3000:3000"]
    assert grafana["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
    environment = grafana["environment"]
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    # Nobody logs in, so no password is needed, and the image's default admin/admin cannot be used.
    assert environment["GF_AUTH_DISABLE_LOGIN_FORM"] == "true"
    assert environment["GF_AUTH_BASIC_ENABLED"] == "false"
    assert not [k for k in environment if "PASSWORD" in k] and "env_file" not in grafana
    assert "/api/health" in " ".join(grafana["healthcheck"]["test"])
    assert grafana["restart"] == "unless-stopped"
    for volume in grafana["volumes"]:
        assert volume.startswith("./deploy/grafana/") and volume.endswith(":ro"), volume


def test_grafana_provisions_the_prometheus_of_compose_and_the_dashboards_folder():
    assert volume_target("grafana", "./deploy/grafana/provisioning") == "/etc/grafana/provisioning"
    [datasource] = DATASOURCES["datasources"]
    assert datasource["type"] == "prometheus" and datasource["isDefault"]
    assert datasource["url"] == "http://prometheus:9090"  # the compose service, on its port
    assert "127.0.0.1:9090:9090" in SERVICES["prometheus"]["ports"]
    [provider] = PROVIDERS["providers"]
    mounted = volume_target("grafana", "./deploy/grafana/dashboards")
    assert provider["type"] == "file" and provider["options"]["path"] == mounted
    assert not provider["allowUiUpdates"]
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).parent == Path(mounted) and (GRAFANA / "dashboards" / Path(home).name).is_file()


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_the_dashboard_is_valid_and_every_panel_reads_the_provisioned_datasource(path):
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["title"] and not dashboard["editable"]
    [datasource] = DATASOURCES["datasources"]
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels), "panel ids are unique"
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for source in (panel["datasource"], *(t["datasource"] for t in panel["targets"])):
            assert source == {"type": "prometheus", "uid": datasource["uid"]}, panel["title"]


# -- what the dashboard queries exists ----------------------------------------------------------------

SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}


def defined_metrics() -> dict[str, tuple[str, set[str]]]:
    """Every metric the code defines with prometheus_client: name -> (type, label names)."""
    kinds = {"Counter": "counter", "Gauge": "gauge", "Histogram": "histogram", "Summary": "summary"}
    found: dict[str, tuple[str, set[str]]] = {}
    for path in [*(REPO / "shared").rglob("*.py"), *(REPO / "services").rglob("*.py")]:
        source = path.read_text()
        if "prometheus_client" not in source:
            continue
        for node in ast.walk(ast.parse(source)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in kinds):
                continue
            if not (node.args and isinstance(node.args[0], ast.Constant)):
                continue
            labels = node.args[2] if len(node.args) > 2 else None
            labels = next((k.value for k in node.keywords if k.arg == "labelnames"), labels)
            names = set(ast.literal_eval(labels)) if labels is not None else set()
            name = node.args[0].value.removesuffix("_total")
            found[name] = (kinds[node.func.id], names)
    return found


def served_series() -> dict[str, set[str]]:
    """Every series name a process's /metrics serves -> its label names: the runtime's metrics and
    prometheus_client's own (process_*, python_*, all in the default registry that /metrics serves)."""
    from prometheus_client import REGISTRY

    import shared.messaging.metrics  # noqa: F401 (defines the runtime's metrics in the registry)

    defined = defined_metrics()
    registered = {family.name for family in REGISTRY.collect()}
    assert set(defined) <= registered, "the code's metrics are what the registry has"
    series: dict[str, set[str]] = {}
    for name, (kind, labels) in defined.items():
        for suffix in SUFFIXES[kind]:
            series[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    for family in REGISTRY.collect():
        if family.name not in defined:
            for sample in family.samples:
                series.setdefault(sample.name, set()).update(sample.labels)
    return series


KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset"}  # fmt: skip


def parse(expr: str) -> tuple[set[str], set[str], set[str], dict[str, set[str]]]:
    """A PromQL expression's metric names, the labels its selectors match and its aggregations keep,
    and each matched label's values: enough PromQL for what dashboards write."""
    values: dict[str, set[str]] = {}
    matched: set[str] = set()
    for selector in re.findall(r"\{([^}]*)\}", expr):
        for label, value in re.findall(r'([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*"([^"]*)"', selector):
            matched.add(label)
            values.setdefault(label, set()).add(value)
    kept = {
        label.strip()
        for clause in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
        for label in clause.split(",")
        if label.strip()
    }
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b(?:by|without)\s*\([^)]*\)", " ", expr)
    metrics = {
        m.group()
        for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare)
        if m.group() not in KEYWORDS
        and not bare[m.end() :].lstrip().startswith("(")  # a function
        and not bare[: m.start()].endswith(("$", "."))  # a variable, a number's digits
        and not bare[: m.start()][-1:].isdigit()
    }
    return metrics, matched, kept, values


def dashboard_targets() -> list[tuple[str, str, str]]:
    return [
        (f"{path.name}: {panel['title']}", target["expr"], target.get("legendFormat", ""))
        for path in DASHBOARD_FILES
        for panel in json.loads(path.read_text())["panels"]
        for target in panel.get("targets", [])
    ]


def test_the_parser_reads_the_dashboards_kind_of_promql():
    metrics, matched, kept, values = parse(
        'histogram_quantile(0.99, sum by (group, le) (rate(shop_handler_seconds_bucket{process="order"}'
        "[$__rate_interval]))) or vector(0) + max(up)"
    )
    assert metrics == {"shop_handler_seconds_bucket", "up"}
    assert (matched, kept, values) == ({"process"}, {"group", "le"}, {"process": {"order"}})


@pytest.mark.parametrize(("panel", "expr", "legend"), dashboard_targets(), ids=lambda v: str(v)[:60])
def test_every_metric_and_label_the_dashboard_queries_is_served(panel, expr, legend):
    series = served_series()
    metrics, matched, kept, values = parse(expr)
    assert metrics, f"{panel}: no metric in {expr}"
    for name in metrics:
        assert name in series or name in SCRAPE_SERIES, f"{panel}: {name} is not served by any process"
    labels = TARGET_LABELS.union(*(series.get(name, set()) for name in metrics))
    assert matched <= labels and kept <= labels, f"{panel}: {(matched | kept) - labels} in {expr}"
    assert values.get("process", set()) <= set(PROCESSES), panel
    assert values.get("job", {"shop"}) == {"shop"}, panel
    shown = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
    assert shown <= ((kept - {"le"}) or labels), f"{panel}: the legend shows {shown - kept}"


def test_the_dashboard_shows_what_operators_watch():
    queried = set().union(*(parse(expr)[0] for _, expr, _ in dashboard_targets()))
    assert queried >= {
        "shop_consumer_lag",
        "shop_messages_handled_total",
        "shop_dead_lettered_total",
        "shop_outbox_backlog",
        "shop_handler_seconds_bucket",
        "shop_sagas_open",
        "shop_saga_oldest_open_seconds",
    }
