"""Inference backends for the transformer inside a sentence-transformers model: torch, ONNX Runtime, OpenVINO.

Why not ``SentenceTransformer(..., backend="onnx")``: that path needs Optimum, and no Optimum release on
PyPI installs beside transformers 5 and torch 2.13 (optimum-onnx pins transformers<4.58, optimum-intel
pulls another torch). So this module does the same three steps with the runtimes alone:

1. export the packaged weights once to ONNX (``torch.onnx.export``, dynamo exporter: the TorchScript one
   bakes transformers 5's attention mask into constants and gives wrong vectors for other shapes);
2. optionally quantize: ``onnx-int8`` is ONNX Runtime's dynamic int8 quantization (no calibration data,
   what ``export_dynamic_quantized_onnx_model`` does); ``openvino-int8`` is NNCF post-training static
   quantization (what ``export_static_quantized_openvino_model`` does), calibrated on English text that
   ships with Python itself (``pydoc_data``), so it needs no download and never sees evaluation data;
3. swap the torch module inside the loaded sentence-transformers model for a runner of the exported file,
   so tokenisation, pooling, normalisation, batching and ``output_value=None`` (token vectors) stay
   sentence-transformers' own code.

Exports go to ``<data_dir>/models/<name>-<backend>/``, written to a temporary folder and renamed into
place (two processes exporting at once cannot leave half a model), and are reused while the source
weights' sha256 matches the one recorded beside them.

Usage::

    st = SentenceTransformer(path)                                  # torch weights, tokenizer, pooling
    use_backend(st, "onnx-int8", cache_dir=Path(".data/models/all-MiniLM-L6-v2-onnx-int8"), source=Path(path))
    st.encode(["..."])                                              # now runs in ONNX Runtime, int8
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, get_args

import numpy as np

from services.core.types import InferenceBackend

logger = logging.getLogger(__name__)

BACKENDS: tuple[InferenceBackend, ...] = get_args(InferenceBackend)
FORMAT_VERSION = 1  # bump to invalidate every cached export when the export recipe changes
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class BackendUnavailableError(RuntimeError):
    """The runtime a backend needs is not installed; the message names the package and the setting."""


def cache_dir_for(model_cache: Path, model_name: str, backend: str) -> Path:
    """Where the exported files of ``model_name`` for ``backend`` live (a safe folder name)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name).strip("_") or "model"
    return Path(model_cache) / f"{safe}-{backend}"


def weights_digest(source: Path) -> str:
    """sha256 of the source weights, so a changed model re-exports instead of serving stale files."""
    h = hashlib.sha256()
    if not source.is_dir():  # a Hugging Face id served from the offline cache: its name is what we have
        h.update(str(source).encode())
        return h.hexdigest()
    files = sorted(source.glob("*.safetensors")) or sorted(source.glob("*.bin"))
    for f in files:
        with f.open("rb") as fh:
            for block in iter(functools.partial(fh.read, 1 << 20), b""):
                h.update(block)
    return h.hexdigest()


# -- calibration text (openvino-int8) -------------------------------------------------------------


def calibration_texts(limit: int = 300) -> list[str]:
    """English prose of varied length from Python's bundled reference docs: always present, offline.

    Mixes single sentences (query-like) and paragraphs (passage-like), deterministic order."""
    from pydoc_data.topics import topics

    paragraphs: list[str] = []
    for key in sorted(topics):
        for para in re.split(r"\n\s*\n", topics[key]):
            text = " ".join(para.split())
            if (
                len(text) >= 40
                and not text.startswith((">>>", "..."))
                and sum(c.isalpha() for c in text) > 0.6 * len(text)
            ):
                paragraphs.append(text[:1500])
    out: list[str] = []
    for i, para in enumerate(paragraphs):
        out.append(para if i % 2 == 0 else para.split(". ")[0])
        if len(out) >= limit:
            break
    return out


# -- export -------------------------------------------------------------------------------------


class _Exportable:
    """Wraps a Hugging Face model so the exporter sees plain tensors in and one tensor out."""

    @staticmethod
    def build(hf_model: Any, output_name: str) -> Any:
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = hf_model

            def forward(self, input_ids, attention_mask, token_type_ids):
                out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
                return out[output_name]

        return Wrapped().eval()


def _export_onnx(hf_model: Any, output_name: str, dest: Path) -> None:
    import torch

    example = {
        "input_ids": torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]),
        "token_type_ids": torch.zeros((2, 4), dtype=torch.long),
    }
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=4096)
    torch.onnx.export(
        _Exportable.build(hf_model, output_name),
        tuple(example[k] for k in _INPUTS),
        str(dest),
        input_names=list(_INPUTS),
        output_names=["output"],
        dynamic_shapes={k: {0: batch, 1: seq} for k in _INPUTS},
        dynamo=True,
        external_data=False,
    )


def _quantize_onnx_int8(src: Path, dest: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The dynamo exporter records intermediate shapes that ONNX's own shape inference then contradicts
    # (a folded bias); drop them and let the quantizer infer its own.
    model = onnx.load(str(src))
    del model.graph.value_info[:]
    cleaned = src.with_name("model_noshapes.onnx")
    onnx.save(model, str(cleaned))
    # Per-channel signed int8 weights of the matrix products (the embedding tables stay fp32: quantizing
    # those costs quality for little speed), as sentence-transformers' avx512_vnni preset does.
    quantize_dynamic(
        str(cleaned), str(dest), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"]
    )
    cleaned.unlink()


def _calibration_feeds(tokenizer: Any, pairs: bool, max_length: int) -> list[dict[str, np.ndarray]]:
    texts = calibration_texts()
    feeds = []
    for i, text in enumerate(texts):
        if pairs:  # a short sentence against a paragraph, like (query, passage)
            enc = tokenizer(texts[(i + 1) % len(texts)].split(". ")[0], text, truncation=True, max_length=max_length)
        else:
            enc = tokenizer(text, truncation=True, max_length=max_length)
        feeds.append({k: np.asarray([enc[k]], dtype=np.int64) for k in _INPUTS})
    return feeds


def _to_openvino(src_onnx: Path, dest_xml: Path, calibration: list[dict[str, np.ndarray]] | None) -> None:
    try:
        import openvino as ov
    except ImportError as exc:
        raise BackendUnavailableError("the openvino backends need `pip install openvino nncf`") from exc
    model = ov.convert_model(str(src_onnx))
    if calibration is not None:
        import nncf

        model = nncf.quantize(
            model,
            nncf.Dataset(calibration),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(calibration),
        )
    ov.save_model(model, str(dest_xml), compress_to_fp16=False)


def _file_for(backend: InferenceBackend) -> str:
    return {"onnx": "model.onnx", "onnx-int8": "model_qint8.onnx"}.get(backend, "openvino_model.xml")


def ensure_export(
    backend: InferenceBackend,
    hf_model: Any,
    tokenizer: Any,
    *,
    output_name: str,
    source: Path,
    cache_dir: Path,
    max_length: int = 256,
    pairs: bool = False,
) -> Path:
    """Return the exported model file for ``backend``, exporting it first if the cache lacks it or is stale."""
    target = cache_dir / _file_for(backend)
    meta_path = cache_dir / "export.json"
    digest = weights_digest(source)
    if target.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("weights_sha256") == digest and meta.get("format") == FORMAT_VERSION:
            return target
    logger.info("exporting %s to %s (once; reused afterwards)", source, cache_dir)
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}.", dir=cache_dir.parent))
    try:
        fp32 = tmp / "model.onnx"
        _export_onnx(hf_model, output_name, fp32)
        if backend == "onnx-int8":
            _quantize_onnx_int8(fp32, tmp / "model_qint8.onnx")
            fp32.unlink()
        elif backend.startswith("openvino"):
            calib = _calibration_feeds(tokenizer, pairs, max_length) if backend == "openvino-int8" else None
            _to_openvino(fp32, tmp / "openvino_model.xml", calib)
            fp32.unlink()
        (tmp / "export.json").write_text(
            json.dumps({"backend": backend, "weights_sha256": digest, "format": FORMAT_VERSION, "source": str(source)})
        )
        if cache_dir.exists():
            shutil.rmtree(cache_dir, ignore_errors=True)
        try:
            os.replace(tmp, cache_dir)
        except OSError:  # another process won the race: its export is equivalent, use it
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


# -- runners ------------------------------------------------------------------------------------


class OnnxRuntimeRunner:
    """Runs an exported model with ONNX Runtime (thread-safe: one session serves concurrent requests)."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError("the onnx backends need `pip install onnxruntime`") from exc
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, {k: feeds[k] for k in self.inputs})[0]


class OpenVinoRunner:
    """Runs an OpenVINO IR; one infer request per call keeps concurrent callers apart."""

    def __init__(self, path: Path, threads: int | None = None, *, fp32: bool = True) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise BackendUnavailableError("the openvino backends need `pip install openvino nncf`") from exc
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if fp32:  # CPUs with bf16 units would otherwise run the "fp32" model in bf16
            config["INFERENCE_PRECISION_HINT"] = "f32"
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = ov.Core().compile_model(str(path), "CPU", config)
        self.inputs = [p.get_any_name() for p in self.compiled.inputs]

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        request = self.compiled.create_infer_request()
        result = request.infer({k: feeds[k] for k in self.inputs})
        return np.asarray(result[self.compiled.output(0)])


def _make_module(runner: Any, config: Any, output_name: str) -> Any:
    """A torch module with the Hugging Face call signature whose forward runs ``runner``."""
    import torch

    class ExportedTransformer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = config
            self.runner = runner

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **_: Any):
            ids = input_ids.cpu().numpy().astype(np.int64, copy=False)
            mask = (attention_mask if attention_mask is not None else torch.ones_like(input_ids)).cpu().numpy()
            types = token_type_ids.cpu().numpy() if token_type_ids is not None else np.zeros_like(ids)
            feeds = {
                "input_ids": ids,
                "attention_mask": mask.astype(np.int64),
                "token_type_ids": types.astype(np.int64),
            }
            return {output_name: torch.from_numpy(np.ascontiguousarray(self.runner(feeds), dtype=np.float32))}

    return ExportedTransformer()


def use_backend(
    st_model: Any,
    backend: InferenceBackend,
    *,
    cache_dir: Path,
    source: Path,
    pairs: bool = False,
    threads: int | None = None,
) -> None:
    """Make a loaded SentenceTransformer / CrossEncoder run its transformer on ``backend`` (in place)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "torch":
        return
    module = next(iter(st_model))  # the Transformer module: the only one that runs a network
    output_name = module.modality_config["text"]["method_output_name"]
    max_length = int(getattr(st_model, "max_seq_length", None) or getattr(module, "max_seq_length", 256) or 256)
    path = ensure_export(
        backend,
        module.model,
        st_model.tokenizer,
        output_name=output_name,
        source=source,
        cache_dir=cache_dir,
        max_length=min(max_length, 512),
        pairs=pairs,
    )
    runner: Any
    if backend.startswith("onnx"):
        runner = OnnxRuntimeRunner(path, threads)
    else:
        runner = OpenVinoRunner(path, threads, fp32=backend == "openvino")
    module.model = _make_module(runner, module.model.config, output_name)
    logger.info("running %s on %s (%s)", source.name, backend, path)
