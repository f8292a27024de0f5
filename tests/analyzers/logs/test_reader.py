"""Reading text logs: compression, encodings, line endings, junk, long lines."""

from __future__ import annotations

import bz2
import gzip
import lzma

import pytest
import zstandard

from backline.analyzers.logs.reader import open_log, sniff_compression
from backline.errors import FormatError

TEXT = "2024-01-02 03:04:05 INFO a: one\n2024-01-02 03:04:06 WARN a: two\n"


@pytest.mark.parametrize("name,pack,expect", [
    ("a.log.gz", gzip.compress, "gzip"),
    ("a.log.bz2", bz2.compress, "bzip2"),
    ("a.log.xz", lzma.compress, "xz"),
    ("a.log.zst", lambda b: zstandard.ZstdCompressor().compress(b), "zstd"),
    ("plain.bin", lambda b: b, ""),          # compression is sniffed, not taken from the name
])
def test_compressed(tmp_path, name, pack, expect):
    p = tmp_path / name
    p.write_bytes(pack(TEXT.encode()))
    src = open_log(p)
    assert [ln.text for ln in src] == TEXT.splitlines()
    assert src.stats.compression == expect


def test_utf16_bom_and_crlf(tmp_path):
    p = tmp_path / "w.log"
    p.write_bytes("\ufeffé one\r\nü two\r\n".encode("utf-16-le"))
    src = open_log(p)
    assert [ln.text for ln in src] == ["é one", "ü two"]
    assert src.stats.encoding == "utf-16-le"


def test_latin1_fallback_per_line(tmp_path):
    p = tmp_path / "m.log"
    p.write_bytes("caf\u00e9 utf8\n".encode() + "caf\u00e9 latin\n".encode("latin-1"))
    src = open_log(p)
    assert [ln.text for ln in src] == ["café utf8", "café latin"]
    assert src.stats.decode_errors == 1
    assert any("Latin-1" in w for w in src.stats.warnings)


def test_binary_junk_skipped_and_counted(tmp_path):
    p = tmp_path / "j.log"
    p.write_bytes(b"ok 1\n" + b"\x00\x01\x02\xff\xfe" * 20 + b"\nok 2\n")
    src = open_log(p)
    assert [(ln.number, ln.text) for ln in src] == [(1, "ok 1"), (3, "ok 2")]
    assert src.stats.binary_lines == 1


def test_long_line_cut_in_bounded_memory(tmp_path):
    p = tmp_path / "long.log"
    with open(p, "wb") as fh:
        fh.write(b"first\n")
        fh.write(b"x" * 5_000_000)
        fh.write(b"\nlast\n")
    src = open_log(p, max_line=1024)
    lines = list(src)
    assert [ln.number for ln in lines] == [1, 2, 3]
    assert len(lines[1].text) == 1024 and lines[2].text == "last"
    assert src.stats.long_lines == 1


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.log"
    p.write_bytes(b"")
    src = open_log(p)
    assert list(src) == [] and src.stats.lines == 0


def test_missing_file_is_format_error(tmp_path):
    with pytest.raises(FormatError) as exc:
        open_log(tmp_path / "nope.log", display="bundle!/nope.log")
    assert "bundle!/nope.log" in str(exc.value)


def test_corrupt_gzip_is_format_error(tmp_path):
    p = tmp_path / "bad.gz"
    p.write_bytes(b"\x1f\x8b" + b"\x00" * 30)
    with pytest.raises(FormatError):
        list(open_log(p))


def test_sniff():
    assert sniff_compression(b"\x28\xb5\x2f\xfdxx") == "zstd"
    assert sniff_compression(b"hello") == ""


def test_truncated_gzip_gives_partial_result(tmp_path):
    data = gzip.compress("".join(
        f"line {i} some text to make it longer\n" for i in range(20000)).encode())
    p = tmp_path / "cut.log.gz"
    p.write_bytes(data[: len(data) // 2])
    src = open_log(p)
    lines = list(src)
    assert 0 < len(lines) < 20000
    assert src.stats.truncated and any("truncated" in w for w in src.stats.warnings)
