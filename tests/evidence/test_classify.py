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


@pytest.mark.parametrize("stamp", [
    "07 Dec 2026 14:21:43,000",      # log4j's DATE layout
    "07-Dec-2026 14:21:43.123",      # Tomcat
    "Dec 07, 2026 2:21:43 PM",       # java.util.logging's SimpleFormatter
    "2026-12-7 4:21:43",             # unpadded fields
    "1765117303123",                 # epoch milliseconds
])
def test_log_with_many_traces_stays_a_log_whatever_its_time_layout(stamp: str) -> None:
    # a service log where half the records carry a stack trace: the time stamps at the start
    # of the record lines make it a log (the log reader also reads the traces), not a trace file
    lines = []
    for i in range(30):
        lines.append(f"{stamp} ERROR [ExportService] export {i} failed: cannot open template")
        lines += ["java.io.FileNotFoundException: /t/tpl.csv (Too many open files)",
                  "\tat java.base/java.io.FileInputStream.open0(Native Method)",
                  "\tat ExportService.readTemplate(ExportService.java:31)"]
        lines.append(f"{stamp} INFO [ExportService] export {i} rendered as csv")
    c = classify_head("\n".join(lines).encode() + b"\n", "export-service.log", 10_000)
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


def test_truncated_elf_core_is_flagged(corpus: Path, tmp_path: Path) -> None:
    whole = corpus / "dumps/lldb/elf-core/linux-x86_64.core"
    assert classify_file(whole).problems == ()
    cut = tmp_path / "core"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    c = classify_file(cut)
    assert c.kind is K.ELF_CORE and c.problems and c.problems[0].startswith("truncated")
    for exe in ("linux-i386.out", "linux-x86_64.out", "linux-i386.core"):
        assert classify_file(corpus / "dumps/lldb/elf-core" / exe).problems == ()


def test_sound_corpus_files_have_no_problems(corpus: Path) -> None:
    """No false alarms: only the files SOURCES.md calls damaged (and empty ones) get problems."""
    damaged = {"dumps/rust-minidump/invalid-range.dmp", "dumps/rust-minidump/invalid-record-count.dmp"}
    noisy = []
    for p in _corpus_files(corpus):
        rel = p.relative_to(corpus).as_posix()
        if rel in damaged or p.stat().st_size == 0:
            continue
        c = classify_file(p)
        if c.problems:
            noisy.append(f"{rel}: {c.problems}")
    assert not noisy, "\n".join(noisy)


@pytest.mark.parametrize("text,kind,fmt", [
    # an hs_err fragment without the banner (e.g. the top lines were cut)
    ("#\n#  SIGSEGV (0xb) at pc=0x00007f, pid=1, tid=2\n#\n# JRE version: OpenJDK (17.0)\n"
     "# Java VM: OpenJDK 64-Bit Server VM\n# Problematic frame:\n# C  [libc.so.6+0x1]\n", K.HS_ERR, "hs_err"),
    ("---------------  S U M M A R Y ------------\n\nCommand Line: -Xmx1g Main\n", K.HS_ERR, "hs_err"),
    ("thread 'main' panicked at src/main.rs:4:5:\nindex out of bounds\nnote: run with `RUST_BACKTRACE=1`\n",
     K.CRASH_TRACE, "rust"),
    ("TypeError: Cannot read properties of undefined (reading 'x')\n    at Object.<anonymous> (/app/a.js:3:9)\n"
     "    at Module._compile (node:internal/modules/cjs/loader:1256:14)\n    at run (/app/b.js:1:1)\n",
     K.CRASH_TRACE, "node"),
    ("Unhandled exception. System.InvalidOperationException: boom\n   at Svc.Start() in /src/Svc.cs:line 14\n"
     "   at Program.Main() in /src/Program.cs:line 5\n", K.CRASH_TRACE, "dotnet"),
    ("panic: runtime error: invalid memory address or nil pointer dereference\n"
     "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4553b2]\n\ngoroutine 1 [running]:\n"
     "main.main()\n\t/app/main.go:9 +0x12\n", K.CRASH_TRACE, "go"),
])
def test_more_crash_dialects(text: str, kind: K, fmt: str) -> None:
    c = classify_head(text.encode(), "crash.txt", len(text))
    assert (c.kind, c.format) == (kind, fmt)


@pytest.mark.parametrize("line", [
    "20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579",                         # HealthApp
    "[10.30 16:49:06] chrome.exe - proxy.cse.cuhk.edu.hk:5070 open through proxy proxy:5070 HTTPS",  # Proxifier
    "2016-09-28 04:30:30, Info                  CBS    Loaded Servicing Stack v6.1.7601.23505",     # Windows CBS
    "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - x",
    "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: session closed",
    "Jul  1 09:00:55 calvisitor-10-105-160-95 kernel[0]: IOThunderboltSwitch<0>(0x0)::listenerCallback",
    "nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server",
    "134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State Change: Component",  # HPC
])
def test_other_loghub_dialects_are_logs_whatever_the_name(line: str) -> None:
    data = ("\n".join([line] * 30) + "\n").encode()
    for name in ("x.log", "x.txt", "x"):
        assert classify_head(data, name, len(data)).kind is K.TEXT_LOG, name


def test_large_json_cut_by_the_head_is_still_json(tmp_path: Path) -> None:
    import json

    doc = {"threads": [{"frames": [{"module": f"m{i}", "offset": i, "function": "f" * 20} for i in range(40)]}
                       for _ in range(60)]}
    p = tmp_path / "walk.json"
    p.write_text(json.dumps(doc, indent=2))
    assert p.stat().st_size > 128 * 1024
    c = classify_file(p)
    assert (c.kind, c.format) == (K.DATA, "json")
    q = tmp_path / "walk.txt"                      # content decides, not the name
    q.write_text(json.dumps(doc, indent=2))
    assert classify_file(q).kind is K.DATA


def test_json_lines_logs_vs_records(tmp_path: Path) -> None:
    import json

    log = "\n".join(json.dumps({"ts": f"2024-05-01T10:00:{i:02d}Z", "level": "info", "msg": "ok"})
                    for i in range(20)) + "\n"
    assert classify_head(log.encode(), "app.json", len(log)).kind is K.TEXT_LOG
    rec = "\n".join(json.dumps({"id": i, "title": "bug", "status": "open"}) for i in range(20)) + "\n"
    c = classify_head(rec.encode(), "cases.jsonl", len(rec))
    assert (c.kind, c.format) == (K.DATA, "jsonl")


def test_stack_walker_output_names_win_over_weak_content() -> None:
    # a walker that failed may leave a one-line error in its output file
    err = b"ERROR 2024-01-01 minidump could not be read: header is invalid\n"
    for name in ("x.breakpad.txt", "x.rust.txt", "x.breakpad.mr.txt", "x.stackwalk.out"):
        assert classify_head(err, f"dumps/generated/{name}", len(err)).kind is K.DATA, name
    assert classify_head(err, "notes.txt", len(err)).kind is K.TEXT_LOG


def test_json_nested_deeper_than_the_parser_can_read_is_classified_not_a_crash():
    """Found by benchmarks/fuzz.py (archive): ``json.loads`` raises RecursionError (not a
    ValueError) on deeply nested arrays, which escaped the text-kind sniffer and made intake
    give up on the whole input."""
    from backline.evidence import classify_head

    for head in (b"[" * 100_000, b"[" * 100_000 + b"]" * 100_000, (b"[" * 50_000 + b"\n") * 3):
        cls = classify_head(head, "deep.json", len(head))
        assert cls.kind is not None


def test_a_log_line_of_deeply_nested_json_is_read_as_text(tmp_path):
    from backline.analyzers.logs.formats import _json_header

    assert _json_header("[" * 100_000) is None
    assert _json_header('{"time": "2024-05-01T10:00:00Z", "msg": "up"}').message == "up"


def test_lines_of_blanks_do_not_stall_the_configuration_check() -> None:
    # the fuzzer's input: a few lines of thousands of spaces reached the configuration-file patterns,
    # whose blanks around a run of blanks backtracked for over a minute
    import time

    text = "\n".join([" " * 9186, " " * 5805, " " * 24648, "x" * 12, " " * 5769]) + "\n"
    t0 = time.perf_counter()
    classify_head(text.encode(), "evidence", len(text))
    assert time.perf_counter() - t0 < 2.0
    ini = "[server]\nport = 8080\nmy key = some value\n; a comment\n"
    assert classify_head(ini.encode(), "settings", len(ini)).format == "ini"
