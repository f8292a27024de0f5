"""Uploads written once: a multipart request body streamed straight into the blob store.

Starlette's ``request.form()`` first spools every file part into a temporary file (memory,
then disk), which the upload then copied into the store: every byte written twice.  Here the
body is parsed as it arrives (``python-multipart``'s push parser) and the bytes of each file
part go straight into a :class:`~backline.storage.blobs.BlobWriter` (a locked temporary file
in the store's own folder, renamed to its digest when the part ends).  The size limit is
enforced as the bytes come (``BodyLimit`` on the whole body, the writer on each file); past it,
or when the client goes away, the writer is aborted and nothing is left behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from backline.errors import CaseError
from backline.storage.blobs import BlobStore, BlobWriter, StoredBlob

MAX_FIELD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class StreamedFile:
    field: str
    filename: str
    blob: StoredBlob


class _Events:
    """python-multipart's callbacks, collected as (kind, value) events for the async loop."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[bytes, bytes] = {}

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": lambda: self.events.append(("part", dict(self._headers))),
            "on_part_data": lambda d, s, e: self.events.append(("data", bytes(d[s:e]))),
            "on_part_end": lambda: self.events.append(("end", None)),
        }

    def _begin(self) -> None:
        self._headers = {}

    def _header_end(self) -> None:
        self._headers[bytes(self._field).lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()


async def stream_multipart(request: Request, store: BlobStore, *, max_bytes: int, file_field: str = "file",
                           max_files: int = 1, max_fields: int = 10,
                           before_file: Callable[[Mapping[str, str]], None] | None = None,
                           ) -> tuple[dict[str, str], list[StreamedFile]]:
    """Parse the multipart body of ``request``: form fields (small, in memory) and the parts of
    ``file_field`` with a file name, each streamed into ``store`` (at most ``max_bytes`` each).
    ``before_file(fields)`` runs when the first file part starts (a CSRF check on the fields sent
    before it); whatever it raises stops the upload before a byte is stored."""
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise CaseError("multipart body without a boundary")
    events = _Events()
    parser = MultipartParser(boundary, events.callbacks())
    fields: dict[str, str] = {}
    files: list[StreamedFile] = []
    writer: BlobWriter | None = None
    state = {"kind": None, "name": "", "filename": "", "buf": bytearray(), "checked": False}

    async def handle() -> None:
        nonlocal writer
        pending: list[bytes] = []
        for kind, value in events.events:
            if kind == "part":
                _, opts = parse_options_header(value.get(b"content-disposition", b""))
                name = opts.get(b"name", b"").decode("utf-8", "replace")
                filename = opts.get(b"filename")
                if filename is None:
                    if len(fields) >= max_fields:
                        raise CaseError(f"too many form fields (at most {max_fields})")
                    state.update(kind="field", name=name, buf=bytearray())
                elif name != file_field or not filename:
                    state.update(kind="skip")               # an empty file input, or another file field
                else:
                    if len(files) >= max_files:
                        raise CaseError(f"too many files in one upload (at most {max_files})")
                    if not state["checked"]:
                        state["checked"] = True
                        if before_file is not None:
                            before_file(fields)
                    state.update(kind="file", name=name, filename=filename.decode("utf-8", "replace"))
                    writer = await run_in_threadpool(store.writer, max_bytes=max_bytes)
            elif kind == "data":
                if state["kind"] == "file":
                    pending.append(value)
                elif state["kind"] == "field":
                    state["buf"] += value
                    if len(state["buf"]) > MAX_FIELD_BYTES:
                        raise CaseError(f"form field {state['name']!r} is longer than {MAX_FIELD_BYTES} bytes")
            elif kind == "end":
                if state["kind"] == "file" and writer is not None:
                    if pending:
                        await run_in_threadpool(writer.write, b"".join(pending))
                        pending = []
                    w, writer = writer, None
                    blob = await run_in_threadpool(w.commit)
                    files.append(StreamedFile(state["name"], state["filename"], blob))
                elif state["kind"] == "field":
                    fields[state["name"]] = bytes(state["buf"]).decode("utf-8", "replace")
                state.update(kind=None)
        events.events.clear()
        if pending and writer is not None:
            await run_in_threadpool(writer.write, b"".join(pending))

    try:
        async for chunk in request.stream():
            if chunk:
                try:
                    parser.write(chunk)
                except MultipartParseError as exc:
                    raise CaseError(f"malformed multipart body: {exc}") from None
                await handle()
        parser.finalize()
        await handle()
        if writer is not None:
            raise CaseError("multipart body ended in the middle of a file")
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return fields, files


__all__ = ["StreamedFile", "stream_multipart"]
