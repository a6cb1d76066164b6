"""deploy/ checked by parsing: no container engine runs here, so the files must agree on paper.

Compose, Kubernetes, nats.conf and the Dockerfile name the same users, passwords,
subjects, ports and paths; the commands they run must parse with the real `nons`
parser and load the real example network.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from nons import cli
from nons.cli._loading import load_networks
from nons.runtime.connection import URL_ENV_VAR, ConnectionSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
NATS_CONF = DEPLOY / "nats.conf"
TARGET = "examples.quickstart:network"
ROLES = ("coordinator", "actor")
SECRET = "nons-secrets"
KEY_PATTERN = re.compile(r"sk-ant-[A-Za-z0-9_-]{20,}|sk-(proj-)?[A-Za-z0-9]{32,}")
COMPOSE_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
CONF_VARIABLE = re.compile(r"password:\s*\$(?P<name>[A-Z_]+)")


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml"})


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def defaults(value: str) -> str:
    """A compose value as compose would see it with none of its variables set."""
    return COMPOSE_VARIABLE.sub(lambda m: m.group("default") or "", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    (document,) = load_all(DEPLOY / "compose.yaml")
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = compose["services"]
    return result


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    paths = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    return [doc for path in paths for doc in load_all(path)]


def find(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    return found


def conf_password_variables() -> set[str]:
    return set(CONF_VARIABLE.findall(NATS_CONF.read_text(encoding="utf-8")))


# -- every file -------------------------------------------------------------------------


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path) -> None:
    documents = load_all(path)
    assert documents, f"{path} holds no document"
    assert all(isinstance(doc, dict) for doc in documents)


def test_expected_files_exist() -> None:
    names = {str(p.relative_to(DEPLOY)) for p in DEPLOY.rglob("*") if p.is_file()}
    assert {
        "Dockerfile",
        "compose.yaml",
        "nats.conf",
        "README.md",
        "k8s/kustomization.yaml",
        "k8s/secret.example.yaml",
    } <= names


def test_no_file_contains_anything_like_a_real_key() -> None:
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not KEY_PATTERN.search(text), f"{path} contains what looks like an API key"


def test_the_example_target_exists_and_loads() -> None:
    source = ROOT / "examples" / "quickstart.py"
    assert source.is_file()
    assert re.search(r"^network\s*=", source.read_text(encoding="utf-8"), re.MULTILINE)
    (network,) = load_networks(TARGET, search_path=ROOT)
    assert network.name == "quickstart"


# -- compose ----------------------------------------------------------------------------


def test_compose_has_the_four_services(services: dict[str, Any]) -> None:
    assert set(services) == {"nats", "jaeger", "coordinator", "actor"}


def test_nats_service_runs_the_config_with_jetstream_and_a_healthcheck(
    services: dict[str, Any],
) -> None:
    nats = services["nats"]
    assert nats["image"].startswith("nats:2.10")
    assert nats["command"] == ["-js", "-c", "/etc/nats/nats.conf"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in nats["volumes"]}
    assert (DEPLOY / mounts["/etc/nats/nats.conf"]).resolve() == NATS_CONF
    assert "/data/jetstream" in mounts
    assert "store_dir: /data/jetstream" in NATS_CONF.read_text(encoding="utf-8")
    probe = " ".join(nats["healthcheck"]["test"])
    assert ":8222/healthz" in probe
    assert "http_port: 8222" in NATS_CONF.read_text(encoding="utf-8")
    assert set(nats["environment"]) == conf_password_variables()


def test_jaeger_receives_otlp_and_serves_its_ui(services: dict[str, Any]) -> None:
    jaeger = services["jaeger"]
    assert jaeger["image"].startswith("jaegertracing/all-in-one:")
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    published = {port.rsplit(":", 1)[1] for port in jaeger["ports"]}
    assert {"16686", "4317", "4318"} <= published


@pytest.mark.parametrize("role", ROLES)
def test_runtime_services_parse_with_the_cli_and_load_the_example(
    services: dict[str, Any], role: str
) -> None:
    service = services[role]
    assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY / ".." / "pyproject.toml").is_file()
    args = cli.build_parser().parse_args(service["command"])
    assert args.command == role
    assert args.targets == [TARGET]
    assert load_networks(args.targets[0], search_path=ROOT)[0].name == "quickstart"
    if role == "actor":
        assert args.concurrency == 32
        assert service["deploy"]["replicas"] == 2
    for dependency in ("nats", "jaeger"):
        assert dependency in service["depends_on"]
    assert service["depends_on"]["nats"]["condition"] == "service_healthy"


@pytest.mark.parametrize("role", ROLES)
def test_runtime_services_send_spans_to_jaeger(services: dict[str, Any], role: str) -> None:
    environment = services[role]["environment"]
    assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317"
    assert environment["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert environment["OTEL_SERVICE_NAME"] == f"nons-{role}"


def test_only_actors_get_the_api_key(services: dict[str, Any]) -> None:
    assert services["actor"]["environment"]["ANTHROPIC_API_KEY"] == "${ANTHROPIC_API_KEY:-}"
    assert "ANTHROPIC_API_KEY" not in services["coordinator"]["environment"]


@pytest.mark.parametrize("role", ROLES)
def test_runtime_services_connect_as_their_own_user(services: dict[str, Any], role: str) -> None:
    url = services[role]["environment"][URL_ENV_VAR]
    variable = f"NATS_{role.upper()}_PASSWORD"
    assert f"${{{variable}:-" in url
    settings = ConnectionSettings(url=defaults(url))
    assert settings.url.startswith(f"nats://{role}:")
    assert settings.url.endswith("@nats:4222")
    password = defaults(url).split(":")[2].split("@")[0]
    assert password == defaults(services["nats"]["environment"][variable])
    assert "local" in password  # the default says it is for local use only


def test_compose_password_defaults_are_marked_local_only(services: dict[str, Any]) -> None:
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    assert "local use only" in text
    for variable, value in services["nats"]["environment"].items():
        assert value.startswith(f"${{{variable}:-"), variable
        assert defaults(value).endswith("-local-only")


# -- Kubernetes -------------------------------------------------------------------------


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    (kustomization,) = load_all(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk - {"secret.example.yaml"}
    assert kustomization["namespace"] == "nons"


def test_every_resource_is_in_the_nons_namespace(manifests: list[dict[str, Any]]) -> None:
    kinds = {m["kind"] for m in manifests}
    assert {"Namespace", "ConfigMap", "Secret", "StatefulSet", "Deployment", "Service"} <= kinds
    for manifest in manifests:
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"]["namespace"] == "nons", manifest["metadata"]["name"]


def test_nats_statefulset_uses_the_same_config_and_a_volume(
    manifests: list[dict[str, Any]],
) -> None:
    config = find(manifests, "ConfigMap", "nats-config")
    assert config["data"]["nats.conf"] == NATS_CONF.read_text(encoding="utf-8")
    statefulset = find(manifests, "StatefulSet", "nats")
    assert statefulset["spec"]["replicas"] == 1
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["-js", "-c", "/etc/nats/nats.conf"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"config": "/etc/nats", claim["metadata"]["name"]: "/data/jetstream"}
    secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e
    }
    assert set(secrets) == conf_password_variables()
    assert all(ref["name"] == SECRET and not ref.get("optional") for ref in secrets.values())
    assert container["livenessProbe"]["httpGet"]["path"].startswith("/healthz")
    service = find(manifests, "Service", "nats")
    assert {p["port"] for p in service["spec"]["ports"]} == {4222, 8222}


def test_jaeger_deployment_receives_otlp(manifests: list[dict[str, Any]]) -> None:
    deployment = find(manifests, "Deployment", "jaeger")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {"name": "COLLECTOR_OTLP_ENABLED", "value": "true"} in container["env"]
    service = find(manifests, "Service", "jaeger")
    assert {p["port"] for p in service["spec"]["ports"]} == {16686, 4317, 4318}


def test_shared_config_points_at_nats_and_jaeger(manifests: list[dict[str, Any]]) -> None:
    data = find(manifests, "ConfigMap", "nons-config")["data"]
    assert data["NATS_ADDRESS"].startswith("nats.nons.svc")
    assert data["NATS_ADDRESS"].endswith(":4222")
    assert data["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://jaeger.nons.svc")
    assert data["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4317")
    assert data["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert not any("PASSWORD" in key or "KEY" in key for key in data)


@pytest.mark.parametrize("role", ROLES)
def test_runtime_deployments(manifests: list[dict[str, Any]], role: str) -> None:
    deployment = find(manifests, "Deployment", f"nons-{role}")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    args = cli.build_parser().parse_args(container["args"])
    assert (args.command, args.targets) == (role, [TARGET])
    assert container["envFrom"] == [{"configMapRef": {"name": "nons-config"}}]
    assert {"requests", "limits"} <= set(container["resources"])
    env = {e["name"]: e for e in container["env"]}
    assert env["OTEL_SERVICE_NAME"]["value"] == f"nons-{role}"
    assert env["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": SECRET,
        "key": f"NATS_{role.upper()}_PASSWORD",
    }
    names = list(env)
    assert names.index("NATS_PASSWORD") < names.index(URL_ENV_VAR)  # $(...) sees it
    url = env[URL_ENV_VAR]["value"]
    assert url == f"nats://{role}:$(NATS_PASSWORD)@$(NATS_ADDRESS)"


@pytest.mark.parametrize("role", ROLES)
def test_secrets_come_from_secret_key_refs_never_literals(
    manifests: list[dict[str, Any]], role: str
) -> None:
    pod = find(manifests, "Deployment", f"nons-{role}")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    if role == "coordinator":
        assert "ANTHROPIC_API_KEY" not in env  # only actors call models
    else:
        api_key = env["ANTHROPIC_API_KEY"]
        assert "value" not in api_key
        assert api_key["valueFrom"]["secretKeyRef"] == {
            "name": SECRET,
            "key": "ANTHROPIC_API_KEY",
            "optional": True,
        }
    for name, entry in env.items():
        if "PASSWORD" in name or "KEY" in name:
            assert "value" not in entry, f"{name} must come from the Secret"


def test_secret_template_has_placeholders_only(manifests: list[dict[str, Any]]) -> None:
    secret = find(manifests, "Secret", SECRET)
    values = secret["stringData"]
    assert set(values) == conf_password_variables() | {"ANTHROPIC_API_KEY"}
    assert all(value.startswith("REPLACE-ME") for value in values.values())


# -- Dockerfile -------------------------------------------------------------------------


def test_dockerfile_installs_the_project_and_runs_nons_as_non_root() -> None:
    lines = [
        line.strip()
        for line in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    assert any(line.startswith("RUN pip install") for line in lines)
    assert "COPY examples ./examples" in lines
    (user,) = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert user.split(":")[0] not in {"0", "root"}
    assert lines.index(f"USER {user}") > max(
        i for i, line in enumerate(lines) if line.startswith("RUN ")
    )
    assert 'ENTRYPOINT ["nons"]' in lines
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    for kept in ("!pyproject.toml", "!README.md", "!nons/**", "!examples/**"):
        assert kept in ignore
