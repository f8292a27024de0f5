"""The log event store: parsed records in Parquet, queried with DuckDB.

:class:`RecordWriter` streams records into a Parquet file in batches (memory
bounded by the batch size).  Template ids are only final once the whole file
has been mined, so records are written with the miner's *shape* number and
:meth:`RecordWriter.close` joins them with the final shape -> template table
in DuckDB (which streams too).  The ``records`` table has the columns of
:data:`COLUMNS`.

:func:`query` runs SQL over one or more such files (or a folder of them),
exposed as the view ``records``.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from backline.errors import StorageError, UsageError

#: Columns of the ``records`` table.
COLUMNS = ("ts", "ts_quality", "artifact", "line", "end_line", "level", "severity", "component",
           "pid", "thread", "host", "template_id", "template", "message")

_RAW_SCHEMA = pa.schema([
    ("ts", pa.timestamp("us", tz="UTC")), ("ts_quality", pa.string()), ("artifact", pa.string()),
    ("line", pa.int64()), ("end_line", pa.int64()), ("level", pa.string()), ("severity", pa.string()),
    ("component", pa.string()), ("pid", pa.string()), ("thread", pa.string()), ("host", pa.string()),
    ("shape", pa.int32()), ("message", pa.string()),
])
BATCH = 65_536


class RecordWriter:
    """Write records to ``path`` (Parquet); call :meth:`close` with the templates."""

    def __init__(self, path: str | Path, artifact: str):
        self.path = Path(path)
        self.artifact = artifact
        self._tmp = self.path.with_suffix(".raw.parquet")
        self._writer = pq.ParquetWriter(self._tmp, _RAW_SCHEMA, compression="zstd")
        self._rows: list[tuple] = []
        self.rows = 0

    def add(self, *, ts: datetime | None, ts_quality: str, line: int, end_line: int, level: str,
            severity: str, component: str, pid: str, thread: str, host: str, shape: int,
            message: str) -> None:
        """Add one record (keyword arguments, see :data:`COLUMNS`)."""
        self.add_row((ts, ts_quality, self.artifact, line, end_line, level, severity, component, pid,
                      thread, host, shape, message[:4096]))

    def add_row(self, row: tuple) -> None:
        """Add one record as a tuple in the order of the raw schema (fast path)."""
        self._rows.append(row)
        self.rows += 1
        if len(self._rows) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        cols = list(zip(*self._rows))
        self._writer.write_table(pa.table(dict(zip(_RAW_SCHEMA.names, cols)), schema=_RAW_SCHEMA))
        self._rows.clear()

    def close(self, templates: dict[int, tuple[str, str]]) -> Path:
        """Finish the file: ``templates`` maps shape -> (template_id, template)."""
        import duckdb

        self._flush()
        self._writer.close()
        shapes = list(templates)
        tmap = pa.table({"shape": pa.array(shapes, pa.int32()),
                         "template_id": [templates[s][0] for s in shapes],
                         "template": [templates[s][1] for s in shapes]})
        con = duckdb.connect()
        try:
            con.register("tmap", tmap)
            cols = ", ".join(f"r.{c}" if c not in ("template_id", "template") else f"t.{c}"
                             for c in COLUMNS)
            con.execute(
                f"COPY (SELECT {cols} FROM read_parquet('{_sql_path(self._tmp)}') r "
                f"LEFT JOIN tmap t USING (shape) ORDER BY r.line) "
                f"TO '{_sql_path(self.path)}' (FORMAT PARQUET, COMPRESSION ZSTD)")
        finally:
            con.close()
            self._tmp.unlink(missing_ok=True)
        return self.path


def _sql_path(p: Path) -> str:
    return str(p).replace("'", "''")


def _sources(paths: Iterable[str | Path]) -> list[str]:
    out: list[str] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(str(f) for f in p.rglob("*.parquet") if not f.name.endswith(".raw.parquet"))
        elif p.is_file():
            out.append(str(p))
        else:
            raise UsageError(f"no such file or folder: {p}")
    if not out:
        raise UsageError("no Parquet record files found in " + ", ".join(str(p) for p in paths))
    return out


def query(paths: Iterable[str | Path], sql: str, limit: int | None = None
          ) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``sql`` over the view ``records`` made of the given Parquet files.

    Returns ``(column names, rows)``.  SQL errors become :class:`UsageError`.
    """
    import duckdb

    files = _sources(paths)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone='UTC'")
        listing = ", ".join(f"'{_sql_path(Path(f))}'" for f in files)
        con.execute(f"CREATE VIEW records AS SELECT * FROM read_parquet([{listing}], union_by_name=true)")
        try:
            cur = con.execute(sql)
        except duckdb.Error as exc:
            raise UsageError(f"SQL error: {str(exc).splitlines()[0]}") from exc
        names = [d[0] for d in cur.description] if cur.description else []
        rows = cur.fetchmany(limit) if limit else cur.fetchall()
        return names, rows
    except duckdb.Error as exc:  # reading the files failed
        raise StorageError(f"cannot read record files: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()


def default_store_dir() -> Path:
    """Where ``backline logs`` keeps Parquet files it makes (under the data dir)."""
    from backline.config import data_dir

    d = data_dir() / "logs"
    os.makedirs(d, exist_ok=True)
    return d
