"""Similar past cases: external ids of imported cases, the search text, embeddings, term
statistics, the indexing queue and the lexical index (FTS5 on SQLite, full-text search with GIN
indexes on PostgreSQL).  Crash signatures are read from ``case_signatures`` (0006).

Every existing case is queued for indexing (``backline serve`` or ``backline case reindex``).

Revision ID: 0007
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0009'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('case_external',
    sa.Column('case_id', _ID, sa.ForeignKey('cases.id'), primary_key=True, autoincrement=False),
    sa.Column('external_id', sa.String(length=200), nullable=False, unique=True),
    sa.Column('source', sa.String(length=500), nullable=False),
    sa.Column('record', sa.JSON(), nullable=False),
    sa.Column('imported_at', _TS, nullable=False),
    )
    op.create_table('case_search',
    sa.Column('case_id', _ID, sa.ForeignKey('cases.id'), primary_key=True, autoincrement=False),
    sa.Column('title_terms', sa.Text(), nullable=False),
    sa.Column('body_terms', sa.Text(), nullable=False),
    sa.Column('internal_terms', sa.Text(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('indexed_at', _TS, nullable=False),
    )
    op.create_table('case_vectors',
    sa.Column('id', _ID, primary_key=True, autoincrement=True),
    sa.Column('case_id', _ID, sa.ForeignKey('cases.id'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('dim', sa.Integer(), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sqlite_autoincrement=True,
    )
    op.create_index('ix_case_vectors_case', 'case_vectors', ['case_id'])
    op.create_table('search_terms',
    sa.Column('term', sa.String(length=64), primary_key=True),
    sa.Column('df', sa.Integer(), nullable=False),
    )
    op.create_table('similar_queue',
    sa.Column('id', _ID, primary_key=True, autoincrement=True),
    sa.Column('case_id', _ID, sa.ForeignKey('cases.id'), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('queued_at', _TS, nullable=False),
    )
    op.create_index('ix_similar_queue_case', 'similar_queue', ['case_id'])

    # cases made before this revision: queue them all for indexing
    op.execute("INSERT INTO similar_queue (case_id, reason, queued_at) "
               "SELECT id, 'migration', CURRENT_TIMESTAMP FROM cases")

    if op.get_bind().dialect.name == "postgresql":
        # 'simple': the terms are made by backline.knowledge.similar.text (lower-cased, stop words
        # gone); title terms weigh A, public text B; internal notes have their own column
        op.execute("""
            CREATE TABLE case_fts (
                case_id BIGINT PRIMARY KEY REFERENCES case_search(case_id) ON DELETE CASCADE,
                tsv tsvector NOT NULL,
                tsv_internal tsvector NOT NULL)
        """)
        op.execute("CREATE INDEX ix_case_fts_tsv ON case_fts USING gin (tsv)")
        op.execute("CREATE INDEX ix_case_fts_internal ON case_fts USING gin (tsv_internal)")
        op.execute("""
            CREATE FUNCTION backline_case_fts() RETURNS trigger AS $$
            BEGIN
                INSERT INTO case_fts (case_id, tsv, tsv_internal) VALUES (
                    NEW.case_id,
                    setweight(to_tsvector('simple', NEW.title_terms), 'A')
                        || setweight(to_tsvector('simple', NEW.body_terms), 'B'),
                    to_tsvector('simple', NEW.internal_terms))
                ON CONFLICT (case_id) DO UPDATE SET tsv = EXCLUDED.tsv, tsv_internal = EXCLUDED.tsv_internal;
                RETURN NEW;
            END
            $$ LANGUAGE plpgsql
        """)
        op.execute("""
            CREATE TRIGGER case_search_fts AFTER INSERT OR UPDATE ON case_search
            FOR EACH ROW EXECUTE FUNCTION backline_case_fts()
        """)
    else:
        op.execute("""
            CREATE VIRTUAL TABLE case_fts USING fts5(
                title_terms, body_terms, internal_terms,
                content='case_search', content_rowid='case_id', tokenize='unicode61')
        """)
        op.execute("""
            CREATE TRIGGER case_search_fts_ins AFTER INSERT ON case_search BEGIN
                INSERT INTO case_fts (rowid, title_terms, body_terms, internal_terms)
                VALUES (new.case_id, new.title_terms, new.body_terms, new.internal_terms);
            END
        """)
        op.execute("""
            CREATE TRIGGER case_search_fts_del AFTER DELETE ON case_search BEGIN
                INSERT INTO case_fts (case_fts, rowid, title_terms, body_terms, internal_terms)
                VALUES ('delete', old.case_id, old.title_terms, old.body_terms, old.internal_terms);
            END
        """)
        op.execute("""
            CREATE TRIGGER case_search_fts_upd AFTER UPDATE ON case_search BEGIN
                INSERT INTO case_fts (case_fts, rowid, title_terms, body_terms, internal_terms)
                VALUES ('delete', old.case_id, old.title_terms, old.body_terms, old.internal_terms);
                INSERT INTO case_fts (rowid, title_terms, body_terms, internal_terms)
                VALUES (new.case_id, new.title_terms, new.body_terms, new.internal_terms);
            END
        """)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER case_search_fts ON case_search")
        op.execute("DROP FUNCTION backline_case_fts()")
        op.execute("DROP TABLE case_fts")
    else:
        for t in ("ins", "del", "upd"):
            op.execute(f"DROP TRIGGER case_search_fts_{t}")
        op.execute("DROP TABLE case_fts")
    for name in ("similar_queue", "search_terms", "case_vectors", "case_search",
                 "case_external"):
        op.drop_table(name)
