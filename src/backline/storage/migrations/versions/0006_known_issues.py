"""Known issues with revisions, and crash signatures per case (for links across cases).

Revision ID: 0006
Revises: 0005

``case_signatures`` is filled from the stored findings of existing cases here,
and by the job runner from then on.
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('known_issues',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('source_case_id', _ID, nullable=True),
    sa.Column('created_by', _ID, nullable=False),
    sa.Column('created_at', _TS, nullable=False),
    sa.Column('updated_at', _TS, nullable=False),
    sa.ForeignKeyConstraint(['source_case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key', name='uq_known_issues_key')
    )
    op.create_index('ix_known_issues_status', 'known_issues', ['status'], unique=False)
    op.create_table('known_issue_revisions',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('issue_id', _ID, nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('change', sa.String(length=32), nullable=False),
    sa.Column('edited_by', _ID, nullable=False),
    sa.Column('edited_at', _TS, nullable=False),
    sa.ForeignKeyConstraint(['issue_id'], ['known_issues.id'], ),
    sa.ForeignKeyConstraint(['edited_by'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('issue_id', 'revision', name='uq_known_issue_revision')
    )
    op.create_table('case_signatures',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('case_id', _ID, nullable=False),
    sa.Column('job_id', _ID, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=500), nullable=False),
    sa.Column('artifact', sa.String(length=1000), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_case_signatures_value', 'case_signatures', ['kind', 'value'], unique=False)
    op.create_index('ix_case_signatures_case', 'case_signatures', ['case_id'], unique=False)
    # signatures of the findings already stored
    conn = op.get_bind()
    findings = sa.table('findings', sa.column('case_id', _ID), sa.column('job_id', _ID),
                        sa.column('artifact', sa.String), sa.column('code', sa.String), sa.column('data', sa.JSON))
    sigs = sa.table('case_signatures', sa.column('case_id', _ID), sa.column('job_id', _ID),
                    sa.column('kind', sa.String), sa.column('value', sa.String), sa.column('artifact', sa.String))
    seen = set()
    rows = []
    for case_id, job_id, artifact, code, data in conn.execute(
            sa.select(findings.c.case_id, findings.c.job_id, findings.c.artifact, findings.c.code, findings.c.data)):
        if not isinstance(data, dict) or str(code).startswith("KB."):
            continue
        for kind, field in (("signature", "signature"), ("bucket", "bucket_id")):
            value = data.get(field)
            if value and (case_id, job_id, kind, str(value)[:500]) not in seen:
                seen.add((case_id, job_id, kind, str(value)[:500]))
                rows.append({"case_id": case_id, "job_id": job_id, "kind": kind, "value": str(value)[:500],
                             "artifact": str(artifact)[:1000]})
    if rows:
        op.bulk_insert(sigs, rows)


def downgrade() -> None:
    op.drop_table('case_signatures')
    op.drop_table('known_issue_revisions')
    op.drop_table('known_issues')
