"""``python -m eval.feedback``: review the thumbs-down people gave, and turn the accepted ones into eval cases.

A thumbs-down is a claim, not a label: someone reads it first. ``list`` shows what waits (question, answer,
reason, comment, the documents it cited); ``accept`` records what the stack should have done (``--expect
answer`` citing ``--doc`` documents, or ``--expect abstain``); ``reject`` drops it. Accepted cases are the
nightly evaluation's user-cases section (``eval.scheduler``; ``make eval`` too): ``export`` writes them as an
evaluation set (eval/evalset.py's format), one item per case, asked as its question alone.

    python -m eval.feedback list                       # pending thumbs-down, newest first
    python -m eval.feedback list --review accepted
    python -m eval.feedback accept 12 --expect answer --doc 6f1c...   # it should have answered from that doc
    python -m eval.feedback accept 13 --expect abstain                # it should have said it does not know
    python -m eval.feedback reject 14
    python -m eval.feedback export .data/user-cases.jsonl

Reads the application database the API writes (``RAG_DATABASE_URL``; default ``<data dir>/app.db``).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from services.core.settings import DatabaseSettings
from services.state.db import Database, DatabaseUnavailable, SchemaTooNew
from services.state.store import AppState, FeedbackRecord

USER_CASE_PREFIX = "user-"


def open_state(settings: DatabaseSettings | None = None) -> AppState:
    return AppState(Database.open(settings or DatabaseSettings()))


def cited_documents(record: FeedbackRecord) -> list[tuple[str, str]]:
    """(doc id, title) of the sources the answer cited, in citation order."""
    detail = record.turn.detail if record.turn else {}
    return [(str(c.get("doc_id", "")), str(c.get("title", ""))) for c in detail.get("citations", [])]


def describe(record: FeedbackRecord) -> str:
    turn = record.turn
    lines = [f"#{record.id}  {record.rating}  {record.review}  {record.created_at:%Y-%m-%d %H:%M} UTC"]
    if turn is not None:
        lines.append(f"  question: {turn.question}")
        lines.append("  answer:   " + textwrap.shorten(turn.answer, 300))
        if turn.declined:
            lines.append(f"  declined: {turn.decline_reason}")
    if record.reason or record.comment:
        lines.append(f"  reason:   {record.reason or '-'}  {record.comment or ''}".rstrip())
    for doc_id, title in cited_documents(record):
        lines.append(f"  cited:    {doc_id}  {title}")
    if record.expect:
        lines.append(f"  expect:   {record.expect} {' '.join(record.expect_docs or [])}".rstrip())
    return "\n".join(lines)


def eval_item(record: FeedbackRecord) -> dict[str, Any]:
    """An accepted case as an evaluation item (eval/evalset.py)."""
    assert record.turn is not None and record.expect is not None
    item: dict[str, Any] = {
        "id": f"{USER_CASE_PREFIX}{record.id}",
        "question": record.turn.question,
        "expect": record.expect,
        "category": f"user:{record.reason or 'unspecified'}",
    }
    if record.expect_docs:
        item["relevant_docs"] = list(record.expect_docs)
    return item


def export(state: AppState, path: Path) -> int:
    """Write every accepted case to ``path`` (replaced whole); the number written."""
    accepted = state.feedback(review="accepted", limit=100_000)
    rows = [json.dumps(eval_item(r)) for r in sorted(accepted, key=lambda r: r.id)]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(f"{row}\n" for row in rows), encoding="utf-8")
    tmp.replace(path)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.feedback", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="feedback waiting for review (or --review accepted|rejected|none)")
    listing.add_argument("--review", default="pending", choices=["pending", "accepted", "rejected", "none"])
    listing.add_argument("--limit", type=int, default=50)
    accept = sub.add_parser("accept", help="make a thumbs-down an eval case")
    accept.add_argument("id", type=int)
    accept.add_argument("--expect", required=True, choices=["answer", "abstain"])
    accept.add_argument("--doc", action="append", default=[], help="a document the answer should cite (repeat)")
    reject = sub.add_parser("reject", help="drop a thumbs-down")
    reject.add_argument("id", type=int)
    out = sub.add_parser("export", help="write the accepted cases as an evaluation set (JSONL)")
    out.add_argument("path", type=Path)
    args = parser.parse_args(argv)

    try:
        state = open_state()
    except (DatabaseUnavailable, SchemaTooNew) as exc:
        print(f"eval.feedback: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "list":
            found = state.feedback(review=args.review, limit=args.limit)
            print("\n\n".join(describe(r) for r in found) if found else f"no {args.review} feedback")
        elif args.command in ("accept", "reject"):
            try:
                record = state.review(args.id, accept=args.command == "accept", expect=getattr(args, "expect", None),
                                      docs=getattr(args, "doc", None))  # fmt: skip
            except LookupError as exc:
                print(f"eval.feedback: {exc.args[0]}", file=sys.stderr)
                return 1
            print(describe(record))
        else:
            n = export(state, args.path)
            print(f"wrote {n} accepted cases to {args.path}")
    finally:
        state.db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
