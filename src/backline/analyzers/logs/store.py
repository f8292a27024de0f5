"""The log event store: parsed records in Parquet, queried with DuckDB.

:class:`RecordWriter` streams records into a Parquet file in batches (memory
bounded by the batch size).  Template ids are only final once the whole file
has been mined, so records are written with the miner's *shape* number and
:meth:`RecordWriter.close` stores the final shape -> template table in the
file's metadata; :func:`query` joins the two.  The ``records`` view has the
columns of :data:`COLUMNS`.

:func:`query` runs SQL over one or more such files (or a folder of them),
exposed as the view ``records``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from backline.errors import StorageError, UsageError
from backline.model import Severity, TsQuality

if TYPE_CHECKING:
    from backline.analyzers.logs.blocks import RecordBlock

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
#: How the records are written: a fast codec; dictionary pages only for the columns of few
#: distinct values (tried on the message column they are work thrown away); min/max
#: statistics only where a query prunes with them (time, line, shape).  A third less CPU
#: than pyarrow's defaults with LZ4, and a smaller file.
WRITE_OPTIONS = dict(
    compression="lz4",
    use_dictionary=["ts_quality", "artifact", "level", "severity", "component", "pid", "thread", "host"],
    write_statistics=["ts", "line", "end_line", "shape"],
)
#: Buffer compression of a byte range's raw records (Arrow IPC).  None: about 140 bytes a
#: record on disk until the join (1.4x the log's size; LZ4 halves that and costs 0.3 CPU s
#: per million records to write and 0.1 s to read back, in the serial join).
RAW_COMPRESSION = None
#: Key of the shape -> (template id, template) table in a records file's metadata.
TEMPLATES_KEY = "backline.templates"
#: Longest message kept in the table (characters).
MAX_MESSAGE = 4096
_QVAL = {q: q.value for q in TsQuality}
_LABEL = {s: s.label for s in Severity}



def _seal(w, templates: dict[int, tuple[str, str]], before=None) -> Path:
    """Finish a records file: ``before()`` (the last rows), the templates into the file's key-value
    metadata, close, and move the temporary file into place (``w``: a writer with ``_writer``,
    ``_tmp`` and ``path``).  Any failure is a StorageError and leaves no temporary file."""
    try:
        if before is not None:
            before()
        w._writer.add_key_value_metadata({
            TEMPLATES_KEY: json.dumps([[k, t[0], t[1]] for k, t in sorted(templates.items())])})
        w._writer.close()
        w._tmp.replace(w.path)
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"cannot write the records table {w.path}: {exc}") from exc
    finally:
        w._tmp.unlink(missing_ok=True)
    return w.path

class RecordWriter:
    """Write records to ``path`` (Parquet); call :meth:`close` with the templates.

    ``raw``: a byte range's records, joined into one file later (:func:`join_raw_parts`):
    written as an Arrow IPC file - a twentieth of the CPU of Parquet, and the join maps it
    back without decoding anything; call :meth:`close_raw`."""

    def __init__(self, path: str | Path, artifact: str, *, raw: bool = False):
        self.path = Path(path)
        self.artifact = artifact
        self.raw = raw
        self._tmp = self.path.with_suffix(".raw.arrow" if raw else ".raw.parquet")
        if raw:
            self._sink = pa.OSFile(str(self._tmp), "wb")
            self._writer = pa.ipc.new_file(self._sink, _RAW_SCHEMA,
                                           options=pa.ipc.IpcWriteOptions(compression=RAW_COMPRESSION))
        else:
            self._writer = pq.ParquetWriter(self._tmp, _RAW_SCHEMA, **WRITE_OPTIONS)
        self._rows: list[tuple] = []
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
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

    def add_block(self, b: "RecordBlock") -> None:
        """Add a block of records (:class:`.blocks.RecordBlock`): the columns are made from
        the engine's buffers (Arrow arrays over them, label columns through a dictionary),
        no Python object per record."""
        if not b.n:
            return
        self._flush()
        n = b.n
        from backline.analyzers.logs.blocks import NO_TS, QUALITY

        q_dict = pa.array([q.value for q in QUALITY], pa.string())
        s_dict = pa.array([Severity(i).label for i in range(5)], pa.string())
        cols = [
            pa.array(b.ts, pa.timestamp("us", tz="UTC"), mask=b.ts == NO_TS),
            pa.DictionaryArray.from_arrays(pa.array(b.ts_quality, pa.int8()), q_dict).cast(pa.string()),
            pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int8)), pa.array([self.artifact])).cast(pa.string()),
            pa.array(b.line, pa.int64()), pa.array(b.end_line, pa.int64()),
            b.strings["level"],
            pa.DictionaryArray.from_arrays(pa.array(b.severity, pa.int8()), s_dict).cast(pa.string()),
            b.strings["component"], b.strings["pid"], b.strings["thread"], b.strings["host"],
            pa.array(b.shape, pa.int32()), b.strings["message"],
        ]
        self._pending.append(pa.Table.from_arrays(cols, schema=_RAW_SCHEMA))
        self._pending_rows += n
        self.rows += n
        if self._pending_rows >= BATCH:
            self._write_pending()

    def _write_pending(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending))
            self._pending.clear()
            self._pending_rows = 0

    def _flush(self) -> None:
        if not self._rows:
            return
        cols = list(zip(*self._rows))
        self._pending.append(pa.table(dict(zip(_RAW_SCHEMA.names, cols)), schema=_RAW_SCHEMA))
        self._pending_rows += len(self._rows)
        self._rows.clear()
        self._write_pending()

    def close(self, templates: dict[int, tuple[str, str]]) -> Path:
        """Finish the file: ``templates`` maps shape -> (template_id, template).

        Records are written once, with their miner shape; the shape -> template table
        (final only now) goes into the file's key-value metadata (``backline.templates``),
        and :func:`query` joins the two into the ``template_id`` and ``template`` columns.
        """
        self._flush()
        self._write_pending()
        return _seal(self, templates)


    def close_raw(self) -> Path:
        """Finish the file without templates (a byte range's records, joined later by
        :func:`join_raw_parts`); returns its path."""
        self._flush()
        self._write_pending()
        try:
            self._writer.close()
            if self.raw:
                self._sink.close()
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"cannot write the records table {self._tmp}: {exc}") from exc
        return self._tmp


class RawJoiner:
    """One records file at ``path`` from the byte ranges' raw files, added in file order as
    they come (the first while later ranges are still being read), each with the map of
    its shape numbers to the merged miner's; :meth:`close` with the templates (as for
    :meth:`RecordWriter.close`), or :meth:`abort`.  Part files are removed once read."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._tmp = self.path.with_suffix(".raw.parquet")
        self._shape_col = _RAW_SCHEMA.get_field_index("shape")
        self._pending: list[pa.RecordBatch] = []
        self._rows = 0
        try:
            self._writer = pq.ParquetWriter(self._tmp, _RAW_SCHEMA, **WRITE_OPTIONS)
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"cannot write the records table {self.path}: {exc}") from exc

    def add(self, raw: str | Path, shape_map: dict[int, int]) -> None:
        lookup = np.zeros(max(shape_map, default=0) + 1, np.int32)
        for k, v in shape_map.items():
            lookup[k] = v
        try:
            if str(raw).endswith(".arrow"):
                # read, not mapped: mapped pages would stay resident until the whole part is
                # read (memory would grow with the log)
                with pa.OSFile(str(raw), "rb") as src:
                    reader = pa.ipc.open_file(src)
                    for i in range(reader.num_record_batches):
                        self._put(reader.get_batch(i), lookup)
            else:
                pf = pq.ParquetFile(raw)
                for batch in pf.iter_batches(batch_size=BATCH):
                    self._put(batch, lookup)
                pf.close() if hasattr(pf, "close") else None
        except (OSError, pa.ArrowException) as exc:
            self.abort()
            raise StorageError(f"cannot write the records table {self.path}: {exc}") from exc
        finally:
            Path(raw).unlink(missing_ok=True)

    def _put(self, batch: pa.RecordBatch, lookup: np.ndarray) -> None:
        shapes = batch.column(self._shape_col).to_numpy(zero_copy_only=False)
        cols = list(batch.columns)
        cols[self._shape_col] = pa.array(lookup[shapes], pa.int32())
        self._pending.append(pa.RecordBatch.from_arrays(cols, schema=_RAW_SCHEMA))
        self._rows += batch.num_rows
        if self._rows >= BATCH:
            self._flush()

    def _flush(self) -> None:                # row groups of BATCH rows, as one pass writes them
        if self._pending:
            self._writer.write_table(pa.Table.from_batches(self._pending, _RAW_SCHEMA))
            self._pending.clear()
            self._rows = 0

    def close(self, templates: dict[int, tuple[str, str]]) -> Path:
        return _seal(self, templates, self._flush)

    def abort(self) -> None:
        try:
            self._writer.close()
        except (OSError, pa.ArrowException):
            pass
        self._tmp.unlink(missing_ok=True)


def join_raw_parts(path: str | Path, artifact: str, parts: list[tuple[str, dict[int, int]]],
                   templates: dict[int, tuple[str, str]]) -> Path:
    """One records file at ``path`` from the byte ranges' raw files (in file order), each
    with the map of its shape numbers to the merged miner's; ``templates`` as for
    :meth:`RecordWriter.close`.  The part files are removed (:class:`RawJoiner`)."""
    joiner = RawJoiner(path)
    try:
        for raw, shape_map in parts:
            joiner.add(raw, shape_map)
    except BaseException:
        joiner.abort()
        for raw, _ in parts:
            Path(raw).unlink(missing_ok=True)
        raise
    return joiner.close(templates)


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


class Records:
    """An open DuckDB connection with the view ``records`` over Parquet files, for several
    queries in a row (:func:`open_records`); :meth:`query` as the function :func:`query`."""

    def __init__(self, con):
        self._con = con

    def query(self, sql: str, limit: int | None = None,
              params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        import duckdb

        try:
            try:
                cur = self._con.execute(sql, list(params)) if params else self._con.execute(sql)
            except duckdb.Error as exc:
                raise UsageError(f"SQL error: {str(exc).splitlines()[0]}") from exc
            names = [d[0] for d in cur.description] if cur.description else []
            rows = cur.fetchmany(limit) if limit else cur.fetchall()
            return names, rows
        except duckdb.Error as exc:  # reading the files failed
            raise StorageError(f"cannot read record files: {str(exc).splitlines()[0]}") from exc


@contextmanager
def open_records(paths: Iterable[str | Path]) -> Iterator[Records]:
    """The view ``records`` over the given Parquet files (or folders of them), open for queries."""
    import duckdb

    files = _sources(paths)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone='UTC'")
        con.execute("CREATE TEMP TABLE templates (file VARCHAR, shape INTEGER, template_id VARCHAR, "
                    "template VARCHAR)")
        for f in files:
            meta = pq.read_metadata(f).metadata or {}
            table = meta.get(TEMPLATES_KEY.encode())
            if table:
                con.executemany("INSERT INTO templates VALUES (?, ?, ?, ?)",
                                [(f, k, tid, tpl) for k, tid, tpl in json.loads(table)])
        listing = ", ".join(f"'{_sql_path(Path(f))}'" for f in files)
        cols = ", ".join(f"t.{c}" if c in ("template_id", "template") else f"r.{c}" for c in COLUMNS)
        con.execute(f"CREATE VIEW records AS SELECT {cols} FROM read_parquet([{listing}], union_by_name=true, "
                    "filename=true) r LEFT JOIN templates t ON t.file = r.filename AND t.shape = r.shape")
        yield Records(con)
    except duckdb.Error as exc:
        raise StorageError(f"cannot read record files: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()


def query(paths: Iterable[str | Path], sql: str, limit: int | None = None,
          params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``sql`` over the view ``records`` made of the given Parquet files.

    ``params`` are bound to the ``?`` placeholders of ``sql`` (values never
    become SQL text).  Returns ``(column names, rows)``.  SQL errors become
    :class:`UsageError`.
    """
    with open_records(paths) as rec:
        return rec.query(sql, limit, params)


def default_store_dir() -> Path:
    """Where ``backline logs`` keeps Parquet files it makes (under the data dir)."""
    from backline.config import data_dir

    d = data_dir() / "logs"
    os.makedirs(d, exist_ok=True)
    return d
