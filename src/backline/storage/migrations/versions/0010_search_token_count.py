"""Similar cases: the total number of tokens of the indexed cases, for BM25 on PostgreSQL.

PostgreSQL ranks the lexical half by BM25 like SQLite's FTS5 ``bm25()``; its average document
length is this total (a ``search_terms`` row, term ``" tokens"``, kept by the indexer) over the
number of cases (term ``""``).  The count is filled here from ``case_search`` on both dialects
(tokens as FTS5's ``unicode61`` makes them: runs of letters and digits), and ``search_terms.df``
becomes a 64-bit integer on PostgreSQL (a total of tokens may pass 2**31).

Revision ID: 0010
Revises: 0008
"""
import re

from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0008'
branch_labels = None
depends_on = None

_TERM = " tokens"
_TOKEN = re.compile(r"[a-z0-9]+")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.alter_column('search_terms', 'df', type_=sa.BigInteger(), existing_nullable=False)
    total = 0
    last = -1
    while True:
        rows = bind.execute(sa.text(
            "SELECT case_id, title_terms, body_terms, internal_terms FROM case_search "
            "WHERE case_id > :last ORDER BY case_id LIMIT 2000"), {"last": last}).all()
        if not rows:
            break
        for r in rows:
            total += sum(len(_TOKEN.findall(x or "")) for x in r[1:])
        last = rows[-1][0]
    bind.execute(sa.text("DELETE FROM search_terms WHERE term = :t"), {"t": _TERM})
    if total:
        bind.execute(sa.text("INSERT INTO search_terms (term, df) VALUES (:t, :n)"), {"t": _TERM, "n": total})


def downgrade() -> None:
    op.execute(f"DELETE FROM search_terms WHERE term = '{_TERM}'")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column('search_terms', 'df', type_=sa.Integer(), existing_nullable=False)
