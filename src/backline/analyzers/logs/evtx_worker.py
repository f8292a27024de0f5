"""The process that runs the native EVTX reader (``evtx``, Rust), one chunk at a time.

Run as a script (``python evtx_worker.py``), never imported by the analysis: it holds only
the standard library and ``evtx``.  The Rust reader can loop forever, or allocate without
end, on some damaged chunks (found by fuzzing; upstream omerbenamram/evtx #263, #264, #288,
#290), and native code holding the GIL cannot be interrupted from Python.  So it runs here,
in a process the parent can kill: :mod:`.evtx_analyzer` times every chunk and replaces a
worker that stops answering.

Requests come on stdin, one per line: ``<start chunk>\\t<path as hex of its bytes>``.  For each chunk of the
file from ``start`` on (an EVTX file is a 4 KiB header and 64 KiB chunks, each readable on its
own: templates and strings are chunk-local) the answer on stdout is a series of frames
``kind (1 byte) + length (4 bytes, little-endian) + payload``:

``S`` chunk number (ASCII), sent and flushed before the chunk is read
``R`` a record: event record id (8 bytes, little-endian) + its JSON text (UTF-8)
``P`` a problem with one chunk or record (UTF-8 text naming the chunk)
``F`` the file cannot be read at all (bad file header, I/O error)
``D`` done with this request
"""

from __future__ import annotations

import io
import resource
import struct
import sys

HEADER = 4096
CHUNK = 65536
#: A 64 KiB chunk cannot hold more records than this (a record is at least 24 bytes);
#: more means the reader is going round in circles.
MAX_RECORDS_PER_CHUNK = CHUNK // 24
#: Address space the worker may use (the reader's runaway allocations end here).
MEMORY_LIMIT = 2 << 30


def _frame(out, kind: bytes, payload: bytes) -> None:
    out.write(kind + struct.pack("<I", len(payload)) + payload)


def _chunk_problem(k: int, exc: BaseException) -> bytes:
    text = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
    # the reader numbers the chunks of what it was given (always one): name the file's
    text = text.replace("chunk number 0", f"chunk number {k}")
    if f"chunk number {k}" not in text:
        text = f"chunk number {k}: {text}"
    return text.encode("utf-8", "replace")


def serve(path: str, start: int, out) -> None:
    import evtx

    try:
        with open(path, "rb") as fh:
            header = fh.read(HEADER)
            try:
                evtx.PyEvtxParser(io.BytesIO(header), number_of_threads=1)
            except BaseException as exc:  # noqa: BLE001 - the reader's errors are RuntimeError / panics
                _frame(out, b"F", str(exc).splitlines()[0][:300].encode("utf-8", "replace") if str(exc) else b"bad file header")
                return
            k = start
            while True:
                fh.seek(HEADER + k * CHUNK)
                chunk = fh.read(CHUNK)
                if not chunk:
                    return
                _frame(out, b"S", str(k).encode())
                out.flush()
                try:
                    records = evtx.PyEvtxParser(io.BytesIO(header + chunk), number_of_threads=1).records_json()
                except BaseException as exc:  # noqa: BLE001
                    _frame(out, b"P", _chunk_problem(k, exc))
                    k += 1
                    continue
                n = 0
                while True:
                    try:
                        raw = next(records)
                    except StopIteration:
                        break
                    except BaseException as exc:  # noqa: BLE001 - one bad record: report, go on
                        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                            raise
                        _frame(out, b"P", _chunk_problem(k, exc))
                        n += 1
                    else:
                        rid = raw.get("event_record_id") or 0
                        _frame(out, b"R", struct.pack("<Q", rid & 0xFFFF_FFFF_FFFF_FFFF)
                               + str(raw.get("data") or "").encode("utf-8", "surrogatepass"))
                        n += 1
                    if n > MAX_RECORDS_PER_CHUNK:
                        _frame(out, b"P", f"chunk number {k}: more than {MAX_RECORDS_PER_CHUNK} records "
                                          f"(the reader is looping); rest of the chunk skipped".encode())
                        break
                k += 1
    except OSError as exc:
        _frame(out, b"F", f"cannot read: {exc.strerror or exc}".encode("utf-8", "replace"))
    finally:
        _frame(out, b"D", b"")
        out.flush()


def main() -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ValueError, OSError):
        pass
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        start, _, path = line.rstrip(b"\n").partition(b"\t")
        serve(bytes.fromhex(path.decode()).decode("utf-8", "surrogateescape"), int(start), out)


if __name__ == "__main__":
    main()
