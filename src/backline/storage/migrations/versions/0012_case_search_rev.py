"""Similar cases: every write to ``case_search`` is stamped with a revision.

Each process answering similar-case queries keeps the lexical index in memory
(:mod:`backline.knowledge.similar.lexindex`) and must see every change at its
next query.  The ``search_terms`` row ``" rev"`` counts the writes (the indexer
bumps it first thing in its transaction, so writers commit in revision order:
the row stays locked until commit), and ``case_search.rev`` (indexed) says which
write made each row: a reader that sees ``" rev"`` = R loads the rows above the
revision it holds, and has every write up to R.  Rows written before this
revision have 0 (a process loads them all at its first query anyway).

Also ``ix_cases_filter`` (id, product, org, team, created_by): the columns the similar-case filter
reads, so asking which of a thousand ranked cases a user may see reads this small index, not a
page of ``cases`` per case (SQLite names it in the statement).

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_TERM = " rev"


def upgrade() -> None:
    rev_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    # a plain ADD COLUMN (a batch copy of the table would drop SQLite's FTS5 triggers on it)
    op.add_column('case_search', sa.Column('rev', rev_type, nullable=False, server_default='0'))
    op.create_index('ix_case_search_rev', 'case_search', ['rev'])
    op.create_index('ix_cases_filter', 'cases', ['id', 'product', 'org', 'team', 'created_by'])
    bind = op.get_bind()
    bind.execute(sa.text("DELETE FROM search_terms WHERE term = :t"), {"t": _TERM})
    bind.execute(sa.text("INSERT INTO search_terms (term, df) VALUES (:t, 0)"), {"t": _TERM})


def downgrade() -> None:
    op.execute(f"DELETE FROM search_terms WHERE term = '{_TERM}'")
    op.drop_index('ix_cases_filter', 'cases')
    op.drop_index('ix_case_search_rev', 'case_search')
    op.drop_column('case_search', 'rev')     # SQLite >= 3.35 drops it in place (triggers kept)
