"""The matcher engine: each matcher kind, gates, versions, rules, and the KB findings."""

from __future__ import annotations

from backline.knowledge.kb.engine import MATCH, NOT_AFFECTED, kb_findings, match_issues
from backline.knowledge.kb.loader import parse_entry
from backline.knowledge.kb.model import Status
from backline.model import Fact, Severity

from .helpers import crash, event_index, evtx, exc, log, net, template_index, tls


def entry(*matchers, **kw):
    return parse_entry({"key": kw.pop("key", "KB-1001"), "title": kw.pop("title", "t"),
                        "workaround": "do the thing", "matchers": list(matchers), **kw})


def keys(results):
    return [(r.issue.key, r.verdict) for r in results]


def test_finding_conditions_and_operators():
    f = net("NET.TCP.RETRANS_RATE", count=17, rate=0.1, server="10.0.0.2:445", client="10.0.0.9:5000")
    assert keys(match_issues([entry({"finding": "NET.TCP.RETRANS_RATE", "where": {"rate": {"gte": 0.05}}})], [f], []))
    assert not match_issues([entry({"finding": "NET.TCP.RETRANS_RATE", "where": {"rate": {"gte": 0.2}}})], [f], [])
    assert match_issues([entry({"finding": "NET.TCP.*", "where": {"server": {"regex": ":445$"}}})], [f], [])
    assert not match_issues([entry({"finding": "NET.TCP.RETRANS_RATE", "min_count": 18})], [f], [])
    assert match_issues([entry({"finding": "NET.TCP.RETRANS_RATE", "min_count": 17})], [f], [])
    assert not match_issues([entry({"finding": "NET.TCP.RETRANS_RATE", "where": {"missing": {"exists": True}}})],
                            [f], [])
    assert match_issues([entry({"finding": "NET.TCP.RETRANS_RATE", "where": {"missing": {"exists": False}}})],
                        [f], [])


def test_string_values_compare_case_insensitively_and_numbers_across_types():
    assert match_issues([entry({"finding": "NET.SMB2.ERROR", "where": {"status": "0xC0000022"}})],
                        [net("NET.SMB2.ERROR", status="0xc0000022")], [])
    assert match_issues([entry({"finding": "NET.HTTP.5XX", "where": {"status": "502"}})],
                        [net("NET.HTTP.5XX", status=502)], [])


def test_signature_and_bucket_exact_or_prefix_from_findings_and_facts():
    fs = crash("NULL_POINTER_READ", "SIGSEGV", "NULL_POINTER_READ_SIGSEGV_app!copy", "copy | main", "app!copy")
    assert match_issues([entry({"signature": "copy | main"})], fs, [])
    assert not match_issues([entry({"signature": "copy"})], fs, [])
    assert match_issues([entry({"signature": "copy", "prefix": True})], fs, [])
    assert match_issues([entry({"bucket": "NULL_POINTER_READ_SIGSEGV_app!copy"})], fs, [])
    fact = Fact("dump.signature", "OrderService::reserve | main", "core.1", "dumps.elfcore")
    got = match_issues([entry({"signature": "OrderService::reserve", "prefix": True})], [], [fact])
    assert got and got[0].hits[0].evidence[0].locator == "fact:dump.signature"


def test_exception_type_causes_message_and_frame():
    f = exc("java.io.UncheckedIOException", "failed", causes=["java.lang.OutOfMemoryError"],
            signature="java.io.UncheckedIOException | Cache.put | Main.main")
    assert match_issues([entry({"exception": "OutOfMemoryError"})], [f], [])        # a cause, simple name
    assert match_issues([entry({"exception": "java.lang.OutOfMemoryError", "frame": r"Cache\.put"})], [f], [])
    assert not match_issues([entry({"exception": "java.lang.OutOfMemoryError", "frame": r"Store\.get"})], [f], [])
    assert not match_issues([entry({"exception": "lang.OutOfMemoryError"})], [f], [])   # dotted: full name only
    assert match_issues([entry({"exception": "UncheckedIOException", "message": "^java.io.Unchecked.*failed$"})],
                        [f], [])


def test_log_regex_template_and_counts_across_findings_and_the_index():
    a = log("accept failed: Too many open files", count=3)
    burst = log("accept failed: Too many open files", count=3, code="LOG.BURST")   # same template: not twice
    idx = template_index(("Out of memory: Killed process <*> (<*>)", 2), ("heartbeat <*>", 900))
    m = {"log": {"regex": "Too many open files", "min_count": 3}}
    r = match_issues([entry(m)], [a, burst], [])
    assert r and r[0].hits[0].count == 3
    assert not match_issues([entry({"log": {"regex": "Too many open files", "min_count": 4}})], [a, burst], [])
    r = match_issues([entry({"log": {"template": "Out of memory: Killed process <*> (<*>)"}})], [], [idx])
    assert r and r[0].hits[0].evidence[0].locator == "line:1"
    assert not match_issues([entry({"log": {"template": "Out of memory: Killed process"}})], [], [idx])


def test_windows_events_from_the_index_with_field_values():
    idx = event_index({"provider": "Microsoft-Windows-Security-Auditing", "event_id": 4771, "count": 9,
                       "fields": {"Status": {"0x18": 6, "0x25": 3}}},
                      {"provider": "LsaSrv", "event_id": 40960, "count": 2,
                       "fields": {"1": {"cifs/fs1": 2}, "3": {"time difference (0xc0000133)": 2}}},
                      art="Security.evtx")
    skew = {"event": {"provider": "Security-Auditing", "id": 4771, "fields": {"Status": "0x25"}}}
    r = match_issues([entry(skew)], [], [idx])
    assert r and r[0].hits[0].count == 3 and r[0].hits[0].evidence[0].locator == "record:100"
    assert not match_issues([entry({"event": {"provider": "Security-Auditing", "id": 4771,
                                              "fields": {"Status": "0x25"}, "min_count": 4}})], [], [idx])
    assert match_issues([entry({"event": {"provider": "lsasrv", "id": 40960,
                                          "fields": {"*": {"regex": "0xc0000133"}}}})], [], [idx])


def test_windows_events_from_findings_when_there_is_no_index():
    f = evtx("EVTX.SERVICE_CRASH", count=4, service="Spooler", event_id=7031)
    assert match_issues([entry({"event": {"provider": "Service Control Manager", "id": 7031,
                                          "fields": {"service": "spooler"}}})], [f], [])
    t = evtx("EVTX.TOP_ERRORS", count=16, provider="Microsoft-Windows-DistributedCOM", event_id=10016, rank=1)
    assert match_issues([entry({"event": {"provider": "DistributedCOM", "id": 10016}})], [t], [])


def test_fact_matchers_and_when_gates():
    facts = [Fact("dump.os", "Linux", "core", "dumps.elfcore"), Fact("jvm.version", "11.0.8+10", "hs", "dumps.text")]
    f = net("NET.DNS.SERVFAIL", name="x", rcode="ServFail", servers=["10.0.0.1"])
    gated = entry({"finding": "NET.DNS.SERVFAIL"}, when=[{"fact": "dump.os", "eq": "linux"}])
    assert match_issues([gated], [f], facts)
    assert not match_issues([gated], [f], facts[1:])                       # the gate's fact is absent
    assert match_issues([entry({"fact": "jvm.version", "version": ">=11, <11.0.9"})], [], facts)
    assert not match_issues([entry({"fact": "jvm.version", "version": ">=17"})], [], facts)


def test_any_and_all():
    a, b = {"finding": "NET.DNS.SERVFAIL"}, {"finding": "NET.TCP.SYN_UNANSWERED"}
    only_a = [net("NET.DNS.SERVFAIL")]
    assert match_issues([entry(a, b)], only_a, [])
    assert not match_issues([entry(a, b, match="all")], only_a, [])
    assert match_issues([entry(a, b, match="all")], only_a + [net("NET.TCP.SYN_UNANSWERED")], [])


def test_a_rule_without_its_input_is_skipped_not_failed():
    ki = entry({"rule": "crash_loop", "params": {"min_dumps": 2}})
    r = match_issues([ki], [net("NET.DNS.SERVFAIL")], [])
    assert keys(r) == [("KB-1001", "skipped")] and "DUMP.CRASH missing" in r[0].reason
    assert kb_findings(r) == []
    one = crash("ABORT", "SIGABRT", "ABORT_SIGABRT_app!boom", "boom", "app!boom", art="1.dmp")
    two = crash("ABORT", "SIGABRT", "ABORT_SIGABRT_app!boom", "boom", "app!boom", art="2.dmp")
    assert not match_issues([ki], one, [])
    assert keys(match_issues([ki], one + two, [])) == [("KB-1001", "match")]


def test_fixed_in_stops_the_match_and_says_so():
    ki = entry({"finding": "NET.TLS.ALERT"}, fix={"fixed_in": "4.2.3", "hotfix": "HF-7", "bug": "ORD-12"},
               affects=[{"product": "orders", "versions": ">=4.0"}])
    alert = [tls("protocol_version")]
    fixed = match_issues([ki], alert, [], product="orders", version="4.2.5")
    assert keys(fixed) == [("KB-1001", "not_affected")]
    (f,) = kb_findings(fixed)
    assert f.code == NOT_AFFECTED and f.severity is Severity.INFO
    assert "fixed in 4.2.3, customer runs 4.2.5" in f.title
    hit = match_issues([ki], alert, [], product="orders", version="4.2.1")
    assert keys(hit) == [("KB-1001", "match")]
    assert "hotfix HF-7" in hit[0].reason
    older = match_issues([ki], alert, [], product="orders", version="3.9")
    assert older[0].verdict == "not_affected" and "affects >=4.0" in older[0].reason
    assert match_issues([ki], alert, [], product="billing", version="4.2.1") == []   # another product's issue
    unknown = match_issues([ki], alert, [])
    assert unknown[0].verdict == "match" and "version is unknown" in unknown[0].reason


def test_the_version_can_come_from_a_fact():
    ki = entry({"finding": "DUMP.JVM_FATAL"}, fix={"fixed_in": "8.0_292"},
               affects=[{"product": "", "fact": "jvm.version"}])
    f = exc("SIGSEGV", "x", code="DUMP.JVM_FATAL")
    old = [Fact("jvm.version", "8.0_191-b12", "hs_err", "dumps.text")]
    new = [Fact("jvm.version", "8.0_322-b06", "hs_err", "dumps.text")]
    assert match_issues([ki], [f], old)[0].verdict == "match"
    assert match_issues([ki], [f], new)[0].reason == "fixed in 8.0_292, customer runs 8.0_322-b06"


def test_only_published_entries_match_unless_asked():
    draft = entry({"finding": "NET.DNS.SERVFAIL"}, status="draft")
    f = [net("NET.DNS.SERVFAIL")]
    assert match_issues([draft], f, []) == []
    assert match_issues([draft], f, [], statuses=None)
    assert match_issues([draft], f, [], statuses=(Status.DRAFT,))


def test_kb_match_finding_names_the_issue_evidence_and_workaround():
    ki = entry({"finding": "NET.TLS.ALERT", "where": {"description": "unknown_ca"}},
               key="KB-1003", title="Private CA not trusted", severity="high")
    (f,) = kb_findings(match_issues([ki], [tls("unknown_ca"), net("NET.DNS.SERVFAIL")], []))
    assert f.code == MATCH and f.title == "KB-1003 Private CA not trusted" and f.severity is Severity.HIGH
    assert f.artifact == "c.pcapng" and f.evidence[0].locator == "packet:7"
    assert "Workaround: do the thing" in f.detail and "c.pcapng packet:7" in f.detail
    d = f.data
    assert d["key"] == "KB-1003" and d["workaround"] == "do the thing"
    assert d["matched"][0]["matcher"] == "finding NET.TLS.ALERT where description = unknown_ca"
    assert d["matched"][0]["evidence"][0] == {"artifact": "c.pcapng", "locator": "packet:7", "excerpt": "pkt"}


def test_kb_findings_of_earlier_matches_are_never_matched_again():
    ki = entry({"finding": "KB.*"})
    (f,) = kb_findings(match_issues([entry({"finding": "NET.DNS.SERVFAIL"})], [net("NET.DNS.SERVFAIL")], []))
    assert match_issues([ki], [f], []) == []


def test_pack_disk_full_knows_sqlite_wording():
    from backline.knowledge.kb import load_pack

    (ki,) = [k for k in load_pack() if k.key == "KB-39"]
    f = log("insert into samples failed: database or disk is full")
    assert match_issues([ki], [f], [])


def test_a_regex_that_backtracks_without_end_skips_its_entry_not_the_analysis():
    import time

    slow = "a" * 40 + "!"                                   # (a|aa)+$ tries every split of the a's
    bad = entry({"log": {"regex": r"(a|aa)+$"}})
    good = entry({"log": {"regex": r"a!$"}}, key="KB-1002")
    gated = entry({"finding": "LOG.ERROR_TEMPLATE"}, key="KB-1003",
                  when=[{"fact": "app.build", "regex": r"(a|aa)+$"}])
    t0 = time.perf_counter()
    r = match_issues([bad, good, gated], [log(slow)], [Fact("app.build", slow, "app.log", "logs.text")])
    assert time.perf_counter() - t0 < 5                      # bounded: about 0.25 s per pattern
    assert keys(r) == [("KB-1001", "skipped"), ("KB-1002", "match"), ("KB-1003", "skipped")]
    assert "ran longer than" in r[0].reason and "(a|aa)+$" in r[0].reason and r[2].reason.startswith("when:")
