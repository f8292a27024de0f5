"""The case service's tables (SQLAlchemy Core).

The schema is created and upgraded only by the Alembic migrations in
``backline/storage/migrations``; this module is the same schema as Python
objects for queries, and a test checks the two agree.
"""

from __future__ import annotations

from sqlalchemy import (JSON, BigInteger, Boolean, Column, DateTime, Float, ForeignKey, Index,
                        Integer, LargeBinary, MetaData, String, Table, Text, UniqueConstraint)

metadata = MetaData()

TS = DateTime(timezone=True)
ID = BigInteger().with_variant(Integer, "sqlite")

users = Table(
    "users", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("org", String(200)),
    Column("team", String(200)),
    Column("email", String(320)),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("token_expires_at", TS),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", TS, nullable=False),
    Column("password_hash", String(200)),                   # revision 0005 (argon2id, web login)
)

cases = Table(
    "cases", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("key", String(32), nullable=False, unique=True),
    Column("title", String(500), nullable=False),
    Column("product", String(200), nullable=False),
    Column("version", String(100), nullable=False),
    Column("org", String(200), nullable=False),
    Column("severity", String(2), nullable=False),
    Column("status", String(32), nullable=False),
    Column("owner_id", ForeignKey("users.id")),
    Column("co_owners", JSON, nullable=False),
    Column("team", String(200)),
    Column("created_by", ForeignKey("users.id"), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("row_version", Integer, nullable=False),
    Column("intake", JSON, nullable=False),
    Column("intake_score", Float, nullable=False),
    Column("intake_missing", JSON, nullable=False),
    Column("sla_policy", String(100), nullable=False),
    Column("calendar", String(100)),
    Column("first_response_at", TS),
    Column("last_customer_contact_at", TS),
    Column("last_staff_contact_at", TS),
    Column("resolved_at", TS),
    Column("returned_for_info", Boolean, nullable=False),
    Index("ix_cases_org", "org"),
    Index("ix_cases_status", "status"),
    # the similar-case filter's columns (revision 0012): read instead of the rows
    Index("ix_cases_filter", "id", "product", "org", "team", "created_by"),
)

case_links = Table(
    "case_links", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id"), nullable=False),
    Column("other_key", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    UniqueConstraint("case_id", "other_key", name="uq_case_links"),
)

participants = Table(
    "participants", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id"), nullable=False),
    Column("user_id", ForeignKey("users.id")),
    Column("name", String(200), nullable=False),
    Column("email", String(320)),
    Column("role", String(32), nullable=False),
    Index("ix_participants_case", "case_id"),
)

notes = Table(
    "notes", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id"), nullable=False),
    Column("author_id", ForeignKey("users.id"), nullable=False),
    Column("body", Text, nullable=False),
    Column("visibility", String(16), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("revisions", Integer, nullable=False),
    Index("ix_notes_case", "case_id"),
)

note_revisions = Table(
    "note_revisions", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("note_id", ForeignKey("notes.id"), nullable=False),
    Column("body", Text, nullable=False),
    Column("visibility", String(16), nullable=False),
    Column("edited_by", ForeignKey("users.id"), nullable=False),
    Column("edited_at", TS, nullable=False),
)

status_history = Table(
    "status_history", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id"), nullable=False),
    Column("from_status", String(32)),
    Column("to_status", String(32), nullable=False),
    Column("at", TS, nullable=False),
    Column("by_id", ForeignKey("users.id"), nullable=False),
    Index("ix_status_history_case", "case_id"),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("at", TS, nullable=False),
    Column("actor_id", ForeignKey("users.id")),
    Column("actor", String(200), nullable=False),
    Column("case_id", ForeignKey("cases.id")),
    Column("entity", String(32), nullable=False),
    Column("entity_id", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("before", JSON),
    Column("after", JSON),
    Index("ix_audit_case", "case_id"),
)

evidence = Table(
    "evidence", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id"), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("uploaded_by", ForeignKey("users.id"), nullable=False),
    Column("uploaded_at", TS, nullable=False),
    Column("origin", JSON),                      # revision 0009: None for uploads
    Index("ix_evidence_case", "case_id"),
)

jobs = Table(
    "jobs", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id"), nullable=False),
    Column("evidence_id", ForeignKey("evidence.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text),
    Column("worker", String(100)),
    Column("created_at", TS, nullable=False),
    Column("started_at", TS),
    Column("finished_at", TS),
    Index("ix_jobs_status", "status"),
)

findings = Table(
    "findings", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id"), nullable=False),
    Column("job_id", ForeignKey("jobs.id"), nullable=False),
    Column("evidence_id", ForeignKey("evidence.id"), nullable=False),
    Column("code", String(100), nullable=False),
    Column("title", String(500), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("artifact", String(1000), nullable=False),
    Column("detail", Text, nullable=False),
    Column("count", Integer, nullable=False),
    Column("refs", JSON, nullable=False),
    Column("data", JSON, nullable=False),
    Column("analyzer", String(100), nullable=False),
    Column("first_seen", TS),                               # revision 0008 (diagnosis over stored evidence)
    Column("last_seen", TS),                                # revision 0008
    Index("ix_findings_case", "case_id"),
)

bugs = Table(
    "bugs", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id"), nullable=False),
    Column("title", String(500), nullable=False),
    Column("fields", JSON, nullable=False),
    Column("tracker", String(32)),
    Column("external_key", String(100)),
    Column("external_url", String(1000)),
    Column("external_status", String(100)),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("row_version", Integer, nullable=False),
)

# --- revision 0002 --------------------------------------------------------

hotfixes = Table(
    "hotfixes", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("bug_ids", JSON, nullable=False),
    Column("build", String(200), nullable=False),
    Column("affected_versions", JSON, nullable=False),
    Column("fixed_versions", JSON, nullable=False),
    Column("verification", String(16), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("created_by", ForeignKey("users.id"), nullable=False),
)

hotfix_deliveries = Table(
    "hotfix_deliveries", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("hotfix_id", ForeignKey("hotfixes.id"), nullable=False),
    Column("case_id", ForeignKey("cases.id"), nullable=False),
    Column("org", String(200), nullable=False),
    Column("delivered_at", TS, nullable=False),
    UniqueConstraint("hotfix_id", "case_id", name="uq_hotfix_delivery"),
)

sla_notifications = Table(
    "sla_notifications", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id"), nullable=False),
    Column("clock", String(32), nullable=False),
    Column("level", Integer, nullable=False),
    Column("deadline", TS, nullable=False),
    Column("at", TS, nullable=False),
    UniqueConstraint("case_id", "clock", "level", "deadline", name="uq_sla_notification"),
)

outbox = Table(
    "outbox", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("channel", String(16), nullable=False),          # email | webhook
    Column("target", String(1000), nullable=False),
    Column("event", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),           # pending | sent | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", TS, nullable=False),
    Column("last_error", Text),
    Column("created_at", TS, nullable=False),
    Index("ix_outbox_status", "status"),
)

# --- revision 0003 --------------------------------------------------------

case_facts = Table(
    "case_facts", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id"), nullable=False),
    Column("job_id", ForeignKey("jobs.id"), nullable=False),
    Column("evidence_id", ForeignKey("evidence.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("value", JSON),
    Column("artifact", String(1000), nullable=False),
    Column("analyzer", String(100), nullable=False),
    Index("ix_case_facts_case", "case_id"),
)

# --- revision 0005 --------------------------------------------------------

web_sessions = Table(
    "web_sessions", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("session_hash", String(64), nullable=False, unique=True),   # sha256 of the cookie value
    Column("user_id", ForeignKey("users.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("ended_at", TS),
    Column("address", String(64)),
    Index("ix_web_sessions_user", "user_id"),
)

login_attempts = Table(
    "login_attempts", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),              # user | addr
    Column("subject", String(200), nullable=False),
    Column("at", TS, nullable=False),
    Index("ix_login_attempts_subject", "kind", "subject", "at"),
)

case_events = Table(
    "case_events", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id"), nullable=False),
    Column("job_id", ForeignKey("jobs.id"), nullable=False),
    Column("evidence_id", ForeignKey("evidence.id"), nullable=False),
    Column("ts", TS),
    Column("artifact", String(1000), nullable=False),
    Column("kind", String(100), nullable=False),
    Column("summary", Text, nullable=False),
    Column("severity", Integer, nullable=False),
    Column("locator", String(200)),
    Column("excerpt", Text),
    Column("analyzer", String(100), nullable=False),
    Index("ix_case_events_case", "case_id", "ts"),
)

# --- revision 0008 --------------------------------------------------------

case_diagnoses = Table(
    "case_diagnoses", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id"), nullable=False),
    Column("job_id", ForeignKey("jobs.id"), nullable=False),
    Column("evidence_id", ForeignKey("evidence.id"), nullable=False),
    Column("version", String(20), nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("incident_start", TS),
    Column("incident_end", TS),
    Column("causes", JSON, nullable=False),                 # the JSON report's probable_causes, + finding_id
    Column("created_at", TS, nullable=False),
    Index("ix_case_diagnoses_case", "case_id"),
)

# --- revision 0006 --------------------------------------------------------

known_issues = Table(
    "known_issues", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("key", String(32), nullable=False),
    Column("title", String(500), nullable=False),
    Column("status", String(16), nullable=False),              # draft | published | retired
    Column("body", JSON, nullable=False),                      # the entry's data form (docs/knowledge.md)
    Column("revision", Integer, nullable=False),
    Column("source_case_id", ForeignKey("cases.id")),          # promoted from this case
    Column("created_by", ForeignKey("users.id"), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("key", name="uq_known_issues_key"),
    Index("ix_known_issues_status", "status"),
)

known_issue_revisions = Table(
    "known_issue_revisions", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("issue_id", ForeignKey("known_issues.id"), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("body", JSON, nullable=False),
    Column("change", String(32), nullable=False),              # create | edit | publish | retire | promote
    Column("edited_by", ForeignKey("users.id"), nullable=False),
    Column("edited_at", TS, nullable=False),
    UniqueConstraint("issue_id", "revision", name="uq_known_issue_revision"),
)

case_signatures = Table(
    "case_signatures", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id"), nullable=False),
    Column("job_id", ForeignKey("jobs.id"), nullable=False),
    Column("kind", String(16), nullable=False),                # signature | bucket
    Column("value", String(500), nullable=False),
    Column("artifact", String(1000), nullable=False),
    Index("ix_case_signatures_value", "kind", "value"),
    Index("ix_case_signatures_case", "case_id"),
)

# --- revision 0009 --------------------------------------------------------

evidence_artifacts = Table(
    "evidence_artifacts", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id"), nullable=False),
    Column("evidence_id", ForeignKey("evidence.id"), nullable=False),
    Column("job_id", ForeignKey("jobs.id"), nullable=False),
    Column("path", String(1000), nullable=False),          # display path: bundle.zip!/logs/app.log
    Column("kind", String(32), nullable=False),
    Column("format", String(100), nullable=False),
    Column("sha256", String(64)),                          # the bytes in the blob store (None: unreadable)
    Column("size", BigInteger, nullable=False),
    Column("records", String(200)),                        # derived records file, relative to the folder
    Column("note", String(500)),                           # why nothing derived was kept
    Index("ix_evidence_artifacts_evidence", "evidence_id"),
)

# --- revision 0007: similar past cases (knowledge/similar) -------------------
# The lexical index itself, ``case_fts``, is made by the migration per dialect (an FTS5 table
# over ``case_search`` on SQLite, tsvector columns with GIN indexes on PostgreSQL) and kept in
# step with ``case_search`` by triggers; it is not in this metadata.  On PostgreSQL it also carries
# the case facts the search filters on (product, org, team, created_by; revision 0011).  Crash signatures come from
# ``case_signatures`` (revision 0006).

case_external = Table(
    "case_external", metadata,
    Column("case_id", ID, ForeignKey("cases.id"), primary_key=True, autoincrement=False),
    Column("external_id", String(200), nullable=False, unique=True),
    Column("source", String(500), nullable=False),
    Column("record", JSON, nullable=False),          # the imported object, unknown fields included
    Column("imported_at", TS, nullable=False),
)

case_search = Table(
    "case_search", metadata,
    Column("case_id", ID, ForeignKey("cases.id"), primary_key=True, autoincrement=False),
    Column("title_terms", Text, nullable=False),
    Column("body_terms", Text, nullable=False),
    Column("internal_terms", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("indexed_at", TS, nullable=False),
    # the index revision that wrote the row (the ``" rev"`` row of ``search_terms``, bumped by every
    # write; revision 0012): a process's in-memory lexical index loads the rows above the revision it
    # has seen
    Column("rev", BigInteger().with_variant(Integer(), "sqlite"), nullable=False, server_default="0"),
    Index("ix_case_search_rev", "rev"),
)

case_vectors = Table(
    "case_vectors", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id"), nullable=False),
    Column("kind", String(16), nullable=False),      # full | title | internal
    Column("model", String(100), nullable=False),
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),   # float16, little-endian, unit length
    Column("content_hash", String(64), nullable=False),
    Index("ix_case_vectors_case", "case_id"),
    # ids are never reused (SQLite AUTOINCREMENT): each process's copy loads the rows above the
    # highest id it has seen, so a re-indexed case must get higher ids than any before
    sqlite_autoincrement=True,
)

search_terms = Table(
    "search_terms", metadata,
    Column("term", String(64), primary_key=True),
    Column("df", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),  # cases whose public
    # text has the term; two rows are statistics: "" = the number of indexed cases, " tokens" = their
    # total number of tokens (revision 0010), " rev" = the revision of the last write to case_search (0012)
)

similar_queue = Table(
    "similar_queue", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("case_id", ForeignKey("cases.id"), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("queued_at", TS, nullable=False),
    Index("ix_similar_queue_case", "case_id"),
)
