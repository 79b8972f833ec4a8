"""Application state: answered turns (conversations), the feedback on them, in one SQL database.

SQLite in the data dir by default (embedded, nothing to start); PostgreSQL in the compose stack
(``RAG_DATABASE_URL=postgresql+psycopg://...``). The same code runs over both: SQLAlchemy 2 for the
queries, Alembic for the schema (``services/state/migrations``), applied when the database is opened.

The chat answers do not depend on it: a database that is down costs the record of a turn (logged) and
makes the feedback and conversation routes answer 503, never a failed chat.
"""
