"""Similar cases: PostgreSQL's ``case_fts`` carries the case facts the search filters on.

The lexical half filters every case holding a query term by product and by the
visibility rule (organisation, team, creator).  Reading those from ``cases``
cost one index probe and heap visit per posting (3,600 of them, ~30 ms of a
query's 60 ms at 100,000 cases); the ``case_fts`` row holding the case id is
read anyway, so the four facts now live there too.  The trigger that fills
``case_fts`` from ``case_search`` copies them from ``cases``, and a trigger on
``cases`` follows a change of any of them.  SQLite is unchanged (FTS5 has no
such columns; its join is a B-tree lookup).

Revision ID: 0011
Revises: 0010
"""
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_FTS_FUNCTION = """
    CREATE OR REPLACE FUNCTION backline_case_fts() RETURNS trigger AS $$
    BEGIN
        INSERT INTO case_fts (case_id, tsv, tsv_internal{facts}) SELECT
            NEW.case_id,
            setweight(to_tsvector('simple', NEW.title_terms), 'A')
                || setweight(to_tsvector('simple', NEW.body_terms), 'B'),
            to_tsvector('simple', NEW.internal_terms){values}
        ON CONFLICT (case_id) DO UPDATE SET tsv = EXCLUDED.tsv, tsv_internal = EXCLUDED.tsv_internal{update};
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql
"""
_FACTS = ("product", "org", "team", "created_by")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE case_fts ADD COLUMN product VARCHAR(200), ADD COLUMN org VARCHAR(200), "
               "ADD COLUMN team VARCHAR(200), ADD COLUMN created_by BIGINT")
    op.execute("UPDATE case_fts f SET product = c.product, org = c.org, team = c.team, created_by = c.created_by "
               "FROM cases c WHERE c.id = f.case_id")
    op.execute(_FTS_FUNCTION.format(
        facts="".join(f", {f}" for f in _FACTS),
        values="".join(f", c.{f}" for f in _FACTS) + " FROM cases c WHERE c.id = NEW.case_id",
        update="".join(f", {f} = EXCLUDED.{f}" for f in _FACTS)))
    op.execute("""
        CREATE FUNCTION backline_case_fts_facts() RETURNS trigger AS $$
        BEGIN
            UPDATE case_fts SET product = NEW.product, org = NEW.org, team = NEW.team,
                                created_by = NEW.created_by
            WHERE case_id = NEW.id;
            RETURN NEW;
        END
        $$ LANGUAGE plpgsql
    """)
    op.execute("""
        CREATE TRIGGER cases_fts_facts AFTER UPDATE OF product, org, team, created_by ON cases
        FOR EACH ROW WHEN (OLD.product IS DISTINCT FROM NEW.product OR OLD.org IS DISTINCT FROM NEW.org
                           OR OLD.team IS DISTINCT FROM NEW.team OR OLD.created_by IS DISTINCT FROM NEW.created_by)
        EXECUTE FUNCTION backline_case_fts_facts()
    """)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER cases_fts_facts ON cases")
    op.execute("DROP FUNCTION backline_case_fts_facts()")
    op.execute(_FTS_FUNCTION.format(facts="", values="", update=""))
    op.execute("ALTER TABLE case_fts DROP COLUMN product, DROP COLUMN org, DROP COLUMN team, DROP COLUMN created_by")
