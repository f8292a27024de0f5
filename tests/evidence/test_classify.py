"""Every corpus file gets its true kind.

The truth below is written from the corpus SOURCES.md files (what each file
*is*), not from the classifier's output.  Conventions decided for this
project: stack-walker / dump-tool outputs and test snapshots are DATA;
gdb output is a text CRASH_TRACE; prose (SOURCES.md, LICENSE, notes) is
DOCUMENT; a Breakpad microdump is a text CRASH_TRACE, not a minidump.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from backline.evidence import classify_file
from backline.evidence.classify import classify_head
from backline.model.core import ArtifactKind as K

# (glob relative to the corpus, kind, format or None for "any"); first match wins.
TRUTH: list[tuple[str, K, str | None]] = [
    ("*/SOURCES.md", K.DOCUMENT, None),
    ("cases/*.jsonl", K.DATA, None),
    ("cases/*.csv", K.DATA, None),
    # dumps: SOURCES.md "Minidumps" table and per-collection notes
    ("dumps/breakpad/microdump-arm64.dmp", K.CRASH_TRACE, "microdump"),   # "Android text microdump, not a minidump"
    ("dumps/*/generated/*", K.DATA, None),                                # stack-walker outputs, signatures
    ("dumps/*/*/generated/*", K.DATA, None),
    ("dumps/breakpad/*.out", K.DATA, None),                               # upstream stackwalk / minidump_dump outputs
    ("dumps/*/expected/*.snap", K.DATA, None),                            # insta snapshots
    ("dumps/breakpad/*.tsv", K.DATA, None),
    ("dumps/*.dmp", K.MINIDUMP, "minidump"),
    ("dumps/*/*.dmp", K.MINIDUMP, "minidump"),
    ("dumps/*/*/*.dmp", K.MINIDUMP, "minidump"),
    ("dumps/*/symbols/*", K.SYMBOLS, "breakpad-sym"),
    ("dumps/symbolic/cfi_only/*.sym", K.SYMBOLS, "breakpad-sym"),
    ("dumps/linux/*.c", K.SOURCE, None),
    ("dumps/linux/*.sh", K.SOURCE, None),
    ("dumps/linux/expected/*.gdb-bt.txt", K.CRASH_TRACE, "gdb"),          # gdb backtraces
    ("dumps/linux/expected/deadlock.mutex-owners.txt", K.CRASH_TRACE, "gdb"),  # a gdb session printing owners
    ("dumps/linux/expected/deadlock.py-waitgraph.txt", K.DOCUMENT, None),     # a small text report
    ("dumps/lldb/*/linux-i386.core", K.ELF_CORE, "elf32"),
    ("dumps/lldb/*/linux-x86_64.core", K.ELF_CORE, "elf64"),
    ("dumps/lldb/elf-core/linux-i386.out", K.EXECUTABLE, "elf32"),        # the executables, not cores
    ("dumps/lldb/elf-core/linux-x86_64.out", K.EXECUTABLE, "elf64"),
    ("dumps/text/gen/*.java", K.SOURCE, None),
    ("dumps/text/gen/*.cs", K.SOURCE, None),
    ("dumps/text/gen/*.py", K.SOURCE, None),
    ("dumps/text/gen/java_hs_err_*", K.HS_ERR, None),                      # incl. the .log one
    ("dumps/text/hs_err/*", K.HS_ERR, None),
    ("dumps/text/gen/java_caused_by.txt", K.CRASH_TRACE, "java"),
    ("dumps/text/gen/java_deadlock_jstack.txt", K.CRASH_TRACE, "jstack"),
    ("dumps/text/gen/py_traceback_*.txt", K.CRASH_TRACE, "python"),
    ("dumps/text/gen/py_faulthandler_hang.txt", K.CRASH_TRACE, "faulthandler"),
    ("dumps/text/gen/dotnet_mono_inner_exception.txt", K.CRASH_TRACE, "dotnet"),
    # logs
    ("logs/evtx/*.evtx", K.EVTX, "evtx"),
    ("logs/loghub-2k/*/*.log", K.TEXT_LOG, None),
    ("logs/loghub-2k/*/*.csv", K.DATA, "csv"),
    ("logs/loghub-2k/LICENSE.txt", K.DOCUMENT, None),
    # net: SOURCES.md says which pcaps are nanosecond ones
    ("net/tcpdump_tcp_handshake_nano.pcap", K.CAPTURE, "pcap-ns"),
    ("net/zeek_http_get_to_ssh_server_nsec.pcap", K.CAPTURE, "pcap-ns"),
    ("net/*.pcap", K.CAPTURE, "pcap"),
    ("net/*.pcap.gz", K.CAPTURE, "pcap"),
    ("net/*.pcapng", K.CAPTURE, "pcapng"),
    ("net/*.cap", K.CAPTURE, "netmon2"),
    ("net/*.oracle.json", K.DATA, "json"),
    ("net/*.sh", K.SOURCE, None),
]


def _truth(rel: str) -> tuple[K, str | None]:
    for pattern, kind, fmt in TRUTH:
        if fnmatch.fnmatch(rel, pattern):
            return kind, fmt
    raise AssertionError(f"no truth entry for {rel}: add one from SOURCES.md")


def _corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.is_file())


def test_every_corpus_file_has_its_true_kind(corpus: Path) -> None:
    wrong = []
    files = _corpus_files(corpus)
    assert len(files) > 300
    for p in files:
        rel = p.relative_to(corpus).as_posix()
        kind, fmt = _truth(rel)
        c = classify_file(p)
        if c.kind is not kind or (fmt is not None and c.format != fmt):
            wrong.append(f"{rel}: got {c.kind.value}/{c.format}, want {kind.value}/{fmt}")
    assert not wrong, "\n".join(wrong)


def test_counts_by_kind_cover_all_evidence_kinds(corpus: Path) -> None:
    kinds = {classify_file(p).kind for p in _corpus_files(corpus)}
    for k in (K.TEXT_LOG, K.EVTX, K.CAPTURE, K.MINIDUMP, K.ELF_CORE, K.HS_ERR, K.CRASH_TRACE,
              K.EXECUTABLE, K.SYMBOLS, K.DATA, K.DOCUMENT, K.SOURCE):
        assert k in kinds


def test_gzip_capture_reports_compression(corpus: Path) -> None:
    c = classify_file(corpus / "net/zeek_echo_connections.pcap.gz")
    assert (c.kind, c.format, c.compression) == (K.CAPTURE, "pcap", "gzip")
    assert classify_file(corpus / "net/zeek_tcp_reassembly.pcap").compression == ""


def test_malformed_minidumps_are_minidumps_with_a_problem(corpus: Path) -> None:
    for name in ("invalid-range.dmp", "invalid-record-count.dmp"):
        c = classify_file(corpus / "dumps/rust-minidump" / name)
        assert c.kind is K.MINIDUMP
        assert c.problems and "stream directory" in c.problems[0]
    for p in sorted((corpus / "dumps/breakpad").glob("*.dmp")):
        c = classify_file(p)
        if c.kind is K.MINIDUMP:
            assert c.problems == (), p.name


def test_zero_byte_files_say_so(corpus: Path) -> None:
    empties = [p for p in _corpus_files(corpus) if p.stat().st_size == 0]
    assert empties
    for p in empties:
        assert "zero-byte file" in classify_file(p).problems


def test_crlf_android_log(corpus: Path) -> None:
    c = classify_file(corpus / "logs/loghub-2k/Android/Android_2k.log")
    assert c.kind is K.TEXT_LOG
    assert dict(c.meta)["newline"] == "crlf"


@pytest.mark.parametrize("codec,bom,fmt", [("utf-16-le", b"\xff\xfe", "utf-16le"),
                                           ("utf-16-be", b"\xfe\xff", "utf-16be"),
                                           ("utf-16-le", b"", "utf-16le")])
def test_utf16_logs(corpus: Path, tmp_path: Path, codec: str, bom: bytes, fmt: str) -> None:
    text = (corpus / "logs/loghub-2k/Linux/Linux_2k.log").read_text()
    p = tmp_path / "app.txt"
    p.write_bytes(bom + text.encode(codec))
    c = classify_file(p)
    assert (c.kind, c.format, c.encoding) == (K.TEXT_LOG, fmt, fmt)


def test_latin1_log_is_text(tmp_path: Path) -> None:
    p = tmp_path / "server.log"
    p.write_bytes("2024-03-01 10:00:00 WARN caf\xe9 ferm\xe9\n".encode("latin-1") * 20)
    c = classify_file(p)
    assert c.kind is K.TEXT_LOG and c.encoding == "cp1252"


def test_content_beats_name(corpus: Path, tmp_path: Path) -> None:
    # a capture named .log, an hs_err named .txt, a log named .dmp
    cap = tmp_path / "trace.log"
    cap.write_bytes((corpus / "net/zeek_http_vlan.pcap").read_bytes())
    assert classify_file(cap).kind is K.CAPTURE
    log = tmp_path / "crash.dmp"
    log.write_bytes((corpus / "logs/loghub-2k/Hadoop/Hadoop_2k.log").read_bytes()[:5000])
    assert classify_file(log).kind is K.TEXT_LOG


def test_log_with_embedded_java_trace_stays_a_log() -> None:
    lines = []
    for i in range(30):
        lines.append(f"2024-03-01 10:00:{i:02d},123 ERROR [main] svc.Worker: failed")
        if i % 10 == 0:
            lines += ["java.io.IOException: boom", "\tat a.B.c(B.java:1)", "\tat a.B.d(B.java:2)"]
    c = classify_head("\n".join(lines).encode() + b"\n", "app.txt", 10_000)
    assert c.kind is K.TEXT_LOG


def test_binary_junk_and_unreadable(tmp_path: Path) -> None:
    junk = tmp_path / "blob"
    junk.write_bytes(bytes(range(256)) * 64)
    assert classify_file(junk).kind is K.UNKNOWN
    missing = classify_file(tmp_path / "nope")
    assert missing.kind is K.UNKNOWN and missing.problems[0].startswith("unreadable")


def test_corrupt_gzip_is_an_archive_with_a_problem(tmp_path: Path) -> None:
    p = tmp_path / "x.log.gz"
    p.write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 40)
    c = classify_file(p)
    assert c.kind is K.ARCHIVE and c.problems


def test_pe_and_truncated_headers(tmp_path: Path) -> None:
    pe = bytearray(0x200)
    pe[:2] = b"MZ"
    pe[0x3C:0x40] = (0x80).to_bytes(4, "little")
    pe[0x80:0x84] = b"PE\x00\x00"
    pe[0x80 + 24:0x80 + 26] = (0x20B).to_bytes(2, "little")
    c = classify_head(bytes(pe), "a.exe", len(pe))
    assert (c.kind, c.format) == (K.EXECUTABLE, "pe32+")
    t = classify_head(b"\xd4\xc3\xb2\xa1\x02\x00", "x.pcap", 6)
    assert t.kind is K.CAPTURE and "truncated" in t.problems[0]


def test_short_log_ending_in_a_traceback_stays_a_log() -> None:
    lines = [f"2026-11-27 10:13:{i:02d},414 INFO  [MainThread] svc - step {i}" for i in range(8)]
    lines += ["Traceback (most recent call last):", '  File "/app/x.py", line 185, in run',
              "    reserve()", '  File "/app/x.py", line 12, in reserve', "    raise KeyError(k)",
              "KeyError: 'sku'", "", "During handling of the above exception, another exception occurred:",
              "", "Traceback (most recent call last):", '  File "/app/x.py", line 190, in run',
              "    fallback()", "RuntimeError: reservation failed"]
    c = classify_head("\n".join(lines).encode() + b"\n", "orders-service.log", 2000)
    assert c.kind is K.TEXT_LOG
    # while the traceback alone is a crash trace, whatever the name
    alone = classify_head("\n".join(lines[8:]).encode() + b"\n", "orders-service.log", 2000)
    assert (alone.kind, alone.format) == (K.CRASH_TRACE, "python")
