"""``python -m services.core.models.prefetch``: bake model weights into an image at build time.

Run in a Dockerfile with network (``--download``), it fetches the Hugging Face models that are neither
packaged nor local into the image's HF cache, then loads every model through the very classes the services
use, with ``local_files_only=True`` and the configured inference backends (RAG_EMBED_BACKEND,
RAG_RERANKER_BACKEND), whose exports land in RAG_MODEL_CACHE_DIR. A build that passes this step therefore
guarantees the container can load the same names with ``HF_HUB_OFFLINE=1`` and starts without a one-off
export (a minute or two per model on a small CPU); without ``--download`` it only checks that (the tests run
it that way, offline).

Only the files sentence-transformers loads are fetched: ONNX, OpenVINO, TF and Flax exports are skipped,
and ``pytorch_model.bin`` too when a safetensors file exists.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from services.core.models.model_registry import EMBEDDERS, RERANKERS, ModelSpec, ModelUnavailableError, _in_hf_cache
from services.core.settings import ChatPipelineSettings

logger = logging.getLogger(__name__)

SKIP_PATTERNS = ["onnx/*", "openvino/*", "*.onnx", "*.h5", "*.msgpack", "*.ot", "*.tflite", "tf_model*", "flax_*"]


def needs_download(name: str, registry: dict[str, ModelSpec]) -> bool:
    """A hub id that is not cached yet; packaged aliases and local folders never are."""
    spec = registry.get(name)
    if spec is not None and spec.locate is not None:
        return False
    if Path(name).expanduser().exists():
        return False
    return "/" in name and not _in_hf_cache(name)


def download(repo_id: str) -> None:
    from huggingface_hub import list_repo_files, snapshot_download

    ignore = list(SKIP_PATTERNS)
    if "model.safetensors" in list_repo_files(repo_id):
        ignore.append("pytorch_model.bin")
    path = snapshot_download(repo_id, ignore_patterns=ignore)
    logger.info("downloaded %s to %s", repo_id, path)


def verify(embedders: list[str], rerankers: list[str], settings: ChatPipelineSettings | None = None) -> None:
    """Load each model exactly as the services do (offline loading, same names, same backends and cache)."""
    from services.core.factory import build_embedder, build_reranker
    from services.core.models.reranker import CrossEncoderReranker

    settings = settings or ChatPipelineSettings()  # the bi-encoder's and the cross-encoder's groups
    for name in embedders:
        embedder = build_embedder(settings.model_copy(update={"embed_model": name}))
        embedder.warm_up()
        print(f"bi-encoder {embedder.name}: {embedder.dimension}-d, max {embedder.max_tokens} tokens", flush=True)
    for name in rerankers:
        reranker = build_reranker(settings.model_copy(update={"reranker": "cross-encoder", "reranker_model": name}))
        assert isinstance(reranker, CrossEncoderReranker)
        reranker.warm_up()
        score = float(reranker.score("what is a bi-encoder?", ["A bi-encoder embeds each text on its own."])[0])
        print(f"cross-encoder {name}@{reranker.backend}: loads and scores ({score:.3f})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.core.models.prefetch", description=__doc__.split("\n")[0])
    parser.add_argument("--embedder", action="append", default=[], help="bi-encoder name (repeatable)")
    parser.add_argument("--reranker", action="append", default=[], help="cross-encoder name (repeatable)")
    parser.add_argument("--download", action="store_true", help="fetch uncached hub models first (build time)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.download:
        for name, registry in [(n, EMBEDDERS) for n in args.embedder] + [(n, RERANKERS) for n in args.reranker]:
            if needs_download(name, registry):
                download(name)
    try:
        verify(args.embedder, args.reranker)
    except ModelUnavailableError as exc:
        print(f"prefetch: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
