"""The diagnosis: finding times (for reasoning over a case's stored evidence) and each analysis
job's probable causes.

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('findings') as batch:
        batch.add_column(sa.Column('first_seen', _TS, nullable=True))
        batch.add_column(sa.Column('last_seen', _TS, nullable=True))
    op.create_table('case_diagnoses',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('case_id', _ID, nullable=False),
    sa.Column('job_id', _ID, nullable=False),
    sa.Column('evidence_id', _ID, nullable=False),
    sa.Column('version', sa.String(length=20), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.Column('incident_start', _TS, nullable=True),
    sa.Column('incident_end', _TS, nullable=True),
    sa.Column('causes', sa.JSON(), nullable=False),
    sa.Column('created_at', _TS, nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['evidence_id'], ['evidence.id'], ),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_case_diagnoses_case', 'case_diagnoses', ['case_id'], unique=False)


def downgrade() -> None:
    op.drop_table('case_diagnoses')
    with op.batch_alter_table('findings') as batch:
        batch.drop_column('last_seen')
        batch.drop_column('first_seen')
