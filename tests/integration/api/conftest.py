"""The API over real components: packaged embedder, in-memory Qdrant, the real SmolLM2 server (one per session)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from llm_server import start_llm_server, stop

from ingest.factory import build_pipeline
from services.api.app import create_app
from services.api.components import Components, build_llm, build_reranker
from services.core.embedder import SentenceTransformerEmbedder
from services.core.retrieval import Retriever
from services.core.settings import Settings
from services.core.store import QdrantStore

REPO_ROOT = Path(__file__).resolve().parents[3]
RERANKER_WEIGHTS = REPO_ROOT / "models" / "reranker-fitzgov-minilm-l6" / "model.safetensors"
LLM_ALIAS = "smollm2-135m"

# Six documents on clearly different topics: a paraphrased question must find the right one first.
CORPUS: dict[str, str] = {
    "router.md": """# Restarting the home router

If the internet connection stops working, restart the router. Unplug the router's power cable, wait thirty
seconds, and plug it back in. The lights blink while the modem reconnects to the provider; after about two
minutes the internet light turns solid green and Wi-Fi is back.
""",
    "sourdough.md": """# Baking sourdough bread

A sourdough loaf rises with a starter of flour and water instead of commercial yeast. Feed the starter a day
before baking, mix it with flour, water and salt, and let the dough ferment overnight in the fridge. Bake the
loaf in a preheated Dutch oven at 250 degrees Celsius for forty minutes until the crust is dark brown.
""",
    "tax.md": """# Income tax filing deadlines

Individual income tax returns for the previous year must be filed by April 15. Self-employed people pay
estimated tax quarterly, in April, June, September and January. Missing the filing deadline adds a late
penalty of five percent of the unpaid tax for each month, so request an extension before the due date.
""",
    "volcano.md": """# How volcanoes erupt

A volcano erupts when molten rock called magma rises from the mantle through cracks in the crust. Gas
dissolved in the magma expands as the pressure drops, and the eruption throws out lava, ash and volcanic
bombs. Mount Etna in Sicily is one of the most active volcanoes on Earth.
""",
    "onboarding.md": """# Employee onboarding

New employees receive their laptop and badge from the IT desk on their first day. During the first week they
meet their manager and their onboarding buddy, complete the security training, and sign the code of conduct.
Payroll details must be submitted to human resources before the end of the first month.
""",
    "password.md": """# Resetting your account password

If you forgot your password, open the sign-in page and click "Forgot password". Enter the email address of
your account and we send you a reset link that is valid for one hour. Choose a new password of at least twelve
characters; the old password stops working immediately.
""",
}


@pytest.fixture(scope="session")
def llm_base_url() -> Iterator[str]:
    """The real llama.cpp server with the packaged SmolLM2-135M GGUF, started once per session."""
    proc, base_url = start_llm_server(LLM_ALIAS)
    try:
        yield base_url
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def api_embedder(request: pytest.FixtureRequest) -> SentenceTransformerEmbedder:
    """The session's packaged all-MiniLM-L6-v2 (shared with the other suites when tests/conftest.py has it)."""
    try:
        return request.getfixturevalue("embedder")
    except pytest.FixtureLookupError:
        emb = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
        emb.warm_up()
        return emb


@pytest.fixture(scope="session")
def api_settings(llm_base_url: str) -> Settings:
    return Settings(
        _env_file=None,
        qdrant_path=":memory:",
        reranker="cross-encoder" if RERANKER_WEIGHTS.exists() else "none",
        llm_base_url=llm_base_url,
        llm_model=LLM_ALIAS,
        llm_max_tokens=48,
        top_n=20,
        top_k=3,
    )


def close_llm(llm: object) -> None:
    # The client's connections belong to the TestClient's (now finished) event loop: best effort only.
    with contextlib.suppress(Exception):
        asyncio.run(llm.aclose())  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def components(api_settings: Settings, api_embedder: SentenceTransformerEmbedder) -> Iterator[Components]:
    store = QdrantStore(path=":memory:", collection=api_settings.collection)
    reranker = build_reranker(api_settings)
    built = Components(
        settings=api_settings,
        embedder=api_embedder,
        store=store,
        reranker=reranker,
        llm=build_llm(api_settings),
        retriever=Retriever(api_embedder, store, reranker),
        pipeline=build_pipeline(api_settings, api_embedder, store),
    )
    try:
        yield built
    finally:
        close_llm(built.llm)
        built.close_sync()


def _no_5xx(response: httpx.Response) -> None:
    assert response.status_code < 500, f"{response.request.method} {response.request.url} -> {response.status_code}"


@pytest.fixture(scope="session")
def client(components: Components) -> Iterator[TestClient]:
    """The app over the shared components; any 5xx response fails the test that caused it."""
    with TestClient(create_app(components=components)) as c:
        c.event_hooks = {"request": [], "response": [_no_5xx]}
        yield c


@pytest.fixture(scope="session")
def corpus(client: TestClient) -> dict[str, str]:
    """Ingest CORPUS through POST /documents; returns filename -> doc_id."""
    files = [("files", (name, text.encode(), "text/markdown")) for name, text in CORPUS.items()]
    r = client.post("/documents", files=files, data={"tags": "corpus"})
    assert r.status_code == 200, r.text
    outcomes = r.json()["files"]
    assert [o["status"] for o in outcomes] == ["added"] * len(CORPUS), outcomes
    return {o["filename"]: o["doc_id"] for o in outcomes}
