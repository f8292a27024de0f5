"""What the drill-down views need: each job's artifacts, and where evidence came from.

``evidence_artifacts`` lists every file an analysis found in a piece of
evidence (display path, kind, sha256 in the blob store, the derived records
file kept for it); ``evidence.origin`` says where evidence that was not an
upload came from (an analysis attached from a laptop: who, which host).

Revision ID: 0009
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0006'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.add_column('evidence', sa.Column('origin', sa.JSON(), nullable=True))
    op.create_table('evidence_artifacts',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('case_id', _ID, nullable=False),
    sa.Column('evidence_id', _ID, nullable=False),
    sa.Column('job_id', _ID, nullable=False),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('format', sa.String(length=100), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('records', sa.String(length=200), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['evidence_id'], ['evidence.id'], ),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_evidence_artifacts_evidence', 'evidence_artifacts', ['evidence_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_evidence_artifacts_evidence', table_name='evidence_artifacts')
    op.drop_table('evidence_artifacts')
    with op.batch_alter_table('evidence') as batch:
        batch.drop_column('origin')
