"""The scale-out overlays (deploy/compose.scale.yaml, deploy/compose.qdrant-cluster.yaml), checked offline.

No container runs here, so, as test_compose.py does for compose.yaml, every promise is checked against the files:
each overlay merged onto compose.yaml (by the Compose Specification's merge rules, `!reset`/`!override`
included) must match the Compose schema, and the merged model must wire what docs/scaling.md says (one
published API port on the proxy, one spool and one Redis for producers and workers, three Qdrant nodes). The
redis and proxy images' own files are run by the real programs in
tests/integration/deploy/test_redis_and_proxy_programs.py.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_compose import check_jsonschema, module_file, python_modules_in, strings
from test_dockerfiles import global_args, instructions
from test_dockerfiles import test_dockerfiles_pass_hadolint as assert_hadolint_passes

from services.core.settings import Settings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]
SCALE = ROOT / "deploy/compose.scale.yaml"
CLUSTER = ROOT / "deploy/compose.qdrant-cluster.yaml"
AIRGAP = ROOT / "deploy/compose.airgap.yaml"
HAPROXY_CFG = ROOT / "deploy/proxy/haproxy.cfg"
REDIS_CONF = ROOT / "deploy/redis/redis.conf"
REDIS_START = ROOT / "deploy/redis/start.sh"
OUR_DOCKERFILES = [ROOT / "deploy/redis/Dockerfile", ROOT / "deploy/proxy/Dockerfile"]
SECRETS = {
    "RAG_API_KEY": "api-key",
    "RAG_QDRANT_API_KEY": "qdrant-key",
    "REDIS_PASSWORD": "0123abcd",
    "POSTGRES_PASSWORD": "4567ef",
}
QUEUE_USERS = ("api", "ingest", "worker")  # the producers and the consumer of ingest jobs


# --- the merged model --------------------------------------------------------------------------------------


class Reset:
    """`!reset`: drop whatever the files before said for this key."""


@dataclass(frozen=True)
class Override:
    """`!override VALUE`: replace, do not merge, what the files before said."""

    value: Any


class ComposeLoader(yaml.SafeLoader):
    """A safe loader that also reads Compose's merge tags."""


def _override(loader: yaml.SafeLoader, node: yaml.Node) -> Override:
    if isinstance(node, yaml.MappingNode):
        return Override(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    return Override(loader.construct_scalar(node))  # type: ignore[arg-type]


ComposeLoader.add_constructor("!reset", lambda _loader, _node: Reset())
ComposeLoader.add_constructor("!override", _override)


def load(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=ComposeLoader)


def plain(node: Any) -> Any:
    """A value with its tags resolved, for a key the files before did not have."""
    if isinstance(node, Override):
        return plain(node.value)
    if isinstance(node, dict):
        return {k: plain(v) for k, v in node.items() if not isinstance(v, Reset)}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def mount_target(volume: str | dict[str, Any]) -> str:
    return volume["target"] if isinstance(volume, dict) else volume.split(":")[1]


def merge(base: Any, over: Any, path: tuple[str, ...] = ()) -> Any:
    """Compose's merge of one file onto another (compose-spec merge.md): mappings merge key by key; command,
    entrypoint and healthcheck.test are replaced; service volumes merge by mount target; other sequences
    append what is new; `!override` replaces and `!reset` removes."""
    if isinstance(over, Override):
        return plain(over.value)
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            if isinstance(value, Reset):
                out.pop(key, None)
            else:
                out[key] = merge(out[key], value, (*path, key)) if key in out else plain(value)
        return out
    if isinstance(base, list) and isinstance(over, list):
        if path[-1] in ("command", "entrypoint") or path[-2:] == ("healthcheck", "test"):
            return plain(over)
        if len(path) == 3 and path[0] == "services" and path[2] == "volumes":
            replaced = {mount_target(v) for v in over}
            return [v for v in base if mount_target(v) not in replaced] + plain(over)
        return base + [v for v in plain(over) if v not in base]
    return plain(over)


def merged(*overlays: Path) -> dict[str, Any]:
    model = load(ROOT / "compose.yaml")
    for overlay in overlays:
        model = merge(model, load(overlay))
    return model


VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(node: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.groups()
        value = env.get(name)
        if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
            raise KeyError(f"{name}: {arg}")
        if (op == ":-" and not value) or (op == "-" and value is None):
            return arg
        return value or ""

    if isinstance(node, dict):
        return {k: interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env) for v in node]
    return VARIABLE.sub(one, node) if isinstance(node, str) else node


def services(*overlays: Path, **env: str) -> dict[str, dict[str, Any]]:
    """The services of compose.yaml plus the overlays, as Compose runs them with only the secrets set."""
    return interpolate(merged(*overlays), {**SECRETS, **env})["services"]


COMPOSE = load(ROOT / "compose.yaml")
BASE_SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
SCALED = services(SCALE)
CLUSTERED = services(CLUSTER)
NEW_SERVICES = {
    SCALE: {"redis", "worker", "proxy"},
    CLUSTER: {"qdrant-2", "qdrant-3"},
}
COMBINATIONS = {
    "scale": [SCALE],
    "qdrant-cluster": [CLUSTER],
    "scale+qdrant-cluster": [SCALE, CLUSTER],
    "airgap+scale": [AIRGAP, SCALE],
}


def test_the_merge_replaces_resets_and_merges_as_compose_does() -> None:
    base = {"services": {"s": {"command": ["a"], "ports": ["1:1"], "volumes": ["x:/d", "y:/e"], "env": {"A": "1"}}}}
    over = yaml.load(
        "services:\n  s:\n    command: [b]\n    ports: !reset []\n    volumes: ['z:/d']\n    env: !override {B: '2'}\n",
        Loader=ComposeLoader,
    )
    assert merge(base, over) == {"services": {"s": {"command": ["b"], "volumes": ["y:/e", "z:/d"], "env": {"B": "2"}}}}
    assert interpolate("${A:-x} ${B-y} $${C}", {"B": ""}) == "x  ${C}"
    with pytest.raises(KeyError):
        interpolate("${REDIS_PASSWORD:?set it}", {})


@pytest.mark.parametrize("overlays", COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_compose_yaml_with_the_overlays_matches_the_compose_specification(overlays: list[Path], tmp_path: Path) -> None:
    model = tmp_path / "merged.json"
    model.write_text(json.dumps(merged(*overlays)))
    result = check_jsonschema(model)
    assert result.returncode == 0, result.stdout + result.stderr


PODMAN_COMPOSE = ROOT / ".venv-compose/bin/podman-compose"


@pytest.mark.skipif(not PODMAN_COMPOSE.exists(), reason="podman-compose is installed by make podman-setup")
def test_podman_compose_merges_the_overlays_into_the_same_model() -> None:
    """podman-compose 1.6's own merge and substitution (`--dry-run config`: it parses, prints, runs nothing,
    not even podman) agrees with the one above on what matters: nothing published by the API replicas, the
    replica counts (which it honours only with deploy.mode: replicated), one spool, node 1's volumes."""
    files = [arg for overlay in (SCALE, CLUSTER) for arg in ("-f", str(overlay))]
    result = subprocess.run(
        # --env-file /dev/null: a developer's .env (secrets, overrides) is neither read nor printed.
        [
            str(PODMAN_COMPOSE),
            "--dry-run",
            "--env-file",
            "/dev/null",
            "-f",
            str(ROOT / "compose.yaml"),
            *files,
            "config",
        ],
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT), **SECRETS, "WORKERS": "3"},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    theirs = yaml.safe_load(result.stdout)["services"]
    ours = services(SCALE, CLUSTER, WORKERS="3")
    assert "ports" not in theirs["api"] and theirs["proxy"]["ports"] == ["127.0.0.1:8000:8000"]
    for name in ("api", "worker"):
        assert theirs[name]["deploy"]["mode"] == "replicated", name
        assert str(theirs[name]["deploy"]["replicas"]) == ours[name]["deploy"]["replicas"], name
    assert ours["worker"]["deploy"]["replicas"] == "3"
    for name in (*QUEUE_USERS, "qdrant", "redis"):
        assert sorted(theirs[name]["volumes"]) == sorted(ours[name]["volumes"]), name
        assert theirs[name].get("environment") == ours[name].get("environment"), name
    assert set(theirs) == {n for n, s in ours.items() if not s.get("profiles")}


# --- what every new service promises ----------------------------------------------------------------------


@pytest.mark.parametrize("overlay", NEW_SERVICES, ids=lambda p: p.name)
def test_every_new_service_has_a_healthcheck_a_restart_policy_limits_and_rotated_logs(overlay: Path) -> None:
    model = services(overlay)
    assert set(model) - set(BASE_SERVICES) == NEW_SERVICES[overlay]
    for name in NEW_SERVICES[overlay]:
        service = model[name]
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), name
        assert service.get("restart") == "unless-stopped", name
        assert service["deploy"]["resources"]["limits"]["memory"], name
        assert service["logging"] == BASE_SERVICES["api"]["logging"], name


def test_the_services_built_or_run_from_this_repository_are_hardened_like_compose_yaml() -> None:
    hardening = {k: BASE_SERVICES["api"][k] for k in ("init", "security_opt", "cap_drop")}
    for name in ("redis", "worker", "proxy"):
        assert {k: SCALED[name].get(k) for k in hardening} == hardening, name


@pytest.mark.parametrize("overlays", COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_every_dependency_exists_and_waits_for_health(overlays: list[Path]) -> None:
    model = services(*overlays)
    for name, service in model.items():
        for dep, cond in (service.get("depends_on") or {}).items():
            assert dep in model, f"{name} depends on unknown service {dep}"
            assert cond["condition"] == "service_healthy", f"{name} -> {dep}"
            if cond.get("required", True) is False:
                assert model[dep].get("profiles"), f"{name} -> {dep}: optional only for a profile service"


@pytest.mark.parametrize("overlay", [SCALE, CLUSTER], ids=lambda p: p.name)
def test_no_secret_is_in_the_overlays(overlay: Path) -> None:
    text = overlay.read_text()
    for var in ("RAG_API_KEY", "RAG_QDRANT_API_KEY", "REDIS_PASSWORD"):
        uses = re.findall(r"\$\{" + var + r"([^}]*)\}", text)
        assert all(u.startswith(":?") for u in uses), f"{var} must be required (${{{var}:?...}})"
    for name, service in load(overlay)["services"].items():
        for key, value in plain(service.get("environment") or {}).items():
            if re.search(r"KEY|TOKEN|PASSWORD|SECRET", key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", str(value)), f"{name}.{key} = {value!r}"
    with pytest.raises(KeyError, match="REDIS_PASSWORD"):
        interpolate(merged(SCALE), {k: v for k, v in SECRETS.items() if k != "REDIS_PASSWORD"})


def test_images_are_pinned_and_state_lives_in_declared_named_volumes() -> None:
    for overlays in COMBINATIONS.values():
        model = merged(*overlays)
        declared = set(model["volumes"])
        for name, service in model["services"].items():
            if "build" not in service:
                assert ":" in service["image"] and not service["image"].endswith(":latest"), name
            for volume in service.get("volumes", []):
                source = volume.split(":")[0]
                if not source.startswith(("$", ".", "/")):
                    assert source in declared, f"{name}: volume {source} is not declared"
    assert [v for v in SCALED["redis"]["volumes"] if v.endswith(":/data")] == ["redis-data:/data"]


# --- compose.scale.yaml -----------------------------------------------------------------------------------


def test_the_proxy_is_the_only_service_publishing_the_api_port() -> None:
    raw = merged(SCALE)["services"]
    published = {name: s["ports"] for name, s in raw.items() if s.get("ports")}
    assert published == {
        "proxy": ["${PUBLISH_ADDRESS:-127.0.0.1}:${API_PORT:-8000}:8000"],
        "frontend": BASE_SERVICES["frontend"]["ports"],
        "phoenix": BASE_SERVICES["phoenix"]["ports"],
    }
    assert "ports" in load(SCALE)["services"]["api"] and "ports" not in raw["api"], "reset, not just left out"


def test_api_replicas_and_workers_scale_with_variables_and_the_proxy_has_room_for_them() -> None:
    raw = merged(SCALE)["services"]
    assert raw["api"]["deploy"]["replicas"] == "${API_REPLICAS:-2}"
    assert raw["worker"]["deploy"]["replicas"] == "${WORKERS:-2}"
    for name in ("api", "worker"):
        # podman-compose 1.6 creates one container unless the mode is spelled out.
        assert raw[name]["deploy"]["mode"] == "replicated", name
        assert "container_name" not in raw[name], f"{name}: replicas cannot share a container name"
        assert raw[name]["deploy"]["resources"]["limits"]["memory"], name
    assert services(SCALE, API_REPLICAS="5", WORKERS="7")["worker"]["deploy"]["replicas"] == "7"
    slots = int(re.search(r"^\s*server-template\s+\S+\s+(\d+)\s", HAPROXY_CFG.read_text(), re.MULTILINE).group(1))
    assert slots >= int(SCALED["api"]["deploy"]["replicas"]), "the proxy must have a slot per default replica"


def test_api_worker_and_ingest_share_the_spool_volume_the_redis_url_and_the_queue() -> None:
    wiring = {name: SCALED[name]["environment"] for name in QUEUE_USERS}
    assert {env["RAG_INGEST_QUEUE"] for env in wiring.values()} == {"redis"}
    urls = {env["RAG_REDIS_URL"] for env in wiring.values()}
    assert len(urls) == 1 and re.fullmatch(r"redis://:[^@]+@redis:6379/0", urls.pop())
    spools = {env["RAG_UPLOAD_DIR"] for env in wiring.values()}
    assert len(spools) == 1
    spool = spools.pop()
    volumes = set()
    for name in QUEUE_USERS:
        mounts = [v for v in SCALED[name]["volumes"] if spool.startswith(mount_target(v).rstrip("/") + "/")]
        assert len(mounts) == 1, f"{name}: no single volume holds {spool}: {SCALED[name]['volumes']}"
        source, _target, *mode = mounts[0].split(":")
        assert "ro" not in mode, f"{name}: the spool is written by producers and emptied by workers"
        volumes.add(source)
    assert len(volumes) == 1 and volumes.pop() in merged(SCALE)["volumes"]


def test_producers_and_workers_wait_for_redis() -> None:
    for name in QUEUE_USERS:
        assert SCALED[name]["depends_on"]["redis"] == {"condition": "service_healthy"}, name
    assert set(SCALED["worker"]["depends_on"]) == {"redis", "qdrant", "api"}


def heartbeat_of_the_worker() -> str:
    """ingest/worker.py's HEARTBEAT, read from its source (importing it loads the whole pipeline)."""
    tree = ast.parse((ROOT / "ingest/worker.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "HEARTBEAT":
            return ast.literal_eval(node.value.args[0])  # type: ignore[attr-defined]
    raise AssertionError("ingest/worker.py defines no HEARTBEAT")


def test_the_worker_runs_ingest_worker_from_the_ingest_image_with_the_stack_wiring() -> None:
    worker, ingest = SCALED["worker"], SCALED["ingest"]
    assert worker["command"] == ["python", "-m", "ingest.worker"]
    assert module_file("ingest.worker") is not None
    assert worker["image"] == ingest["image"] and "build" not in worker
    assert worker["pull_policy"] == "never", "the image is built by the ingest service, never pulled"
    test = worker["healthcheck"]["test"]
    assert test[0] == "CMD" and python_modules_in(test) == ["services.healthcheck"]
    assert heartbeat_of_the_worker() in test and "/tmp/ragstack-ingest-worker.alive" in test
    assert "env_file" not in worker, "like compose.yaml's services: told only what its settings class reads"
    # The watcher's environment, every key the same (the same app, IngestSettings): the same store, model,
    # chunking, tracing and queue.
    assert worker["environment"] == ingest["environment"]
    assert worker["environment"]["RAG_EMBED_MODEL"] == ingest["build"]["args"]["EMBED_MODEL"]


def test_the_worker_embeds_with_the_model_baked_into_the_image_also_air_gapped_when_embed_model_is_set() -> None:
    # compose.airgap.yaml cannot name the worker (it would be a service without an image when used alone), so
    # an air-gapped scale-out sets EMBED_MODEL in .env (docs/scaling.md), and then all of them agree.
    model = services(AIRGAP, SCALE, EMBED_MODEL="all-MiniLM-L6-v2")
    assert model["worker"]["environment"]["RAG_EMBED_MODEL"] == model["ingest"]["build"]["args"]["EMBED_MODEL"]
    assert model["api"]["environment"]["RAG_EMBED_MODEL"] == model["worker"]["environment"]["RAG_EMBED_MODEL"]


def test_the_ui_and_eval_reach_the_api_through_the_proxy() -> None:
    assert SCALED["frontend"]["environment"]["RAG_FRONTEND_API_URL"] == "http://proxy:8000"
    assert SCALED["eval"]["environment"]["RAG_EVAL_API_URL"] == "http://proxy:8000"
    for name in ("frontend", "eval"):
        assert SCALED[name]["depends_on"]["proxy"] == {"condition": "service_healthy"}, name
    assert SCALED["proxy"]["depends_on"]["api"] == {"condition": "service_healthy"}


# --- the redis and proxy images ---------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", OUR_DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_new_dockerfiles_pass_hadolint(dockerfile: Path) -> None:
    assert_hadolint_passes(dockerfile)


@pytest.mark.parametrize("name", ["redis", "proxy"])
def test_redis_and_proxy_are_built_here_on_the_pinned_debian_of_the_llamacpp_runtime(name: str) -> None:
    service = SCALED[name]
    dockerfile = ROOT / service["build"]["context"] / service["build"]["dockerfile"]
    steps = instructions(dockerfile)
    defaults = global_args(steps)
    llamacpp_runtime = global_args(instructions(ROOT / BASE_SERVICES["llamacpp"]["build"]["dockerfile"]))
    assert re.fullmatch(r"debian:bookworm-\d{8}-slim", defaults["BASE_IMAGE"])
    assert defaults["BASE_IMAGE"] == llamacpp_runtime["RUNTIME_IMAGE"], "one Debian snapshot for the stack"
    assert service["build"]["args"]["BASE_IMAGE"] == defaults["BASE_IMAGE"], "compose's default is the image's"
    assert [arg for op, arg in steps if op == "FROM"] == ["${BASE_IMAGE}"]
    package = {"redis": "redis-server", "proxy": "haproxy"}[name]
    assert any(op == "RUN" and f"--no-install-recommends {package}" in arg for op, arg in steps)
    users = [arg for op, arg in steps if op == "USER"]
    assert users and users[-1] == "10001", "runs as uid 10001, like the other images"
    assert any(op == "HEALTHCHECK" for op, _ in steps) and any(op == "CMD" for op, _ in steps)
    for op, arg in steps:
        if op == "COPY":
            assert (ROOT / arg.split()[0]).is_file(), arg
    assert service["image"] == f"ragstack-{name}:latest"


def redis_settings() -> dict[str, str]:
    lines = [ln.split(None, 1) for ln in REDIS_CONF.read_text().splitlines() if ln.strip() and ln[0] != "#"]
    return {key: value.strip() for key, value in lines}


def test_redis_persists_every_write_in_its_volume_and_never_evicts_a_job() -> None:
    conf = redis_settings()
    assert conf["appendonly"] == "yes" and conf["appendfsync"] == "always"
    assert conf["maxmemory-policy"] == "noeviction"
    assert "requirepass" not in conf, "the password comes from the environment, never from a file"
    assert f"redis-data:{conf['dir']}" in SCALED["redis"]["volumes"]
    limit = SCALED["redis"]["deploy"]["resources"]["limits"]["memory"]
    to_mb = {"m": 1, "g": 1024}
    assert int(conf["maxmemory"][:-2]) < int(limit[:-1]) * to_mb[limit[-1]], "refuse writes before the OOM kill"
    assert SCALED["redis"]["environment"]["REDIS_PASSWORD"] == SECRETS["REDIS_PASSWORD"]
    assert "redis-cli ping" in SCALED["redis"]["healthcheck"]["test"][1]
    assert "grep -q PONG" in SCALED["redis"]["healthcheck"]["test"][1], "redis-cli exits 0 on NOAUTH"


# --- the proxy configuration ------------------------------------------------------------------------------


def haproxy_lines() -> list[str]:
    return [ln.split("#")[0].strip() for ln in HAPROXY_CFG.read_text().splitlines() if ln.split("#")[0].strip()]


def seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h)?", value).groups()  # type: ignore[union-attr]
    return int(number) * {"ms": 0.001, "s": 1, None: 0.001, "m": 60, "h": 3600}[unit]


def test_haproxy_checks_the_api_health_path_on_the_port_the_api_listens_on() -> None:
    lines = haproxy_lines()
    api_port = BASE_SERVICES["api"]["environment"]["RAG_API_PORT"]
    template = next(ln for ln in lines if ln.startswith("server-template "))
    _kw, _prefix, _count, address, *options = template.split()
    assert address == f"api:{api_port}", "the compose DNS name of the replicas and the port they listen on"
    assert {"check", "resolvers", "init-addr"} <= set(options) and options[options.index("init-addr") + 1] == "none"
    resolvers = options[options.index("resolvers") + 1]
    section = lines[lines.index(f"resolvers {resolvers}") + 1 :]
    assert section[0] == "parse-resolv-conf"
    # The API's own health path: the one its healthcheck probes and its router serves.
    check = next(ln for ln in lines if ln.startswith("http-check send"))
    path = re.search(r"\buri (\S+)", check).group(1)  # type: ignore[union-attr]
    assert path == "/healthz" and BASE_SERVICES["api"]["healthcheck"]["test"][-1].endswith(path)
    assert f'@router.get("{path}"' in (ROOT / "services/api/routes/health.py").read_text()
    assert "option httpchk" in lines and "http-check expect status 200" in lines
    assert "balance roundrobin" in lines and "option forwardfor" in lines


def test_haproxy_waits_for_streamed_answers_as_long_as_the_longest_client_does() -> None:
    timeouts = {ln.split()[1]: seconds(ln.split()[2]) for ln in haproxy_lines() if ln.startswith("timeout ")}
    fields = Settings.model_fields
    longest = max(fields["frontend_timeout_s"].default, fields["eval_request_timeout_s"].default)
    assert timeouts["server"] >= longest and timeouts["client"] >= longest
    assert timeouts["http-request"] <= 60, "a slow client cannot hold a connection open forever before its request"


def test_the_proxy_publishes_its_bind_port_and_its_healthcheck_probes_its_monitor() -> None:
    lines = haproxy_lines()
    binds = [ln.split()[1] for ln in lines if ln.startswith("bind ")]
    published_target = SCALED["proxy"]["ports"][0].rsplit(":", 1)[1]
    assert f":{published_target}" in binds
    monitor_uri = next(ln.split()[1] for ln in lines if ln.startswith("monitor-uri "))
    probe = SCALED["proxy"]["healthcheck"]["test"][-1]
    monitor_port = next(b for b in binds if b != f":{published_target}").lstrip(":")
    assert f"/dev/tcp/127.0.0.1/{monitor_port}" in probe and f"GET {monitor_uri} " in probe
    assert any(ln.startswith("monitor fail if") and "nbsrv(" in ln for ln in lines), "unhealthy with no replica"
    image_probe = next(arg for op, arg in instructions(ROOT / "deploy/proxy/Dockerfile") if op == "HEALTHCHECK")
    assert f"/dev/tcp/127.0.0.1/{monitor_port}" in image_probe and monitor_uri in image_probe


# --- compose.qdrant-cluster.yaml --------------------------------------------------------------------------

NODES = {"qdrant": "qdrant-1", "qdrant-2": "qdrant-2", "qdrant-3": "qdrant-3"}  # service -> peer host name


def test_the_cluster_is_three_nodes_of_the_single_node_image_each_with_its_own_volumes() -> None:
    single = interpolate(BASE_SERVICES["qdrant"], SECRETS)
    storage = set()
    for name, host in NODES.items():
        node = CLUSTERED[name]
        assert node["image"] == single["image"], name
        assert node["environment"]["QDRANT__CLUSTER__ENABLED"] == "true", name
        assert node["environment"]["QDRANT__SERVICE__API_KEY"] == single["environment"]["QDRANT__SERVICE__API_KEY"]
        assert node["environment"]["QDRANT__TELEMETRY_DISABLED"] == "true", name
        assert node["healthcheck"]["test"] == single["healthcheck"]["test"], name
        command = node["command"]
        assert command[0] == "./entrypoint.sh" and command[command.index("--uri") + 1] == f"http://{host}:6335"
        if name == "qdrant":
            assert "--bootstrap" not in command and host in node["networks"]["default"]["aliases"]
        else:
            assert command[command.index("--bootstrap") + 1] == "http://qdrant-1:6335", name
            assert node["depends_on"]["qdrant"] == {"condition": "service_healthy"}, name
        targets = {mount_target(v): v.split(":")[0] for v in node["volumes"]}
        assert set(targets) == {"/qdrant/storage", "/qdrant/snapshots"}, name
        storage.add(targets["/qdrant/storage"])
        assert "ports" not in node, f"{name}: the peer port and the API stay on the compose network"
    assert len(storage) == 3 and "qdrant-data" not in storage, "own volumes; the single node's data is untouched"


def test_the_app_services_use_node_one_and_create_collections_that_survive_one_lost_node() -> None:
    for name in ("api", "ingest"):
        assert CLUSTERED[name]["environment"]["RAG_QDRANT_URL"] == "http://qdrant-1:6333", name
    for name in ("frontend", "eval"):  # clients of the API only
        assert not [var for var in CLUSTERED[name]["environment"] if var.startswith("RAG_QDRANT")], name
    for name in ("api", "ingest"):
        env = CLUSTERED[name]["environment"]
        shards = int(env["RAG_QDRANT_SHARD_NUMBER"])
        replicas = int(env["RAG_QDRANT_REPLICATION_FACTOR"])
        acks = int(env["RAG_QDRANT_WRITE_CONSISTENCY_FACTOR"])
        assert (shards, replicas, acks) == (3, 2, 1), name
        assert replicas <= len(NODES) and acks < replicas, "one node down: every shard still has a replica to write"
        # A collection made before every node joined would get fewer replicas than asked.
        assert {n for n, c in CLUSTERED[name]["depends_on"].items() if c["condition"] == "service_healthy"} >= set(
            NODES
        ), name


def test_with_both_overlays_the_workers_reach_the_cluster_after_the_api_made_the_collections() -> None:
    model = services(SCALE, CLUSTER)
    assert model["worker"]["environment"]["RAG_QDRANT_URL"] == "http://qdrant:6333"  # node 1's service name
    assert "qdrant-1" in model["qdrant"]["networks"]["default"]["aliases"]
    assert model["worker"]["depends_on"]["api"] == {"condition": "service_healthy"}
    assert set(NODES) <= set(model["api"]["depends_on"])


def variables(model: dict[str, Any]) -> set[str]:
    return {var for text in strings(model) for var in re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text)}


def test_every_variable_the_overlays_read_is_documented_in_the_scaling_guide() -> None:
    # .env.example documents compose.yaml's; the overlays' own are in docs/scaling.md, where they are used.
    guide = (ROOT / "docs/scaling.md").read_text()
    for overlay in (SCALE, CLUSTER):
        new = variables(load(overlay)) - variables(COMPOSE)
        assert {var for var in new if f"`{var}`" not in guide} == set(), overlay.name
