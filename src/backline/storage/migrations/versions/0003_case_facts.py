"""Facts learned from evidence (os, cpu, process, ...) stored with the case.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('case_facts',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('case_id', _ID, nullable=False),
    sa.Column('job_id', _ID, nullable=False),
    sa.Column('evidence_id', _ID, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('value', sa.JSON(), nullable=True),
    sa.Column('artifact', sa.String(length=1000), nullable=False),
    sa.Column('analyzer', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['evidence_id'], ['evidence.id'], ),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_case_facts_case', 'case_facts', ['case_id'], unique=False)


def downgrade() -> None:
    op.drop_table('case_facts')
