"""The compose stack for real (`make compose-test`): images built air-gapped, started from the production
compose.yaml with the one override the missing Qdrant server forces (deploy/compose.no-qdrant-server.yaml),
checked as a user and an operator would, through the published ports and the containers' own network:
upload, a streamed cited answer from the API and through the Gradio container, the trace in the Phoenix
container, the eval container's report in its volume, the data surviving an API restart, and nothing left
behind after `down`. The engine is whatever `make` chose (COMPOSE): podman-compose on this kind of machine.

Timings (start, first answer) go to .data/compose/run.json; build times and sizes come from `make images`.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest
from fixtures_docs import API_CORPUS
from llm_server import REPO_ROOT, free_port
from phoenix_server import read_spans
from registries import outside_targets
from sse import sse_events

pytestmark = [pytest.mark.compose, pytest.mark.slow]

PROJECT = "ragstack-compose-test"
FILES = ["-f", "compose.yaml", "-f", "deploy/compose.airgap.yaml", "-f", "deploy/compose.no-qdrant-server.yaml"]
PROFILE = ["--profile", "llamacpp"]
QUESTION = "How long is the password reset link valid?"
RESULTS = REPO_ROOT / ".data" / "compose" / "run.json"


@dataclass
class Stack:
    env: dict[str, str]
    api: str
    ui: str
    phoenix: str
    key: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def container(self, service: str) -> str:
        return f"{PROJECT}_{service}_1"


def compose(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    command = shlex.split(os.environ.get("COMPOSE", "podman-compose"))
    return subprocess.run(
        [*command, "-p", PROJECT, *FILES, *PROFILE, *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def podman(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)


def leftovers() -> dict[str, list[str]]:
    label = f"label=io.podman.compose.project={PROJECT}"
    found = {
        "containers": podman("ps", "-a", "--filter", label, "--format", "{{.Names}}").stdout.split(),
        "volumes": podman("volume", "ls", "--filter", label, "--format", "{{.Name}}").stdout.split(),
        "networks": [n for n in podman("network", "ls", "--format", "{{.Name}}").stdout.split() if PROJECT in n],
    }
    return {kind: names for kind, names in found.items() if names}


def wait_healthy(timeout_s: float = 600) -> None:
    result = subprocess.run(
        [str(REPO_ROOT / "deploy/podman/wait-healthy.sh"), PROJECT, str(int(timeout_s))],
        capture_output=True, text=True, timeout=timeout_s + 30,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    key = secrets.token_hex(32)
    ports = {"API_PORT": free_port(), "UI_PORT": free_port(), "PHOENIX_PORT": free_port()}
    env = os.environ | {k: str(v) for k, v in ports.items()}
    env |= {"RAG_API_KEY": key, "RAG_QDRANT_API_KEY": secrets.token_hex(16), "PUBLISH_ADDRESS": "127.0.0.1"}
    env |= {"POSTGRES_PASSWORD": secrets.token_hex(16)}
    env |= {"LLM_THREADS": "2", "RAG_LLM_MAX_TOKENS": "48"}
    stack = Stack(
        env=env,
        api=f"http://127.0.0.1:{ports['API_PORT']}",
        ui=f"http://127.0.0.1:{ports['UI_PORT']}",
        phoenix=f"http://127.0.0.1:{ports['PHOENIX_PORT']}",
        key=key,
    )
    compose(env, "down", "-v")  # a previous run's leftovers
    start = time.monotonic()
    up = compose(env, "up", "-d")
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    try:
        wait_healthy()
        stack.timings["start_to_healthy_s"] = round(time.monotonic() - start, 1)
        yield stack
    finally:
        if leftovers():
            for service in ("api", "llamacpp", "frontend", "phoenix"):
                print(f"--- {service} logs ---\n" + podman("logs", "--tail", "40", stack.container(service)).stdout)
            compose(env, "down", "-v")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(stack.timings, indent=2) + "\n")


def test_production_mode_refuses_a_request_without_the_key(stack: Stack) -> None:
    assert httpx.get(f"{stack.api}/healthz", timeout=10).status_code == 200
    r = httpx.post(f"{stack.api}/search", json={"query": "router"}, timeout=10)
    assert r.status_code == 401, r.text


def test_upload_then_a_streamed_cited_answer(stack: Stack) -> None:
    files = [("files", (name, text.encode(), "text/markdown")) for name, text in API_CORPUS.items()]
    r = httpx.post(f"{stack.api}/documents", files=files, headers=stack.auth, timeout=300)
    assert r.status_code == 200, r.text
    assert {f["status"] for f in r.json()["files"]} == {"added"}
    body = {"stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    start = time.monotonic()
    with httpx.stream("POST", f"{stack.api}/chat", json=body, headers=stack.auth, timeout=300) as r:
        assert r.status_code == 200, r.read()
        events = sse_events(r)
    stack.timings["first_chat_s"] = round(time.monotonic() - start, 1)
    names = [n for n, _ in events]
    assert names[0] == "sources" and names[-1] == "done", names
    assert events[0][1][0]["source"] == "upload://password.md"
    done = events[-1][1]
    assert not done["declined"], done
    assert done["citations"] and done["citations"][0]["source"] == "upload://password.md", done
    assert "hour" in done["answer"].lower(), done["answer"]


def test_openai_sdk_streams_through_the_published_port(stack: Stack) -> None:
    client = openai.OpenAI(base_url=f"{stack.api}/v1", api_key=stack.key, timeout=300)
    model = client.models.list().data[0].id
    chunks = list(
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}], stream=True)
    )
    assert "hour" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).lower()
    assert chunks[-1].model_extra.get("citations"), chunks[-1]


def test_the_gradio_container_answers_through_the_api_container(stack: Stack) -> None:
    from gradio_client import Client

    client = Client(stack.ui, verbose=False)
    result = client.predict(QUESTION, "hybrid", True, 4, [], api_name="/respond")
    chat = json.dumps(result)
    assert "hour" in chat.lower() and "password" in chat.lower(), chat[:2000]


def test_the_trace_reaches_the_phoenix_container(stack: Stack) -> None:
    spans = read_spans(stack.phoenix, "ragstack", expect=3, timeout_s=60)
    names = {s["name"] for s in spans}
    assert any("retriev" in n.lower() or "rerank" in n.lower() for n in names), names
    assert any("llm" in n.lower() or "chat" in n.lower() for n in names), names


def test_services_find_each_other_on_the_compose_network(stack: Stack) -> None:
    for service, url in [
        ("frontend", "http://api:8000/healthz"),
        ("api", "http://llamacpp:8080/health"),
        ("api", "http://phoenix:6006/healthz"),
    ]:
        r = podman("exec", stack.container(service), "python", "-m", "services.healthcheck", "http", url)
        assert r.returncode == 0, f"{service} -> {url}: {r.stdout}{r.stderr}"


OUTSIDE = """
import socket, sys
for host in sys.argv[1:]:
    port = 443
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        print(host, "unreachable:", exc)
    else:
        sys.exit(f"{host}:{port} answered")
"""


@pytest.mark.skipif(os.environ.get("RAG_TEST_AIRGAPPED") != "1", reason="air-gapped only (make compose-test)")
def test_no_container_reaches_outside_the_machine(stack: Stack) -> None:
    """make compose-test runs engine and stack in a loopback-only namespace: the stack above worked without
    the internet, and a container that tries to leave (a hub, a CDN, by name or by address) cannot."""
    targets = outside_targets()  # this machine's package registries and model hub, read from its configuration
    assert len(targets) >= 3
    for service in ("api", "frontend", "phoenix"):
        r = podman("exec", stack.container(service), "python", "-c", OUTSIDE, *targets)
        assert r.returncode == 0, f"{service}: {r.stdout}{r.stderr}"
        assert r.stdout.count("unreachable") == len(targets), r.stdout


def test_the_eval_container_writes_its_report_to_its_volume(stack: Stack) -> None:
    run = compose(stack.env, "run", "--rm", "eval", "python", "-m", "eval.run", "--sample", "3", "--rag-sample", "1")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    volume = podman("volume", "inspect", f"{PROJECT}_eval-reports", "--format", "{{.Mountpoint}}").stdout.strip()
    reports = list(Path(volume).rglob("report.json"))
    assert reports, f"no report.json under {volume}"
    report = json.loads(reports[0].read_text())
    assert report["retrieval"], report.keys()


def test_the_data_survives_an_api_restart(stack: Stack) -> None:
    start = time.monotonic()
    assert podman("restart", stack.container("api")).returncode == 0
    wait_healthy(300)
    stack.timings["api_restart_to_healthy_s"] = round(time.monotonic() - start, 1)
    r = httpx.post(f"{stack.api}/search", json={"query": "reset link validity"}, headers=stack.auth, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["source"] == "upload://password.md"


def test_down_leaves_nothing_behind(stack: Stack) -> None:
    down = compose(stack.env, "down", "-v")
    assert down.returncode == 0, down.stderr[-3000:]
    assert leftovers() == {}
