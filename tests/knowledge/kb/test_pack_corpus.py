"""False-positive check of the starter pack over the whole corpus.

Every corpus file is analysed alone (no symbols, as a customer's bundle without them) and
the pack is matched against its findings and facts.  EXPECTED lists, per file, the entries
whose problem the file shows - taken from the corpus's SOURCES.md oracles, not from the
analyzers' output - and each must fire there; no other entry may fire on any file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backline.knowledge.kb import load_pack, match_issues
from backline.pipeline import AnalyzeOptions, analyze
from backline.testing import corpus_dir

#: Minidumps whose crash address is below 64 KiB (SOURCES.md: "crash reason @ address"), analysed without
#: symbols: a null pointer crash in a module without symbols (KB-63).
_NULL_NO_SYMBOLS = [
    "dumps/breakpad/linux_executable_heap.dmp",           # SIGSEGV @ 0x0
    "dumps/breakpad/linux_inside_module_exe_region1.dmp",  # SIGSEGV @ 0x0
    "dumps/breakpad/linux_jmp_to_0.dmp",                  # SIGSEGV @ 0x0 (call through a null pointer)
    "dumps/breakpad/linux_null_dereference.dmp",          # SIGSEGV @ 0x0
    "dumps/breakpad/linux_null_read_av.dmp",              # SIGSEGV @ 0x0
    "dumps/breakpad/linux_stack_pointer_in_module.dmp",   # SIGSEGV @ 0x0
    "dumps/breakpad/linux_stacksmash.dmp",                # SIGSEGV @ 0x0
    "dumps/breakpad/linux_write_to_under_4k.dmp",         # SIGSEGV @ 0xf93
    "dumps/breakpad/minidump2.dmp",                       # ACCESS_VIOLATION_WRITE @ 0x45
    "dumps/breakpad/null_read_av.dmp",                    # ACCESS_VIOLATION_READ @ 0x0
    "dumps/breakpad/null_write_av.dmp",                   # ACCESS_VIOLATION_WRITE @ 0x0
    "dumps/lldb/minidump/fizzbuzz_no_heap.dmp",           # ACCESS_VIOLATION_READ @ 0x0
    "dumps/lldb/elf-core/linux-i386.core",                # lldb test: SIGSEGV writing to address 0
    "dumps/lldb/elf-core/linux-x86_64.core",              # lldb test: SIGSEGV writing to address 0
    "dumps/rust-minidump/linux-mini.dmp",                 # SIGSEGV @ 0x0
    "dumps/symbolic/crash_linux.dmp",                     # SIGSEGV @ 0x0
    "dumps/symbolic/linux-mini.dmp",                      # SIGSEGV @ 0x0
    "dumps/symbolic/windows-mini.dmp",                    # ACCESS_VIOLATION_WRITE @ 0x0
]

EXPECTED: dict[str, set[str]] = {
    **{p: {"KB-63"} for p in _NULL_NO_SYMBOLS},
    "dumps/breakpad/stack_exhaustion.dmp": {"KB-62"},                 # EXCEPTION_STACK_OVERFLOW
    "dumps/breakpad/tiny-exe-fastfail.dmp": {"KB-64"},                # EXCEPTION_STACK_BUFFER_OVERRUN (fail fast)
    "dumps/text/gen/java_deadlock_jstack.txt": {"KB-65"},             # "Found one Java-level deadlock"
    "dumps/text/gen/java_hs_err_pid2267.log": {"KB-69"},              # SIGSEGV in Unsafe_PutLong
    "dumps/text/gen/java_hs_err_console.txt": {"KB-69"},              # the same crash, console copy
    "dumps/text/hs_err/krashpad_dataset5.txt": {"KB-66"},             # SIGSEGV, C frame in libc memcpy
    "dumps/text/hs_err/krashpad_dataset77.txt": {"KB-66"},            # SIGSEGV, C frame in libpthread
    "dumps/text/hs_err/krashpad_dataset41.txt": {"KB-34"},            # native OOM (mmap failed)
    "dumps/text/hs_err/krashpad_dataset72.txt": {"KB-68"},            # Internal Error in C2 CompilerThread
    "dumps/text/hs_err/krashpad_dataset17.txt": {"KB-67"},            # SIGBUS in jbyte_disjoint_arraycopy
    # system.evtx: SCM 7000/7023 (x3, x12), DCOM 10016 (x16), Disk 51 (x3), DNS-Client 1014 (x160),
    # e1iexpress 27 "link disconnected" (x142) - counted by the evtx package's own records
    "logs/evtx/system.evtx": {"KB-81", "KB-82", "KB-83", "KB-85", "KB-86"},
    "logs/loghub-2k/OpenSSH/OpenSSH_2k.log": {"KB-45"},               # hundreds of "Failed password for"
    "logs/loghub-2k/Linux/Linux_2k.log": {"KB-45"},                   # sshd "authentication failure ... rhost="
    "logs/loghub-2k/Hadoop/Hadoop_2k.log": {"KB-46"},                 # java.net.NoRouteToHostException
    "net/cs_dns_query_nonexistent.pcapng": {"KB-11"},                 # DNS NXDOMAIN
    "net/cs_stranded_branchdns.pcapng": {"KB-10", "KB-14"},           # SERVFAIL; TCP/53 SYN never answered
    "net/cs_http_espn_fail.pcapng": {"KB-14"},                        # SYNs to 203.0.113.94:80 unanswered
    "net/cs_tcp_refuseconnection.pcapng": {"KB-13"},                  # SYN answered by RST
    "net/cs_tcp_zerowindowdead.pcapng": {"KB-15"},                    # receiver stuck at zero window
    "net/zeek_tcp_reassembly.pcap": {"KB-16"},                        # 20 retransmissions in 117 packets
    "net/derived_zeek_tcp_reassembly_truncated.pcap": {"KB-16"},      # the same, cut short
    "net/msod_FASOD_ex2_smb2_domain.pcapng": {"KB-10", "KB-16"},      # SERVFAIL for fs.microsoft.com; retransmissions
    "net/zeek_tls12_handshake_failure.pcap": {"KB-2"},                # fatal alert handshake_failure
    "net/zeek_tls13draft16_ff52_unknown_ca.pcap": {"KB-3"},           # fatal alert unknown_ca
}

_SKIP_SUFFIXES = (".oracle.json", ".csv", ".md", ".sh", ".tsv", ".out", ".c", ".java", ".cs", ".py", ".sym",
                  ".snap", ".json")


def corpus_files() -> list[str]:
    root = corpus_dir()
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or rel.parts[0] == "cases" or p.name.endswith(_SKIP_SUFFIXES) or p.name == "LICENSE.txt":
            continue
        if {"expected", "generated", "symbols", "cfi_only"} & set(rel.parts):
            continue
        out.append(rel.as_posix())
    return out


_CACHE: dict[str, tuple] = {}
PACK = load_pack()


def _analysed(rel: str):
    """The findings and facts of one corpus file (analysed once per test session and worker)."""
    if rel not in _CACHE:
        res = analyze([corpus_dir() / rel], AnalyzeOptions(jobs=1, correlate=False, timeout_s=None))
        _CACHE[rel] = (res.findings, res.facts)
    return _CACHE[rel]


def test_the_expectations_name_real_files_and_entries():
    files = set(corpus_files())
    assert set(EXPECTED) <= files
    keys = {ki.key for ki in PACK}
    assert set().union(*EXPECTED.values()) <= keys
    assert len(files) >= 80


@pytest.mark.parametrize("rel", corpus_files())
def test_pack_fires_exactly_where_the_corpus_shows_the_problem(rel):
    findings, facts = _analysed(rel)
    fired = {r.issue.key for r in match_issues(PACK, findings, facts) if r.verdict == "match"}
    expected = EXPECTED.get(rel, set())
    assert not fired - expected, f"false positive on {rel}: {sorted(fired - expected)}"
    assert not expected - fired, f"{rel} shows {sorted(expected - fired)} but it did not fire"
