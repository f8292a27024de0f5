"""The diagnosis reasons over small synthetic findings and events built here (no files)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from backline.errors import FormatError
from backline.knowledge.diagnosis import DiagnosisSettings, diagnose, load_library, parse_library
from backline.knowledge.diagnosis.entities import Entity, Vocabulary, extract, from_data
from backline.knowledge.diagnosis.timing import estimate_skews, incident_window
from backline.model import Artifact, ArtifactKind, Event, EvidenceRef, Fact, Finding, Severity

T0 = datetime(2024, 5, 1, 14, 2, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def log(title, line, excerpt, t, artifact="app.log", code="LOG.ERROR_TEMPLATE", count=1, last=None,
        severity=Severity.HIGH, data=None):
    return Finding(code, title, severity, artifact, (EvidenceRef.line(artifact, line, excerpt),),
                   count=count, first_seen=t, last_seen=last or t, analyzer="logs.text", data=data or {})


def net(code, title, packet, t, data, artifact="net.pcap", severity=Severity.HIGH, excerpt=""):
    return Finding(code, title, severity, artifact, (EvidenceRef.packet(artifact, packet, excerpt or title),),
                   first_seen=t, last_seen=t, analyzer="net.capture", data=data)


def codes(d):
    return [c.code for c in d.causes]


# --- the classes of incident the library knows ----------------------------------------------

def test_refused_connection_explains_the_client_errors_naming_the_endpoint():
    findings = [
        log("3x connect to <*> failed: [Errno 111] Connection refused", 8,
            "ERROR connect to 10.1.2.3:6432 failed: [Errno 111] Connection refused", at(1)),
        net("NET.TCP.RST_TO_SYN", "Connection refused by 10.1.2.3:6432 (3 attempt(s))", 40, at(1.0005),
            {"server": "10.1.2.3:6432", "connections": 3}),
        log("1x worker shutting down after unhandled error", 12, "ERROR worker shutting down", at(2)),
    ]
    d = diagnose(findings)
    top = d.top
    assert top.code == "NET.TCP.RST_TO_SYN" and top.finding == 1
    assert "10.1.2.3:6432" in top.title
    assert top.confidence > 0.5
    first = top.chain[0]
    assert (first.cause, first.effect) == (1, 0)
    assert ("endpoint", "10.1.2.3:6432") in first.joined_on
    assert first.evidence[0].locator == "line:8"
    assert 2 in top.explained                     # the shutdown follows, in the same program
    assert {s.kind for s in top.next_steps} == {"confirm", "refute", "ask"}


def test_a_different_endpoint_is_not_explained():
    findings = [
        log("connect to <*> failed: Connection refused", 8,
            "ERROR connect to 10.9.9.9:7000 failed: Connection refused", at(1)),
        net("NET.TCP.RST_TO_SYN", "Connection refused by 10.1.2.3:6432 (1 attempt(s))", 40, at(1),
            {"server": "10.1.2.3:6432"}),
    ]
    top = diagnose(findings).top
    assert all(link.effect != 0 or link.joined_on[0][0] == "time" for link in top.chain)
    assert not any(link.joined_on and link.joined_on[0][0] == "endpoint" for link in top.chain)


def test_dns_failure_explains_errors_naming_the_host():
    findings = [
        log("2x could not reach <*>: [Errno -2] Name or service not known", 5,
            "ERROR could not reach ledger.internal.example: [Errno -2] Name or service not known", at(3)),
        net("NET.DNS.NXDOMAIN", "DNS NXDomain for ledger.internal.example (2 response(s))", 9, at(2.9),
            {"name": "ledger.internal.example", "rcode": "NXDomain", "servers": ["10.0.0.53"]},
            severity=Severity.MEDIUM),
        log("1x disk usage 71%", 2, "WARNING disk usage 71%", at(-3600), severity=Severity.MEDIUM),
    ]
    top = diagnose(findings).top
    assert top.code == "NET.DNS.NXDOMAIN"
    assert "ledger.internal.example" in top.title
    assert top.chain and top.chain[0].joined_on[0] == ("host", "ledger.internal.example")


def test_deadlock_in_a_core_explains_the_health_check_timeouts_of_that_process():
    core = "dumps/core.billingd"
    findings = [
        log("5x health check of billingd timed out after <*> s", 30,
            "WARN health check of billingd timed out after 5 s", at(10), artifact="monitor.log", count=5,
            last=at(50)),
        Finding("DUMP.DEADLOCK", "deadlock: threads 4121, 4122 wait for each other (mutex 0x55d0, mutex 0x55e0)",
                Severity.CRITICAL, core, (EvidenceRef.frame(core, 0, 1, "pthread_mutex_lock"),),
                data={"threads": [4121, 4122], "resources": ["mutex 0x55d0", "mutex 0x55e0"]}),
        Finding("DUMP.CRASH", "oldtool crashed: SIGSEGV at 0x0 in oldtool!main", Severity.CRITICAL,
                "dumps/core.oldtool", (EvidenceRef.frame("dumps/core.oldtool", 0, 0, "oldtool!main"),),
                data={"signal": "SIGSEGV", "problem_class": "NULL_POINTER_READ"}),
    ]
    facts = [Fact("dump.process", "billingd", core), Fact("dump.pid", 4120, core),
             Fact("dump.process", "oldtool", "dumps/core.oldtool")]
    d = diagnose(findings, facts=facts)
    assert codes(d)[0] == "DUMP.DEADLOCK"
    top = d.top
    assert top.chain[0].effect == 0 and ("process", "billingd") in top.chain[0].joined_on
    assert top.confidence > 0.5
    crash = next(c for c in d.causes if c.code == "DUMP.CRASH")
    assert crash.confidence <= 0.5 and not crash.chain          # alone, it explains nothing


def test_a_crash_explains_the_worker_exit_lines_naming_its_pid():
    core = "core.renderd.7781"
    findings = [
        log("1x worker (pid:7781) was sent SIGSEGV!", 44, "[ERROR] Worker (pid:7781) was sent SIGSEGV!",
            at(5), artifact="frontend.log"),
        net("NET.TCP.RST_MIDSTREAM", "2 connection(s) to 10.0.0.7:8000 reset by the server (10.0.0.7)", 77,
            at(5), {"server": "10.0.0.7:8000", "sender": "10.0.0.7", "sender_role": "server"},
            severity=Severity.MEDIUM),
        Finding("DUMP.CRASH", "renderd crashed: SIGSEGV / SEGV_MAPERR at 0x8 in libfilters.so!apply",
                Severity.CRITICAL, core, (EvidenceRef.frame(core, 0, 0, "libfilters.so!apply"),),
                data={"signal": "SIGSEGV", "problem_class": "NULL_POINTER_READ"}),
    ]
    facts = [Fact("dump.process", "renderd", core), Fact("dump.pid", 7781, core)]
    top = diagnose(findings, facts=facts).top
    assert top.code == "DUMP.CRASH" and top.finding == 2
    link = next(link for link in top.chain if link.effect == 0)
    assert ("pid", "7781") in link.joined_on


def test_disk_full_explains_the_errors_after_it_not_before():
    findings = [
        log("1x could not write segment: [Errno 28] No space left on device", 20,
            "ERROR could not write segment /var/lib/q/seg.7: [Errno 28] No space left on device", at(10)),
        log("4x request failed: storage error", 25, "ERROR request failed: storage error", at(11), count=4,
            last=at(30)),
        log("1x cache warm-up failed", 3, "ERROR cache warm-up failed", at(-50)),
    ]
    top = diagnose(findings).top
    assert top.code == "LOG.ERROR_TEMPLATE" and top.finding == 0
    assert top.title.startswith("Disk full")
    assert 1 in top.explained
    assert 2 not in top.explained                 # it came before the disk filled


def test_slow_backend_explains_the_upstream_timeouts():
    findings = [
        log("6x upstream timed out (110: Connection timed out) while reading response from <*>", 50,
            "upstream timed out (110: Connection timed out) while reading response from 10.0.0.8:9000",
            at(12), artifact="proxy.log", count=6, last=at(40)),
        net("NET.HTTP.SLOW", "Slow HTTP responses from 10.0.0.8:9000: p95 31.000 s", 300, at(2),
            {"server": "10.0.0.8:9000", "p95_s": 31.0}, severity=Severity.MEDIUM),
    ]
    top = diagnose(findings).top
    assert top.code == "NET.HTTP.SLOW"
    assert top.chain[0].joined_on[0] == ("endpoint", "10.0.0.8:9000")


def test_a_zero_window_stall_explains_the_sender_timeouts():
    findings = [
        net("NET.TCP.ZERO_WINDOW_STALL",
            "10.0.0.9:5672 advertised a zero window for 25.000 s (receiver not reading)", 120, at(1),
            {"stream": 3, "receiver": "10.0.0.9:5672", "duration_s": 25.0, "reopened": False}),
        log("3x publish to <*> timed out", 70, "ERROR publish to 10.0.0.9:5672 timed out after 10 s", at(11),
            artifact="producer.log", count=3, last=at(25)),
    ]
    top = diagnose(findings).top
    assert top.code == "NET.TCP.ZERO_WINDOW_STALL"
    assert top.chain[0].effect == 1


# --- time: order, chronic noise, skew -------------------------------------------------------

def test_chronic_warnings_are_not_the_cause_of_a_new_outage():
    events = [Event(at(-6 * 3600 + 60 * m), "app.log", "log.error", "retrying connection to cache", Severity.HIGH,
                    EvidenceRef.line("app.log", 10 + m)) for m in range(0, 360, 2)]
    events += [Event(at(s), "app.log", "log.error", "out of memory", Severity.HIGH, EvidenceRef.line("app.log", 900 + s))
               for s in range(5)]
    findings = [
        log("180x retrying connection to cache: timed out", 10, "ERROR retrying connection to cache: timed out",
            at(-6 * 3600), count=180, last=at(-60)),
        log("5x java.lang.OutOfMemoryError: Java heap space", 900, "ERROR java.lang.OutOfMemoryError: Java heap space",
            at(0), count=5, last=at(4)),
    ]
    d = diagnose(findings, events)
    assert d.incident_start is not None and d.incident_start <= at(0) <= d.incident_end
    assert codes(d)[0] == "LOG.ERROR_TEMPLATE" and d.top.finding == 1
    chronic = next(c for c in d.causes if c.finding == 0)
    assert any("chronic" in r for r in chronic.reasons)


def test_a_cause_that_starts_after_its_effect_is_not_linked():
    findings = [
        net("NET.TCP.RST_TO_SYN", "Connection refused by 10.1.2.3:6432 (1 attempt(s))", 40, at(30),
            {"server": "10.1.2.3:6432"}),
        log("connect to <*> failed: Connection refused", 8,
            "ERROR connect to 10.1.2.3:6432 failed: Connection refused", at(1)),
    ]
    rst = next(c for c in diagnose(findings).causes if c.code == "NET.TCP.RST_TO_SYN")
    assert 1 not in rst.explained


def test_clock_skew_is_estimated_from_shared_events_and_tolerated():
    skew = 40.0                                   # the application host's clock is 40 s ahead
    events, findings = [], []
    for k in range(3):
        t = at(10 * k)
        events.append(Event(t, "net.pcap", "net.tcp.rst_to_syn", "Connection refused by 10.1.2.3:6432",
                            Severity.HIGH, EvidenceRef.packet("net.pcap", 10 + k)))
        events.append(Event(t + timedelta(seconds=skew + 0.01), "app.log", "log.error",
                            "connect to 10.1.2.3:6432 failed: Connection refused", Severity.HIGH,
                            EvidenceRef.line("app.log", 5 + k)))
    skews = estimate_skews(events)
    assert [(s.artifact, s.reference, round(s.offset_s)) for s in skews] == [("app.log", "net.pcap", 40)]
    # the log's errors appear 40 s "after" the refusals; with the skew removed they coincide, and a
    # refusal the capture saw 20 s after the log's first error on the log's clock still explains it
    findings = [
        net("NET.TCP.RST_TO_SYN", "Connection refused by 10.1.2.3:6432 (3 attempt(s))", 10, at(0),
            {"server": "10.1.2.3:6432"}),
        log("3x connect to <*> failed: Connection refused", 5,
            "ERROR connect to 10.1.2.3:6432 failed: Connection refused", at(skew + 0.01), last=at(skew + 20)),
    ]
    d = diagnose(findings, events, artifacts=[Artifact("net.pcap", ArtifactKind.CAPTURE, 1, "0")])
    assert d.skews and d.skews[0].artifact == "app.log"
    assert d.top.code == "NET.TCP.RST_TO_SYN" and 1 in d.top.explained


def test_incident_window_discounts_a_warning_that_repeats_all_day():
    events = [Event(at(-8 * 3600 + 30 * k), "a.log", "log.warning", "gc pause", Severity.MEDIUM) for k in range(900)]
    events += [Event(at(k), "b.log", "log.error", "refused", Severity.HIGH) for k in range(4)]
    start, end = incident_window(events)
    assert start <= at(0) and end >= at(3) and (end - start) <= timedelta(minutes=2)


# --- healthy evidence, limits, ordering -----------------------------------------------------

def test_healthy_noise_gets_no_confident_cause():
    findings = [
        log("40x GET <*> 404", 3, '"GET /favicon.ico HTTP/1.1" 404', at(-3000), count=40, last=at(0),
            severity=Severity.MEDIUM),
        log("2x client closed connection while reading request", 9,
            "client closed connection while reading request", at(-100), severity=Severity.MEDIUM),
        Finding("DUMP.CRASH", "tool crashed: SIGABRT in tool!main", Severity.CRITICAL, "old/core.tool",
                (EvidenceRef.frame("old/core.tool", 0, 0, "tool!main"),), data={"signal": "SIGABRT"}),
    ]
    d = diagnose(findings)
    assert all(c.confidence <= 0.5 for c in d.causes)


def test_no_findings_no_causes_and_case_wide_findings_are_not_causes():
    assert diagnose([]).causes == ()
    case = Finding("CASE.CORRELATED_INCIDENT", "3 problems in 2 artifacts", Severity.HIGH, "")
    assert diagnose([case]).causes == ()


def test_settings_bound_the_output():
    findings = [log(f"1x error number {k}: connection refused", k, f"ERROR {k} connection refused", at(k))
                for k in range(12)]
    d = diagnose(findings, settings=DiagnosisSettings(max_causes=3))
    assert len(d.causes) <= 3
    assert all(0.0 <= c.confidence <= 1.0 for c in d.causes)
    assert d.duration_s >= 0


def test_same_happening_is_counted_once():
    """A first-error finding and the template finding of the same line are one node."""
    line = "ERROR connect to 10.1.2.3:6432 failed: Connection refused"
    findings = [
        log("first error: connect to 10.1.2.3:6432 failed: Connection refused", 8, line, at(1),
            code="LOG.FIRST_ERROR"),
        log("3x connect to <*> failed: Connection refused", 8, line, at(1)),
        net("NET.TCP.RST_TO_SYN", "Connection refused by 10.1.2.3:6432 (3 attempt(s))", 40, at(1),
            {"server": "10.1.2.3:6432"}),
    ]
    top = diagnose(findings).top
    assert top.explained == (1,)                  # the template stands for both
    assert all(c.finding != 0 for c in diagnose(findings).causes)


# --- entities -------------------------------------------------------------------------------

def test_entities_from_text_and_data():
    vocab = Vocabulary.learn([], hosts=["db.example.net"], processes=["billingd"])
    ents = extract("billingd[311]: lost db.example.net:5432 (pid 311) in /srv/app/data.db; thread 7; "
                   "psycopg.OperationalError; libpq.so.5 failed", vocab)
    assert {Entity("endpoint", "db.example.net:5432"), Entity("host", "db.example.net"), Entity("port", "5432"),
            Entity("process", "billingd"), Entity("pid", "311"), Entity("path", "/srv/app/data.db"),
            Entity("thread", "7"), Entity("exception", "OperationalError"),
            Entity("module", "libpq.so.5")} <= ents
    # locators, code positions and file names are not endpoints
    noise = extract('at line:1234 packet:77 File "worker.py", line 3, in run; Foo.java:42; 11:26:40,155')
    assert not [e for e in noise if e.kind in ("endpoint", "host")]
    assert Entity("endpoint", "127.0.0.1:80") in extract("GET http://localhost:80/x")
    assert Entity("host", "127.0.0.1") not in extract("127.0.0.1 - - [27/Nov/2026] GET /")
    assert [str(e) for e in from_data({"exception_type": "RuntimeError", "causes": ["ConnectionRefusedError"]})] \
        == ["exception RuntimeError", "exception ConnectionRefusedError"]


# --- the library is data, checked on load ---------------------------------------------------

def test_library_is_consistent():
    lib = load_library()
    ids = {s.id for s in lib.signals}
    assert {"conn_refused", "dns_failure", "deadlock", "native_crash", "disk_full", "fd_exhausted",
            "out_of_memory", "slow_service", "zero_window", "tls_failure", "config_error"} <= ids
    for r in lib.relations:
        assert r.rationale and set(r.cause) <= ids and set(r.effect) <= ids


def test_library_errors_name_the_place():
    good_signal = {"id": "a", "codes": ["X.*"], "prior": 0.5, "title": ["{title}"]}
    with pytest.raises(FormatError, match=r"signal\[0\]\.text"):
        parse_library({"signal": [dict(good_signal, text="(unclosed")]})
    with pytest.raises(FormatError, match="unknown signal"):
        parse_library({"signal": [good_signal],
                       "relation": [{"id": "r", "cause": ["a"], "effect": ["b"], "join": ["host"],
                                     "rationale": "x"}]})
    with pytest.raises(FormatError, match="unknown join"):
        parse_library({"signal": [good_signal],
                       "relation": [{"id": "r", "cause": ["a"], "effect": ["a"], "join": ["colour"],
                                     "rationale": "x"}]})
    with pytest.raises(FormatError, match="prior"):
        parse_library({"signal": [dict(good_signal, prior=2)]})


def test_a_zone_that_does_not_load_explains_the_failures_of_names_inside_it():
    findings = [
        net("NET.DNS.SERVFAIL", "DNS ServFail for api.shop.example.net (12 response(s))", 30, at(2),
            {"name": "api.shop.example.net", "rcode": "ServFail", "servers": ["10.0.0.53"]}),
        log("1x zone shop.example.net/IN: loading from master file shop.zone failed: bad TTL", 4,
            "named[88]: zone shop.example.net/IN: loading from master file shop.zone failed: bad TTL", at(1),
            artifact="named.log"),
        log("6x order sync failed: cannot resolve api.shop.example.net", 20,
            "ERROR order sync failed: cannot resolve api.shop.example.net", at(3), count=6, last=at(40)),
    ]
    top = diagnose(findings).top
    assert top.finding == 1 and top.title.startswith("The DNS zone shop.example.net does not load")
    assert {0, 2} <= set(top.explained)
    # a name's failure does not explain its parent zone's error
    servfail = next(c for c in diagnose(findings).causes if c.finding == 0)
    assert 1 not in servfail.explained


def test_a_log_line_ties_an_endpoint_to_a_dumped_process():
    core = "cores/core.ingestd"
    findings = [
        Finding("DUMP.CRASH", "ingestd crashed: SIGABRT in ingestd!store_frame", Severity.CRITICAL, core,
                (EvidenceRef.frame(core, 0, 0, "libc.so.6!raise"),), data={"signal": "SIGABRT"}),
        net("NET.TCP.RST_MIDSTREAM", "4 connection(s) to 10.0.0.9:7070 reset by the server (10.0.0.9)", 10, at(0),
            {"server": "10.0.0.9:7070", "sender": "10.0.0.9", "sender_role": "server"}, severity=Severity.MEDIUM),
        net("NET.TCP.RST_TO_SYN", "Connection refused by 10.0.0.9:7070 (28 attempt(s))", 20, at(0.3),
            {"server": "10.0.0.9:7070"}),
        log("28x reconnect to ingestd <*> failed: Connection refused", 18,
            "ERROR reconnect to ingestd 10.0.0.9:7070 failed: [Errno 111] Connection refused", at(0.3),
            artifact="gw.log", count=28, last=at(3)),
    ]
    facts = [Fact("dump.process", "ingestd", core)]
    top = diagnose(findings, facts=facts).top
    assert top.code == "DUMP.CRASH"
    assert {1, 2} <= set(top.explained)
    link = next(link for link in top.chain if link.effect == 2)
    assert ("process", "ingestd") in link.joined_on


@pytest.mark.parametrize("line, signal", [
    ("java.net.ConnectException: Connection refused (Connection refused)", "conn_refused_log"),
    ("accept4() failed (24: Too many open files)", "fd_exhausted"),
    ("Out of memory: Killed process 4242 (worker) total-vm:812340kB", "out_of_memory"),
    ("ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate has expired", "tls_failure_log"),
    ("curl: (60) SSL certificate problem: unable to get local issuer certificate", "tls_failure_log"),
    ("yaml.scanner.ScannerError: mapping values are not allowed here in \"/etc/app/config.yaml\", line 3",
     "config_error"),
    ("could not write block 8812 of temporary file: No space left on device", "disk_full"),
    ("socket.gaierror: [Errno -2] Name or service not known", "dns_failure_log"),
    ("upstream timed out (110: Connection timed out) while reading response header from upstream", "timeout"),
    ("riskscore 10.0.0.4:7311 did not answer within 1500 ms for txn=88; declining (fallback)", "timeout"),
    ("acquire conn: timed out after 1s (pool 5/5 in use, 0 idle)", "pool_exhausted"),
])
def test_the_wording_programs_use_is_recognised(line, signal):
    f = log(f"1x {line}", 3, f"ERROR {line}", at(0))
    d = diagnose([f])
    assert d.causes and d.causes[0].signal == signal


def test_an_oom_kill_explains_the_worker_exit_of_the_killed_pid():
    findings = [
        log("1x Out of memory: Killed process 4242 (renderer)", 80,
            "kernel: Out of memory: Killed process 4242 (renderer) total-vm:8123400kB", at(0), artifact="kern.log"),
        log("1x worker 4242 exited unexpectedly (signal 9), restarting", 12,
            "ERROR supervisor: worker 4242 exited unexpectedly (signal 9), restarting", at(0.4),
            artifact="supervisor.log"),
        log("3x GET /render 502", 40, '"GET /render HTTP/1.1" 502', at(0.5), artifact="access.log", count=3, last=at(9)),
    ]
    top = diagnose(findings).top
    assert top.finding == 0 and top.signal == "out_of_memory"
    link = next(link for link in top.chain if link.effect == 1)
    assert ("pid", "4242") in link.joined_on


def test_a_transient_refusal_during_a_restart_is_not_the_tls_failure_that_follows():
    """The server restarts (a moment of refused SYNs), then every handshake fails: the TLS alert,
    seen under the server name the client asked for, explains the client's certificate errors."""
    findings = [
        net("NET.TCP.RST_TO_SYN", "Connection refused by 10.0.22.2:8443 (4 attempt(s))", 152, at(0),
            {"server": "10.0.22.2:8443", "connections": 4}),
        net("NET.TLS.ALERT", "TLS fatal alert unknown_ca on 10.0.22.2:8443 (partner.example)", 167, at(0.8),
            {"server": "10.0.22.2:8443", "description": "unknown_ca", "level": "fatal", "sni": "partner.example"}),
        net("NET.TCP.RST_MIDSTREAM", "10 connection(s) to 10.0.22.2:8443 reset by the client (10.0.0.1)", 168,
            at(0.8), {"server": "10.0.22.2:8443", "sender": "10.0.0.1", "sender_role": "client"},
            severity=Severity.MEDIUM),
        log("10x ERROR page <*> from https://<*> failed: curl: (<*>) SSL certificate problem: unable to get local "
            "issuer certificate", 159, "ERROR page 9 from https://partner.example:8443 failed: curl: (60) SSL "
            "certificate problem: unable to get local issuer certificate", at(1), artifact="sync.out", count=10,
            last=at(5)),
    ]
    d = diagnose(findings)
    assert d.top.code == "NET.TLS.ALERT" and d.top.title.endswith("unknown_ca")
    assert {2, 3} <= set(d.top.explained)
    refused = next(c for c in d.causes if c.code == "NET.TCP.RST_TO_SYN")
    assert 2 not in refused.explained          # a refused SYN never made the connection a client resets


def test_in_one_file_line_order_decides_and_a_burst_is_not_the_first_anomaly():
    """A burst's time is its bucket's start (earlier than its first record); in one file the line
    order is the order of the happenings."""
    findings = [
        log("1x zone shop.example/IN: loading from master file shop.zone failed: bad TTL", 40,
            "zone shop.example/IN: loading from master file shop.zone failed: bad TTL", at(5), artifact="named.log"),
        Finding("LOG.BURST", "burst of 38x query <*> SERVFAIL (zone shop.example not loaded)", Severity.MEDIUM,
                "named.log", (EvidenceRef.line("named.log", 41, "query api.shop.example SERVFAIL (zone shop.example "
                                                               "not loaded)"),), count=38, first_seen=at(0),
                last_seen=at(60), data={"bucket_s": 60, "template": "query <*> SERVFAIL"}),
    ]
    top = diagnose(findings).top
    assert top.finding == 0 and 1 in top.explained
    assert not any("first anomaly" in r for c in diagnose(findings).causes if c.finding == 1 for r in c.reasons)


def test_a_finding_of_its_own_class_is_not_another_causes_generic_error():
    findings = [
        log("1x gateway <*> unreachable: [Errno 111] Connection refused", 196,
            "WARNING gateway 10.0.0.8:18443 unreachable: [Errno 111] Connection refused", at(0), artifact="sync.log"),
        log("11x TLS handshake with <*> failed: [SSL: TLSV1_ALERT_PROTOCOL_VERSION]", 197,
            "ERROR TLS handshake with 10.0.0.8:18443 failed: [SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert "
            "protocol version", at(1), artifact="sync.log", count=11, last=at(40)),
    ]
    refused = next(c for c in diagnose(findings).causes if c.finding == 0)
    assert 1 not in refused.explained


def test_a_log_in_local_time_is_aligned_with_the_capture():
    """A log written in local time without a zone reads two hours off the capture's UTC: the
    offset is found from the events both record, and the chain holds."""
    shift = 2 * 3600
    events = []
    for k in range(4):
        events.append(Event(at(10 * k), "net.pcap", "net.tcp.rst_to_syn", "Connection refused by 10.1.2.3:6432",
                            Severity.HIGH, EvidenceRef.packet("net.pcap", 10 + k)))
        events.append(Event(at(shift + 10 * k + 0.01), "app.log", "log.error",
                            "connect to 10.1.2.3:6432 failed: Connection refused", Severity.HIGH,
                            EvidenceRef.line("app.log", 5 + k)))
    findings = [
        net("NET.TCP.RST_TO_SYN", "Connection refused by 10.1.2.3:6432 (4 attempt(s))", 10, at(0),
            {"server": "10.1.2.3:6432"}),
        log("4x connect to <*> failed: Connection refused", 5,
            "ERROR connect to 10.1.2.3:6432 failed: Connection refused", at(shift + 0.01), count=4,
            last=at(shift + 30)),
        log("1x worker stopped after repeated connection failures", 9, "ERROR worker stopped", at(shift + 31),
            count=1),
    ]
    d = diagnose(findings, events, artifacts=[Artifact("net.pcap", ArtifactKind.CAPTURE, 1, "0")])
    assert [(k.artifact, round(k.offset_s)) for k in d.skews] == [("app.log", shift)]
    assert d.top.code == "NET.TCP.RST_TO_SYN" and {1, 2} <= set(d.top.explained)
    assert not any("long after" in r for c in d.causes for r in c.reasons)


def test_no_verdict_on_time_for_a_file_that_shows_nothing_in_the_incident():
    """A log whose clock may be another (its problems all lie hours from the incident, within a
    day) is not called stale; one days before is."""
    events = [Event(at(k), "net.pcap", "net.tcp.rst_to_syn", "refused", Severity.HIGH,
                    EvidenceRef.packet("net.pcap", k + 1)) for k in range(5)]
    events += [Event(at(-3 * 3600), "svc.log", "log.error", "disk full", Severity.HIGH, EvidenceRef.line("svc.log", 4))]
    findings = [
        log("1x write failed: No space left on device", 4, "ERROR write failed: No space left on device",
            at(-3 * 3600), artifact="svc.log"),
        log("1x write failed: No space left on device", 4, "ERROR write failed: No space left on device",
            at(-3 * 86400), artifact="old.log"),
        net("NET.TCP.RST_TO_SYN", "Connection refused by 10.1.2.3:6432 (5 attempt(s))", 1, at(0),
            {"server": "10.1.2.3:6432"}),
    ]
    d = diagnose(findings, events)
    reasons = {c.finding: c.reasons for c in d.causes}
    assert not any("long before" in r for r in reasons[0])
    assert any("long before" in r for r in reasons[1])


# --- process deaths: the cause of the lost service that follows them ----------------------------

def death(title, t, artifact="supervisor.log", line=5, count=1, last=None, **data):
    return log(title, line, title, t, artifact=artifact, code="LOG.PROCESS_EXIT", count=count, last=last,
               data={"reason": "signal", **data})


def test_a_death_outranks_the_refusals_and_client_errors_that_begin_after_it():
    findings = [
        net("NET.TCP.RST_TO_SYN", "Connection refused by 10.4.0.7:8080 (90 attempt(s))", 40, at(0.4),
            {"server": "10.4.0.7:8080", "connections": 90}),
        log("90x tile <*> failed: [Errno 111] Connection refused", 30,
            "ERROR tile /a/1 failed: [Errno 111] Connection refused", at(0.4), artifact="proxy.log", count=90),
        log("2x tile <*> failed: [Errno 104] Connection reset by peer", 29,
            "ERROR tile /a/2 failed: [Errno 104] Connection reset by peer", at(0.1), artifact="proxy.log"),
        death("tilerd killed by signal 9 (1x): down: tilerd[<*>] terminated by signal <*>", at(0),
              process=["tilerd"], pid="4242", signal="9"),
    ]
    d = diagnose(findings)
    assert d.top.finding == 3 and d.top.code == "LOG.PROCESS_EXIT"
    assert d.top.title.startswith("tilerd died")
    assert {0, 2} <= set(d.top.explained)
    link = next(x for x in d.top.chain if x.effect == 0)
    assert [k for k, _v in link.joined_on] == ["onset"]        # nothing but the moment ties them
    refused = next(c for c in d.causes if c.finding == 0)
    assert refused.confidence < d.top.confidence - 0.15


def test_the_endpoint_a_log_says_its_program_serves_ties_the_death_to_the_refusals():
    findings = [
        net("NET.TCP.RST_TO_SYN", "Connection refused by 10.4.0.7:8080 (9 attempt(s))", 40, at(30),
            {"server": "10.4.0.7:8080", "connections": 9}),
        death("tilerd killed by signal 9 (1x): down: tilerd[<*>] terminated by signal <*>", at(0),
              process=["tilerd"], pid="4242", signal="9"),
    ]
    index = Fact("log.template_index", [{"template": "tilerd[<*>] listening on <*>", "count": 1,
                                         "example": "INFO tilerd[4242] listening on 10.4.0.7:8080"}], "tilerd.log")
    d = diagnose(findings, facts=[index])
    assert d.top.finding == 1
    (link,) = [x for x in d.top.chain if x.effect == 0]        # 30 s later: no onset, the process ties them
    assert ("process", "tilerd") in link.joined_on
    without = diagnose(findings)                               # nothing says who serves 10.4.0.7:8080
    (weak,) = [x for c in without.causes if c.finding == 1 for x in c.chain if x.effect == 0]
    assert [k for k, _v in weak.joined_on] == ["time"] and weak.weight < link.weight


def test_a_death_after_the_errors_began_is_not_their_cause():
    findings = [
        log("40x call to <*> timed out", 10, "ERROR call to 10.4.0.7:8080 timed out", at(0), count=40,
            artifact="client.log", last=at(60)),
        death("worker killed by signal 9 (1x): watchdog killed worker[<*>] by signal <*>", at(45),
              process=["worker"], pid="77", signal="9"),
    ]
    d = diagnose(findings)
    assert all(x.effect != 0 for c in d.causes if c.finding == 1 for x in c.chain)


def test_a_recurring_death_is_not_chronic_when_the_incident_follows_it():
    hours = timedelta(hours=5)
    recurring = death("billing exited with status 1 (6x): exited: billing (exit status <*>; not expected)",
                      at(0) - hours, count=6, last=at(0), process=["billing"], reason="exit-status")
    refused = net("NET.TCP.RST_TO_SYN", "Connection refused by 10.4.0.9:9000 (40 attempt(s))", 40, at(0.5),
                  {"server": "10.4.0.9:9000", "connections": 40})
    def events(*fs):
        out = [Event(f.first_seen, f.artifact, "log.error", f.title, Severity.HIGH, f.evidence[0]) for f in fs]
        out += [Event(f.last_seen, f.artifact, "log.error", f.title, Severity.HIGH, f.evidence[0]) for f in fs
                if f.code == "LOG.PROCESS_EXIT"]
        return out + [Event(f.first_seen + timedelta(seconds=s), f.artifact, "net.tcp.rst_to_syn", f.title,
                            Severity.HIGH, f.evidence[0]) for f in fs if f.code.startswith("NET.") for s in range(5)]
    d = diagnose([recurring, refused], events(recurring, refused))
    assert d.top.finding == 0
    assert any("not discounted as chronic" in r for r in d.top.reasons)
    # the same finding as a condition (not a happening) is discounted as chronic
    lib = load_library()
    plain = type(lib)(tuple(type(sg)(**{**{f: getattr(sg, f) for f in sg.__slots__ if f != "acute"},
                                          "acute": False}) for sg in lib.signals), lib.relations)
    d2 = diagnose([recurring, refused], events(recurring, refused), library=plain)
    top2 = next(c for c in d2.causes if c.finding == 0)
    assert any("chronic: present long before" in r for r in top2.reasons)
    assert top2.confidence < d.top.confidence


def test_the_cause_of_a_death_keeps_first_place_over_the_death():
    findings = [
        log("1x <error> startup failed: invalid cache.ttl.seconds '30s' in conf/rates.properties", 3,
            "ERROR startup failed: invalid cache.ttl.seconds '30s' in conf/rates.properties", at(0),
            artifact="journal.txt"),
        death("rate-service exited with status 1 (1x): rate-service.service: Main process exited, "
              "code=exited, status=<*>/FAILURE", at(0.2), artifact="journal.txt", line=4,
              process=["rate-service"], reason="exit-status"),
        net("NET.TCP.RST_TO_SYN", "Connection refused by 10.4.0.5:8088 (20 attempt(s))", 40, at(0.5),
            {"server": "10.4.0.5:8088", "connections": 20}),
    ]
    d = diagnose(findings)
    assert d.top.finding == 0 and d.top.title.startswith("Bad configuration")
    assert 1 in d.top.explained


def test_a_clean_or_requested_end_is_not_a_death_class():
    lib = load_library()
    sig = lib.signal("process_death_log")
    for text in ("exited: report (exit status 0; expected)", "worker terminated by signal 15",
                 "app.service: main process exited, code=exited, status=0/success", "worker stopped by sigterm"):
        assert not sig.matches("LOG.ERROR_TEMPLATE", text.lower(), {}), text
    for text in ("worker exited with code 1", "app.service: main process exited, code=killed, status=9/kill",
                 "memory cgroup out of memory: killed process 42 (app)", "*** stack smashing detected ***: terminated"):
        assert sig.matches("LOG.ERROR_TEMPLATE", text.lower(), {}), text


# --- issue 11, the held-out misses by class: DNS names, pools, start-up exits, weak causes -------

def nxdomain(name, packet, t, count=3):
    return net("NET.DNS.NXDOMAIN", f"DNS NXDomain for {name} ({count} response(s))", packet, t,
               {"name": name, "rcode": "NXDomain", "servers": ["10.0.0.53"]}, severity=Severity.MEDIUM,
               excerpt=f"NXDomain for {name} from 10.0.0.53")


@pytest.mark.parametrize("words", [
    "[Errno -2] Name or service not known",
    "[Errno 8] nodename nor servname provided, or not known",
    "[Errno 11001] getaddrinfo failed",
    "[Errno -3] Temporary failure in name resolution",
    "java.net.UnknownHostException: {host}",
    "getaddrinfo ENOTFOUND {host}",
    "curl: (6) Could not resolve host: {host}",
])
@pytest.mark.parametrize("asked", ["billing-db", "billing-db.svc", "billing-db.svc.corp.example"])
def test_a_mistyped_name_is_the_cause_of_the_clients_resolution_errors(words, asked):
    # the program asks for a name (relative or full); its resolver walks the search list and the
    # capture shows NXDOMAIN for the completions; benign NXDOMAINs go on around it
    text = f"sync failed: cannot connect to {asked}:5432: " + words.format(host=asked)
    findings = [
        nxdomain("wpad.corp.example", 1, at(-0.5), count=12),
        nxdomain("billing-db.svc.corp.example", 20, at(0.0)),
        log("5x sync failed: <*>", 40, "ERROR " + text, at(0.01), count=5),
        log("5x GET /stock answered 503", 41, "ERROR GET /stock answered 503 Service Unavailable", at(0.4), count=5),
    ]
    d = diagnose(findings)
    assert d.top.finding == 1 and d.top.code == "NET.DNS.NXDOMAIN", [(c.title, c.confidence) for c in d.causes]
    link = next(link for link in d.top.chain if link.effect == 2)
    assert ("host", "billing-db.svc.corp.example") in link.joined_on
    assert 1 not in [c.finding for c in d.causes[1:]] and 0 not in [c.finding for c in d.causes]


def test_benign_nxdomains_are_noise_not_causes():
    lib = load_library()
    sig = lib.signal("dns_failure")
    for name in ("wpad.corp.example", "wpad", "isatap.corp.example", "_ldap._tcp.dc._msdcs.corp.example",
                 "2.44.0.127.in-addr.arpa"):
        f = nxdomain(name, 1, at(0))
        assert not sig.matches(f.code, f"{f.title}\n{f.evidence[0].excerpt}".lower(), f.data, int(f.severity)), name
    # a search-list completion of a short name that resolves in the next domain, with a short name
    # in unrelated words: nothing fails, nothing is confident
    findings = [
        nxdomain("ntp.svc.corp.example", 1, at(0), count=8),
        nxdomain("wpad.svc.corp.example", 2, at(0.1), count=8),
        log("4x clock drift <*> ms against ntp (threshold 50 ms)", 5,
            "WARN clock drift 61 ms against ntp (threshold 50 ms)", at(1), count=4, severity=Severity.MEDIUM),
    ]
    d = diagnose(findings)
    assert all(c.confidence <= 0.5 for c in d.causes)
    assert all(link.effect != 2 for c in d.causes for link in c.chain if link.joined_on[0][0] == "host")


def test_a_relative_name_in_other_words_is_not_tied_to_a_failed_lookup():
    findings = [
        nxdomain("ledger.svc.corp.example", 1, at(0)),
        log("1x ledger export finished with warnings", 5, "WARN ledger export finished with warnings", at(1),
            severity=Severity.MEDIUM),
    ]
    d = diagnose(findings)
    assert not any(("host", "ledger.svc.corp.example") in link.joined_on for c in d.causes for link in c.chain)


@pytest.mark.parametrize("line", [
    "GET /carts/7341 failed: connection pool exhausted: could not obtain a connection within 1.0 s",
    "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
    "QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00",
    "psycopg2.OperationalError: FATAL:  sorry, too many clients already",
    "java.util.concurrent.RejectedExecutionException: Task rejected from java.util.concurrent.ThreadPoolExecutor@1",
    "worker queue full: dropping request 8812",
])
def test_pool_exhaustion_is_a_cause_of_the_timeouts_and_5xx_after_it(line):
    findings = [
        log("4x <*> failed: <*>", 30, "ERROR " + line, at(0), artifact="cart-api.log", count=4),
        net("NET.HTTP.5XX", "HTTP 503 for /carts/{id} on 10.2.0.5:8080 (4 response(s))", 60, at(0.002),
            {"server": "10.2.0.5:8080", "status": 503}),
        log("4x checkout <*> failed: cart service answered HTTP 503", 12,
            "ERROR checkout 7341 failed: cart service answered HTTP 503", at(0.003), artifact="web.log", count=4),
        log("2x checkout <*> failed: timed out", 13, "ERROR checkout 7342 failed: timed out", at(1.2),
            artifact="web.log", count=2),
    ]
    d = diagnose(findings)
    assert d.top.finding == 0 and d.top.signal == "pool_exhausted", [(c.title, c.confidence) for c in d.causes]
    assert {1, 2} <= set(d.top.explained) and d.top.confidence > 0.5


def test_a_pool_size_warning_or_a_full_pool_discarding_a_spare_connection_is_not_exhaustion():
    sig = load_library().signal("pool_exhausted")
    for text in ("pool size 4 is below the recommended minimum of 8 for this host",
                 "Connection pool is full, discarding connection: api.example.com",
                 "starting with pool timeout 30 s and 8 connections",
                 "invalid literal for int() with base 10: '2O' (max_connections)"):
        assert not sig.matches("LOG.ERROR_TEMPLATE", text.lower(), {}, int(Severity.HIGH)), text
    findings = [log("3x pool size <*> is below the recommended minimum of <*> for this host", 2,
                    "WARNING pool size 4 is below the recommended minimum of 8 for this host", at(0),
                    count=3, severity=Severity.MEDIUM)]
    assert all(c.confidence <= 0.5 for c in diagnose(findings).causes)


def test_a_slow_backend_outranks_the_pool_it_drains():
    findings = [
        net("NET.HTTP.SLOW", "Slow HTTP responses from 10.2.0.9:8080: p95 4.2 s", 70, at(-2),
            {"server": "10.2.0.9:8080", "p95_s": 4.2}),
        log("6x pool exhausted: could not obtain a connection to 10.2.0.9:8080 within 1.0 s", 30,
            "ERROR pool exhausted: could not obtain a connection to 10.2.0.9:8080 within 1.0 s", at(0),
            artifact="cart-api.log", count=6),
        net("NET.HTTP.5XX", "HTTP 503 for /carts/{id} on 10.2.0.5:8080 (6 response(s))", 60, at(0.01),
            {"server": "10.2.0.5:8080", "status": 503}),
    ]
    d = diagnose(findings)
    assert d.top.finding == 0 and 1 in d.top.explained


def test_a_bad_setting_and_its_exit_come_before_the_refusals_never_after():
    # the supervisor's log is stamped to the second (the exit reads as before the error that caused
    # it); the chain must still run setting -> exit -> refusals, never the refusals -> the exit
    findings = [
        log("6x configuration <*>: invalid value for [listen] backlog: 'unlimited' (expected an integer), "
            "terminating", 96, "ERROR configuration /etc/relayd/relayd.toml: invalid value for [listen] backlog: "
            "'unlimited' (expected an integer), terminating",
            at(0.49), artifact="relayd.log", count=6, last=at(6)),
        death("relayd exited with status 78 (6x): svrun: relayd exited with status 78, restarting in 1 s",
              at(0.0), artifact="svrun.log", line=9, count=6, last=at(6), process=["relayd"],
              reason="exit-status", status=78),
        net("NET.TCP.RST_TO_SYN", "Connection refused by 10.4.6.2:9400 (26 attempt(s))", 40, at(0.3),
            {"server": "10.4.6.2:9400", "connections": 26}),
        log("26x batch <*> not sent to relay <*>: [Errno 111] Connection refused", 21,
            "ERROR batch 5131 not sent to relay 10.4.6.2:9400: [Errno 111] Connection refused", at(0.3),
            artifact="agent.log", count=26, last=at(6)),
    ]
    d = diagnose(findings)
    assert d.top.finding == 0 and d.top.title.startswith("Bad configuration"), [(c.title, c.confidence) for c in d.causes]
    assert 1 in d.top.explained
    for c in d.causes:
        for link in c.chain:
            assert (link.cause, link.effect) not in ((2, 1), (3, 1), (1, 0)), (c.title, link)


@pytest.mark.parametrize("line", [
    "OSError: [Errno 28] No space left on device: '/var/spool/app/journal'",
    "accept() failed: [Errno 24] Too many open files",
    "java.lang.OutOfMemoryError: Java heap space",
])
def test_a_resource_running_out_explains_the_errors_after_it_not_before(line):
    findings = [
        log("3x request <*> failed: internal error", 8, "ERROR request 7 failed: internal error", at(-30),
            artifact="svc.log", count=3),
        log(f"5x {line}", 20, f"ERROR {line}", at(0), artifact="svc.log", count=5),
        log("9x request <*> failed: internal error, answering 500", 24,
            "ERROR request 9 failed: internal error, answering 500", at(0.5), artifact="svc.log", count=9),
    ]
    d = diagnose(findings)
    assert d.top.finding == 1 and 2 in d.top.explained and 0 not in d.top.explained


def test_a_log_that_says_it_serves_an_endpoint_ties_its_errors_to_the_answers_seen_there():
    # nothing names the program but its log's file name: the log's errors and the capture's 503s on
    # the endpoint the log says it serves are about one program
    index = Fact("log.template_index", [{"template": "serving stock levels on <*>",
                                          "example": "INFO serving stock levels on 10.3.0.2:8080"}],
                 "b.zip!/var/log/stock-sync.log")
    findings = [
        log("9x stock refresh failed: unable to connect to the inventory database", 30,
            "ERROR stock refresh failed: unable to connect to the inventory database", at(0),
            artifact="b.zip!/var/log/stock-sync.log", count=9),
        net("NET.HTTP.5XX", "HTTP 503 for /stock/{id} on 10.3.0.2:8080 (9 response(s))", 80, at(40),
            {"server": "10.3.0.2:8080", "status": 503}),
    ]
    d = diagnose(findings, facts=[index])
    link = next((link for c in d.causes for link in c.chain if (link.cause, link.effect) == (0, 1)), None)
    assert link is not None and ("process", "stock-sync") in link.joined_on
    # without the serving line, 40 s apart, nothing ties them
    d = diagnose(findings)
    assert not any((link.cause, link.effect) == (0, 1) for c in d.causes for link in c.chain)


def test_the_completions_of_one_asked_name_are_one_cause_not_three():
    findings = [
        nxdomain("billing-db.svc.corp.example", 20, at(0.0), count=13),
        nxdomain("billing-db.corp.example", 21, at(0.001), count=13),
        nxdomain("billing-db", 22, at(0.002), count=13),
        log("13x sync failed: cannot connect to billing-db:5432: [Errno -2] Name or service not known", 40,
            "ERROR sync failed: cannot connect to billing-db:5432: [Errno -2] Name or service not known", at(0.01),
            count=13),
        nxdomain("ntp.svc.corp.example", 23, at(0.5), count=4),           # another name: not merged
    ]
    d = diagnose(findings)
    dns = [c for c in d.causes if c.code == "NET.DNS.NXDOMAIN"]
    assert d.top.finding in (0, 1, 2) and d.top.confidence > 0.5
    assert len([c for c in dns if c.finding in (0, 1, 2)]) == 1
    assert any(c.finding == 4 for c in dns)


def test_an_exception_at_start_is_the_cause_of_the_refusals_on_its_own_endpoint():
    # the service throws while starting (no exit line anywhere); its clients' refusals name its
    # endpoint, which its own log says it serves: the refusals did not cause the exception
    index = Fact("log.template_index", [{"template": "listening on <*>", "example": "INFO listening on 10.5.0.2:9300"}],
                 "svc/quoter.log")
    findings = [
        Finding("DUMP.JAVA_EXCEPTION", "java.lang.IllegalStateException: quote table empty (at start-up)",
                Severity.HIGH, "svc/quoter.log",
                (EvidenceRef.line("svc/quoter.log", 40, "java.lang.IllegalStateException: quote table empty at "
                                  "com.example.Quoter.start(Quoter.java:88) while binding 10.5.0.2:9300"),),
                count=3, first_seen=at(0), last_seen=at(8), analyzer="dumps.text",
                data={"exception_type": "java.lang.IllegalStateException"}),
        log("40x price lookup failed: connect to 10.5.0.2:9300 refused", 12,
            "ERROR price lookup failed: connect to 10.5.0.2:9300 refused (Connection refused)", at(0.6),
            artifact="web/shop.log", count=40, last=at(9)),
    ]
    d = diagnose(findings, facts=[index])
    assert d.top.finding == 0, [(c.title, c.confidence) for c in d.causes]
    assert not any((link.cause, link.effect) == (1, 0) for c in d.causes for link in c.chain)


# --- held-out set 1 classes: what ends a program, the pool behind slow answers, the slow upstream,
# --- a restart's refusals ----------------------------------------------------------------------

def _startup_exception(artifact, prefix, line=10, pid="2110"):
    return Finding("DUMP.PYTHON_EXCEPTION", "json.decoder.JSONDecodeError: Expecting value: line 16 column 3",
                   Severity.HIGH, artifact,
                   (EvidenceRef.line(artifact, line, f"{prefix}json.decoder.JSONDecodeError: Expecting value: "
                                                     "line 16 column 3 (char 288)"),),
                   count=5, first_seen=at(0), last_seen=at(5), analyzer="dumps.text",
                   data={"exception_type": "json.decoder.JSONDecodeError"})


def _respawn_loop(artifact, line=11, pid="2110"):
    return death(f"appd exited with status 1 (5x): appd (pid {pid}) exited with code 1; respawn 1/5", at(0),
                 artifact=artifact, line=line, count=5, last=at(5), process=["appd", "watchd"],
                 reason="exit-status", status=1)


def _lost_service():
    return [net("NET.TCP.RST_TO_SYN", "Connection refused by 10.6.0.1:8088 (47 attempt(s))", 40, at(0.9),
                {"server": "10.6.0.1:8088", "connections": 47}),
            log("47x webhook to appd <*>:<*> failed: [Errno <*>] Connection refused", 30,
                "ERROR webhook to appd 10.6.0.1:8088 failed: [Errno 111] Connection refused", at(1),
                artifact="client/alerts.log", count=47, last=at(12))]


_APPD_LISTENS = Fact("log.template_index", [{"template": "listening on <*>",
                                             "example": "INFO listening on 10.6.0.1:8088"}], "vm/appd.log")


@pytest.mark.parametrize("journal", [True, False])
def test_the_exception_before_each_exit_of_a_program_is_the_cause_of_its_death(journal):
    """A program dies at start-up with an exception, its supervisor respawns it and gives up, its
    clients are refused: the exception explains the exits (the death is its effect).  Tied by the
    pid of a journal's ``prog[pid]:`` prefixes, or by the program a plain stderr file is named after."""
    if journal:
        exc = _startup_exception("vm/journal.txt", "2026-12-07T17:50:43 vm appd[2110]: ")
        exits = _respawn_loop("vm/journal.txt")
    else:
        exc = _startup_exception("vm/appd.stderr", "")
        exits = _respawn_loop("vm/watchd.log")
    findings = [exits, exc, *_lost_service()]
    d = diagnose(findings, facts=[_APPD_LISTENS])
    assert d.top.finding == 1, [(c.title, c.confidence) for c in d.causes]
    assert 0 in d.top.explained
    death_cause = next(c for c in d.causes if c.finding == 0)
    assert any("explained by finding 1" in r for r in death_cause.reasons)
    # the client's refusals name the program only as the server it calls: they do not explain its exception
    assert not any((link.cause, link.effect) == (3, 1) for c in d.causes for link in c.chain)


def test_an_exception_of_another_program_does_not_take_over_a_death():
    exc = _startup_exception("other/journal.txt", "2026-12-07T17:50:43 vm reportd[977]: ", pid="977")
    findings = [_respawn_loop("vm/journal.txt"), exc, *_lost_service()]
    d = diagnose(findings, facts=[_APPD_LISTENS])
    assert d.top.finding == 0, [(c.title, c.confidence) for c in d.causes]
    other = next((c for c in d.causes if c.finding == 1), None)
    assert other is None or other.confidence < 0.5


def test_pool_exhaustion_wording_n_of_n_workers_busy():
    sig = load_library().signal("pool_exhausted")
    hits = ["POST /notify timed out after 2.5s waiting for a webhook worker: 8 of 8 workers busy, 14 tasks queued",
            "all 16 threads busy", "request timed out waiting for a database connection"]
    misses = ["3 of 8 workers busy, 0 tasks queued", "18 of 8 workers busy",
              "timed out after 2.5s waiting for a response from the worker"]
    for text in hits:
        assert sig.matches("LOG.ERROR_TEMPLATE", text.lower(), {}), text
    for text in misses:
        assert not sig.matches("LOG.ERROR_TEMPLATE", text.lower(), {}), text


def test_an_exhausted_pool_explains_the_slow_answers_and_503s_of_its_own_service():
    index = Fact("log.template_index", [{"template": "gw listening on <*> (pool of <*>)",
                                         "example": "INFO gw listening on 10.7.0.1:80 (pool of 8)"}], "gw/gw.log")
    findings = [
        net("NET.HTTP.SLOW", "Slow HTTP responses from 10.7.0.1:80: p95 2.502 s", 300, at(0.2),
            {"server": "10.7.0.1:80"}, severity=Severity.MEDIUM),
        log("12x POST <*> timed out after <*>s waiting for a worker: <*> of <*> workers busy", 40,
            "WARNING POST /notify timed out after 2.5s waiting for a worker: 8 of 8 workers busy", at(0.2),
            artifact="gw/gw.log", count=12, last=at(9)),
        net("NET.HTTP.5XX", "HTTP 503 for /notify on 10.7.0.1:80 (12 response(s))", 310, at(0.2),
            {"server": "10.7.0.1:80", "status": 503}),
    ]
    d = diagnose(findings, facts=[index])
    assert d.top.finding == 1 and d.top.signal == "pool_exhausted", [(c.title, c.confidence) for c in d.causes]
    assert {0, 2} <= set(d.top.explained)
    slow = next(c for c in d.causes if c.finding == 0)
    assert slow.confidence < d.top.confidence - 0.2


def _proxy_case(front_paths, backend=True):
    findings = [
        net("NET.HTTP.SLOW", "Slow HTTP responses from 10.8.0.31:80: p95 2.003 s", 300, at(0),
            {"server": "10.8.0.31:80"}, severity=Severity.MEDIUM,
            excerpt="\n".join(f"2.003 s for GET {p}" for p in front_paths)),
        log("12x upstream <*>:<*> timed out after <*>s for GET <*>", 44,
            "[proxy:error] upstream 10.8.0.32:8088 timed out after 2.0s for GET /stock/sku-31", at(0),
            artifact="edge/error.log", count=12, last=at(9)),
    ]
    if backend:
        findings.append(log("12x slow query stock_lookup sku=<*> took <*> ms (database is locked)", 530,
                            "WARNING slow query stock_lookup sku=sku-31 took 2563 ms (database is locked)", at(0.5),
                            artifact="inv/inventory.log", code="LOG.NEW_TEMPLATE", count=12, last=at(9.5),
                            severity=Severity.MEDIUM))
    index = Fact("log.template_index", [{"template": "inventory listening on <*>",
                                         "example": "INFO inventory listening on 10.8.0.32:8088"}], "inv/inventory.log")
    return findings, [index]


def test_a_slow_backend_explains_the_front_that_waits_for_it():
    findings, facts = _proxy_case(["/stock/sku-31", "/stock/sku-9"])
    d = diagnose(findings, facts=facts)
    assert d.top.finding == 2, [(c.title, c.confidence) for c in d.causes]
    assert {0, 1} <= set(d.top.explained)
    front = next(c for c in d.causes if c.finding == 0)
    assert any("explained by finding" in r for r in front.reasons)
    link = next(x for c in d.causes if c.finding == 1 for x in c.chain if x.effect == 0)
    assert ("path", "/stock/sku-31") in link.joined_on          # the same request, slow at the front


def test_upstream_time_outs_of_other_requests_do_not_tie_to_the_front():
    findings, facts = _proxy_case(["/promo/banner-1", "/promo/banner-2"], backend=False)
    d = diagnose(findings, facts=facts)
    assert not any(x.effect == 0 and ("path", "/stock/sku-31") in x.joined_on
                   for c in d.causes for x in c.chain)


def _restart_then(later_code, later_title, later_data, t_later, t_end):
    return [
        net("NET.TCP.RST_TO_SYN", "Connection refused by 10.9.0.171:8443 (2 attempt(s))", 40, at(0),
            {"server": "10.9.0.171:8443", "connections": 2}),
        Finding(later_code, later_title, Severity.HIGH, "net.pcap",
                (EvidenceRef.packet("net.pcap", 60, later_title),), count=20, first_seen=at(t_later),
                last_seen=at(t_end), analyzer="net.capture", data=later_data),
        log("1x <*>:<*> unreachable: [Errno <*>] Connection refused", 268,
            "ERROR 10.9.0.171:8443 unreachable: [Errno 111] Connection refused", at(0.01), artifact="clinic.log"),
    ]


def test_refusals_during_a_restart_are_transient_when_the_endpoint_answers_again():
    alert = {"server": "10.9.0.171:8443", "description": "protocol_version", "level": "fatal"}
    d = diagnose(_restart_then("NET.TLS.ALERT", "TLS fatal alert protocol_version on 10.9.0.171:8443", alert,
                               0.6, 30))
    assert d.top.finding == 1, [(c.title, c.confidence) for c in d.causes]
    refused = next(c for c in d.causes if c.finding == 0)
    assert any(r.startswith("transient") for r in refused.reasons)


def test_refusals_that_last_are_not_transient():
    # the alerts are over before the refusals end: the endpoint never takes connections again
    alert = {"server": "10.9.0.171:8443", "description": "protocol_version", "level": "fatal"}
    findings = _restart_then("NET.TLS.ALERT", "TLS fatal alert protocol_version on 10.9.0.171:8443", alert, -60, -50)
    findings[0] = net("NET.TCP.RST_TO_SYN", "Connection refused by 10.9.0.171:8443 (90 attempt(s))", 40, at(0),
                      {"server": "10.9.0.171:8443", "connections": 90})
    findings[0] = Finding(**{**{f: getattr(findings[0], f) for f in findings[0].__dataclass_fields__},
                             "last_seen": at(60), "count": 90})
    d = diagnose(findings)
    refused = next(c for c in d.causes if c.finding == 0)
    assert not any(r.startswith("transient") for r in refused.reasons)
    # another endpoint answering does not make these refusals transient
    other = _restart_then("NET.TLS.ALERT", "TLS fatal alert protocol_version on 10.9.0.5:443",
                          {**alert, "server": "10.9.0.5:443"}, 0.6, 30)
    d2 = diagnose(other)
    refused2 = next(c for c in d2.causes if c.finding == 0)
    assert not any(r.startswith("transient") for r in refused2.reasons)


def test_a_logger_named_after_tls_is_not_a_tls_failure():
    sig = load_library().signal("tls_failure_log")
    # a dotted logger or module name ending in "tls" is not the word TLS
    assert not sig.matches("LOG.ERROR_TEMPLATE", "2026-12-07t12:56:22 | error | payroll.tls | background task failed", {})
    assert sig.matches("LOG.ERROR_TEMPLATE", "error: tls handshake failed with 10.0.0.5:443", {})


# --- held-out set 2 classes: lock waits, stale dumps, empty hang snapshots, repeated tracebacks ----

@pytest.mark.parametrize("line", [
    "fare lookup for route R1 failed after 6.0s: database is locked",
    "(1205, 'Lock wait timeout exceeded; try restarting transaction')",
    "ERROR: canceling statement due to lock timeout",
    "sqlite3.OperationalError: database is locked",
])
def test_a_lock_wait_is_a_cause_of_the_slow_answers_and_timeouts_around_it(line):
    findings = [
        net("NET.HTTP.SLOW", "Slow HTTP responses from 10.0.0.8:80: p95 2.0 s", 300, at(0),
            {"server": "10.0.0.8:80", "p95_s": 2.0}, severity=Severity.MEDIUM),
        log("6x upstream timed out (110: Connection timed out) while reading response header from upstream", 50,
            "upstream timed out (110: Connection timed out) while reading response header from upstream", at(2),
            artifact="proxy.log", count=6, last=at(9)),
        # logged when the wait gives up, seconds after the slow answers began
        log(f"15x {line}", 400, f"ERROR {line}", at(6), artifact="api.log", count=15, last=at(9)),
    ]
    d = diagnose(findings)
    assert d.top.signal == "lock_wait" and d.top.finding == 2
    assert {0, 1} <= set(d.top.explained)


def test_a_lock_wait_explains_nothing_of_the_same_logs_hours_before_it():
    findings = [
        log("36x route <*> not found in tariff <*>", 22, "ERROR route R111 not found in tariff", at(-20000),
            artifact="api.log", count=36, last=at(-100)),
        log("15x lookup failed after 6.0s: database is locked", 400, "ERROR lookup failed: database is locked",
            at(6), artifact="api.log", count=15, last=at(9)),
    ]
    d = diagnose(findings)
    lock = next(c for c in d.causes if c.signal == "lock_wait")
    assert 0 not in lock.explained
    # near miss: words about locks that are no wait
    quiet = diagnose([log("1x lock file /run/app.lock created", 3, "ERROR lock file created", at(0))])
    assert all(c.signal != "lock_wait" for c in quiet.causes)


def _core(path, mtime, title="tool crashed: SIGABRT in tool!main"):
    f = Finding("DUMP.CRASH", title, Severity.CRITICAL, path, (EvidenceRef.frame(path, 0, 0, "tool!main"),),
                data={"signal": "SIGABRT"})
    return f, Artifact(path, ArtifactKind.ELF_CORE, 1, "", meta={"mtime": mtime.isoformat()})


def _window_events():
    return [Event(ts=at(s), artifact="app.log", kind="log.error", summary="error", severity=Severity.HIGH)
            for s in range(0, 30, 3)]


def test_an_undated_crash_in_a_core_written_hours_before_the_incident_is_stale():
    exc = Finding("DUMP.PYTHON_EXCEPTION", "KeyError: 'warehouse_id'", Severity.HIGH, "svc.trace",
                  (EvidenceRef.line("svc.trace", 12, "KeyError: 'warehouse_id'"),),
                  data={"signature": "KeyError | reserve", "exception_type": "KeyError"})
    old_f, old_a = _core("core.tool.1", at(-5 * 3600))
    d = diagnose([old_f, exc], _window_events(), artifacts=[old_a])
    assert d.top.code == "DUMP.PYTHON_EXCEPTION"
    crash = next(c for c in d.causes if c.code == "DUMP.CRASH")
    assert crash.confidence < 0.2
    # near miss: the same core written during the incident (or with no time at all) keeps its weight
    new_f, new_a = _core("core.tool.1", at(10))
    assert diagnose([new_f, exc], _window_events(), artifacts=[new_a]).top.code == "DUMP.CRASH"
    assert diagnose([new_f, exc], _window_events()).top.code == "DUMP.CRASH"


def test_a_traceback_repeated_per_request_outweighs_a_single_one():
    def exc(line, name, sig):
        return Finding("DUMP.PYTHON_EXCEPTION", f"{name}: x", Severity.HIGH, "svc.trace",
                       (EvidenceRef.line("svc.trace", line, f"{name}: x"),),
                       data={"signature": sig, "exception_type": name})
    findings = [exc(5, "ValueError", "ValueError | old")] + [exc(100 + 10 * k, "KeyError", "KeyError | reserve")
                                                              for k in range(20)]
    d = diagnose(findings)
    assert d.top.title.find("KeyError") >= 0
    assert d.causes[0].confidence > d.causes[1].confidence


def test_a_snapshot_with_no_thread_blocked_is_no_hang():
    idle = Finding("DUMP.HANG", "snapshot of a running process: 0 of 1 threads blocked", Severity.MEDIUM,
                   "core.seatd.1", data={"waits": {}})
    stuck = Finding("DUMP.HANG", "snapshot of a running process: 1 of 1 threads blocked", Severity.MEDIUM,
                    "core.seatd.1", data={"waits": {"1": "flock"}})
    lib = load_library()
    from backline.knowledge.diagnosis.nodes import classify, finding_text
    assert "hang" not in [s.id for s in classify(lib, idle, finding_text(idle).lower())]
    assert "hang" in [s.id for s in classify(lib, stuck, finding_text(stuck).lower())]


def test_a_file_not_found_error_is_no_name_resolution_failure():
    line = "FileNotFoundError: [Errno 2] No such file or directory: '/opt/app/missing.lic'"
    d = diagnose([log(f"1x {line}", 3, line, at(0))])
    assert all(c.signal != "dns_failure_log" for c in d.causes)
    assert diagnose([log("1x getaddrinfo ENOTFOUND db.internal", 3, "Error: getaddrinfo ENOTFOUND db.internal",
                         at(0))]).top.signal == "dns_failure_log"


def test_skew_entities_in_one_pass_equal_extract_text_by_text():
    """The clock-skew estimate reads events' endpoints, hosts and pids with each pattern run once
    over all texts joined: what it finds must equal extract() text by text, at the joins too."""
    from backline.knowledge.diagnosis.entities import SKEW_KINDS, skew_entities_many
    texts = ["connect to 10.0.0.5:5432 refused", "10.0.0.6", "pid 4242", "pid\n", "77 exited",
             "('10.1.2.3', 8080)", "(\n'db.example.com'", ", 5432)", "http://user", "@api.example.com/x",
             "billing-db timed out", "billing-db.corp:443 slow", "billing-db. again", "worker 31337 died",
             "nginx[811]: upstream 10.0.0.9:8088 timed out", "[::1]:80 and [fe80::1]:443", "1.2.3.4.5",
             "", "GET http://10.0.0.7:8080/x", "999.1.1.1:22", "a" * 300 + " 10.9.9.9:1", "host=db1:5432"]
    vocab = Vocabulary.learn(texts, hosts=["billing-db", "db1"])
    for v in (None, vocab):
        want = [frozenset(x for x in extract(t, v) if x.kind in SKEW_KINDS and x.specific) for t in texts]
        got = skew_entities_many(texts, v)
        assert got == want
        assert any(got) and not all(got)


def test_the_shipped_library_compiles_every_pattern_and_the_lazy_one_agrees():
    """The shipped library is read with its patterns compiled when first needed: every one of them
    must compile (here, at once) and screen the same way."""
    import tomllib
    from importlib import resources
    text = resources.files("backline.knowledge.diagnosis").joinpath("relations.toml").read_text(encoding="utf-8")
    eager, lazy = parse_library(tomllib.loads(text)), load_library()
    assert [s.id for s in eager.signals] == [s.id for s in lazy.signals]
    for e, z in zip(eager.signals, lazy.signals):
        for a, b in ((e.text, z.text), (e.not_text, z.not_text)):
            assert (a is None) == (b is None)
            if a is not None:
                assert a._rx is not None and a.pattern == b.pattern and a.hints == b.hints
    probe = "connection refused by 10.0.0.5:5432 (errno 111)"
    assert [s.id for s in eager.signals if s.matches("LOG.ERROR_TEMPLATE", probe, {})] == \
        [s.id for s in lazy.signals if s.matches("LOG.ERROR_TEMPLATE", probe, {})]


def _skew_bundle(seed: int):
    """Three artifacts that record the same happenings with their own clocks (the capture's, a log
    40 s ahead, a log 7 s behind): refusals of endpoints, a host name only the vocabulary knows,
    pids; with ties in time, undated and minor events between them, and more dated problems per
    artifact than the estimate reads with small settings."""
    import random

    rnd = random.Random(seed)
    offsets = {"net.pcap": 0.0, "app.log": 40.0, "db.log": -7.0}
    events = []
    for k in range(300):
        t = at(rnd.randrange(0, 3600) + rnd.choice((0.0, 0.25)))       # ties in time on purpose
        host, port = rnd.choice(("10.1.2.3", "db01.corp.example")), rnd.choice((6432, 5432, 443))
        pid = rnd.randrange(100, 110)
        what = rnd.randrange(5)
        for art, off in offsets.items():
            ts = t + timedelta(seconds=off + rnd.random() * 0.02)
            if art == "net.pcap":
                if what == 0:
                    events.append(Event(ts, art, "net.tcp.rst_to_syn", f"Connection refused by {host}:{port}",
                                        Severity.HIGH, EvidenceRef.packet(art, k)))
                continue
            summary = (f"connect to {host}:{port} failed: Connection refused",
                       f"worker[{pid}] lost db01. Retrying",        # db01: only the vocabulary knows it
                       "pool on cache7.corp.example:8080 is slow",   # the same host: fixed patterns
                       "nothing specific here",
                       "cache7.corp.example dropped a request")[what]   # ... and the vocabulary
            sev = (Severity.HIGH, Severity.MEDIUM)[k % 2]
            events.append(Event(ts, art, "log.error", summary, sev, EvidenceRef.line(art, k, summary)))
            if rnd.random() < 0.2:                                     # noise the estimate does not read
                events.append(Event(None, art, "log.error", summary, Severity.HIGH))
                events.append(Event(ts, art, "log.info", summary, Severity.LOW))
    return events


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("learned", [False, True])
def test_skew_digests_made_per_artifact_give_the_same_estimate(seed, learned):
    """The tasks' digests (each artifact's entities found where it was analysed) change nothing:
    the same skews as reading every event on the report's side, with and without learned names,
    also when only the first events of each artifact are read."""
    from backline.knowledge.diagnosis.entities import Vocabulary
    from backline.knowledge.diagnosis.timing import TimingSettings, skew_digests

    events = _skew_bundle(seed)
    ordered = sorted(events, key=lambda e: ((0, e.ts) if e.ts else (1, at(0)), e.artifact))
    vocab = Vocabulary.learn([], hosts=["db01", "cache7.corp.example"]) if learned else None
    for settings in (TimingSettings(), TimingSettings(max_events=40), TimingSettings(max_events=3)):
        digests = {}
        for art in ("net.pcap", "app.log", "db.log"):      # one task per artifact, in task order
            digests.update(skew_digests([e for e in events if e.artifact == art], settings))
        want = estimate_skews(ordered, vocab, settings)
        got = estimate_skews(ordered, vocab, settings, digests=digests)
        assert got == want
        if settings == TimingSettings():                   # every event read
            assert {(s.artifact, round(s.offset_s)) for s in want} == {("app.log", 40), ("db.log", -7)}
    # a digest made with other settings is not used (and cannot change the answer)
    other = skew_digests(events, TimingSettings(max_events=2))
    assert estimate_skews(ordered, vocab, digests=other) == estimate_skews(ordered, vocab)


def test_runner_keeps_a_digest_only_for_an_artifact_one_task_produced():
    from backline.analyzers.runner import RunnerOutput, TaskResult
    from backline.knowledge.diagnosis.timing import skew_digests
    from backline.model import AnalyzerRun, RunStatus

    events = _skew_bundle(4)
    app = [e for e in events if e.artifact == "app.log"]
    pcap = [e for e in events if e.artifact == "net.pcap"]
    run = AnalyzerRun("x", "1", "a", RunStatus.OK)
    out = RunnerOutput()
    out.add(TaskResult(run, app[:50], skew=skew_digests(app[:50])))
    out.add(TaskResult(run, pcap, skew=skew_digests(pcap)))
    out.add(TaskResult(run, app[50:], skew=skew_digests(app[50:])))      # a second task on app.log
    assert set(out.skew) == {"net.pcap"}
    out.add(TaskResult(run, pcap[:1]))                                    # events without a digest
    assert out.skew == {}


def test_vocabulary_hosts_are_what_the_vocabulary_adds_to_the_skew_entities():
    from backline.knowledge.diagnosis.entities import Vocabulary, skew_entities_many, vocabulary_hosts

    texts = [e.summary for e in _skew_bundle(5)] + ["LocalHost. down", "DB01 lost. again db01 ", "db01 no dot"]
    vocab = Vocabulary.learn([], hosts=["db01", "cache7.corp.example", "localhost"])
    hits: dict[int, set] = {}
    for i, x in vocabulary_hosts(texts, vocab):
        hits.setdefault(i, set()).add(x)
    assert hits                                                   # the names are there to be found
    fixed, both = skew_entities_many(texts), skew_entities_many(texts, vocab)
    assert [set(b) for b in both] == [set(f) | hits.get(i, set()) for i, f in enumerate(fixed)]


# --- held-out set 3 classes: what stops a program lends its death's prior whatever its relation; a
# --- lock or pid file still held -----------------------------------------------------------------

def test_a_refused_access_that_stops_a_program_outranks_the_supervisors_report_of_its_exits():
    """The program's own stderr says it could not read its key file; the supervisor reports it exited
    (3x) and its clients are refused.  The access error explains the exits (tied by the program), so
    the death is its effect - without a relation of its own saying so (``lend_prior`` unset)."""
    assert next(r for r in load_library().relations if r.id == "access-explains-errors").lend_prior is None
    exc = Finding("DUMP.PYTHON_EXCEPTION", "PermissionError: [Errno 13] Permission denied: '/srv/keys/sign.pem'",
                  Severity.HIGH, "vm/signer.stderr",
                  (EvidenceRef.line("vm/signer.stderr", 7, "PermissionError: [Errno 13] Permission denied: "
                                                           "'/srv/keys/sign.pem'"),),
                  count=3, first_seen=None, last_seen=None, analyzer="dumps.text",
                  data={"exception_type": "PermissionError"})
    exits = death("signer exited with status 1 (3x): signer.service: Main process exited, code=exited, "
                  "status=1/FAILURE", at(0), artifact="vm/journal.txt", count=3, last=at(4),
                  process=["signer"], reason="exit-status", status=1)
    refused = log("5x request <*> failed: [Errno <*>] Connection refused", 30,
                  "ERROR request /sign/1 failed: [Errno 111] Connection refused", at(1), artifact="app/billing.log",
                  count=5, last=at(9))
    d = diagnose([exits, exc, refused])
    assert d.top.finding == 1, [(c.title, c.confidence) for c in d.causes]
    assert 0 in d.top.explained


def test_a_relation_may_refuse_to_lend_its_effects_prior():
    doc = {"signal": [{"id": "a", "codes": ["X"], "prior": 0.2, "title": ["a"]},
                      {"id": "b", "codes": ["Y"], "prior": 0.9, "title": ["b"], "acute": True}],
           "relation": [{"id": "r", "cause": ["a"], "effect": ["b"], "join": ["process"], "rationale": "r",
                         "lend_prior": False}]}
    assert parse_library(doc).relations[0].lend_prior is False
    doc["relation"][0]["lend_prior"] = "yes"
    with pytest.raises(FormatError, match="lend_prior"):
        parse_library(doc)


def test_lock_and_pid_files_still_held_are_lock_waits():
    sig = load_library().signal("lock_wait")
    hits = ["lock file /var/run/nightly.lock exists (held by pid 4411); aborting",
            "pid file /run/exporter.pid already exists, refusing to start",
            "another instance of syncd is already running",
            "cannot start: the queue is locked by process 9120"]
    misses = ["lock file /var/run/nightly.lock removed", "created pid file /run/exporter.pid",
              "instance 3 is running", "process 9120 exited"]
    for text in hits:
        assert sig.matches("LOG.ERROR_TEMPLATE", text.lower(), {}), text
    for text in misses:
        assert not sig.matches("LOG.ERROR_TEMPLATE", text.lower(), {}), text


def test_the_parsed_library_is_cached_between_runs_and_a_bad_cache_is_ignored(tmp_path, monkeypatch):
    from backline.knowledge.diagnosis import library as L
    monkeypatch.setenv("BACKLINE_CACHE_DIR", str(tmp_path))
    try:
        L.load_library.cache_clear()
        first = L.load_library()
        files = list(tmp_path.glob("relations-*.json"))
        assert len(files) == 1
        L.load_library.cache_clear()
        again = L.load_library()                 # from the cache
        assert [s.id for s in again.signals] == [s.id for s in first.signals]
        assert [r.id for r in again.relations] == [r.id for r in first.relations]
        for a, b in zip(first.signals, again.signals):
            if a.text is not None:
                assert a.text.hints == b.text.hints and a.text.pattern == b.text.pattern
        probe = "lock file /run/x.lock exists (held by pid 12)"
        assert [s.id for s in again.signals if s.matches("LOG.ERROR_TEMPLATE", probe, {})] == \
            [s.id for s in first.signals if s.matches("LOG.ERROR_TEMPLATE", probe, {})] != []
        files[0].write_text('{"format": 1, "doc": {"signal": "not a list"}, "hints": {}}')
        L.load_library.cache_clear()
        assert [s.id for s in L.load_library().signals] == [s.id for s in first.signals]   # parsed again
        files[0].write_text("not json")
        L.load_library.cache_clear()
        assert len(L.load_library().signals) == len(first.signals)
    finally:
        L.load_library.cache_clear()


# --- held-out set 4 classes (after its unseen score): words that only look like TLS; the template's
# --- own finding stands for its burst; a thread dump taken once callers were already timing out ----

def test_unknown_category_is_not_an_unknown_ca():
    sig = load_library().signal("tls_failure_log")
    assert sig.matches("LOG.ERROR_TEMPLATE", "ssl alert: unknown ca (48)", {})
    assert sig.matches("LOG.ERROR_TEMPLATE", "tls handshake failed: unknown certificate authority", {})
    assert not sig.matches("LOG.BURST", 'burst of 48x msg="unknown category <*> requested" component=tree', {})


def test_a_templates_own_finding_stands_for_its_burst():
    """The burst of a template and the template are one happening; the template's finding (every
    occurrence counted) is the one a cause rests on, whichever comes first in the list."""
    text = "upstream spool-broker (10.9.0.12:41672) failed: [Errno 111] Connect call failed"
    burst = log("burst of 86x " + text, 40, text, at(0), code="LOG.BURST", count=86, last=at(20))
    tpl = log("86x " + text, 40, text, at(0), count=86, last=at(20))
    d = diagnose([burst, net("NET.HTTP.5XX", "HTTP 503 for /orders on 10.9.0.10:80 (43 response(s))", 90, at(1),
                             {"server": "10.9.0.10:80"}), tpl])
    cause = next(c for c in d.causes if c.finding in (0, 2))
    assert cause.finding == 2 and cause.code == "LOG.ERROR_TEMPLATE"


def test_a_thread_dump_taken_after_the_callers_began_to_time_out_explains_them():
    """A deadlock is seen when the dump is taken: seconds or minutes after its callers' time-outs
    began.  It still explains them, and outranks the slow answers it explains."""
    dump = Finding("DUMP.DEADLOCK", "deadlock between xfer-worker-1 and xfer-worker-3", Severity.CRITICAL,
                   "host/ledger-threads-2173.txt",
                   (EvidenceRef.line("host/ledger-threads-2173.txt", 3, "Found one Java-level deadlock:"),),
                   first_seen=at(11), last_seen=at(11), analyzer="dumps.text",
                   data={"problem_class": "DEADLOCK", "signature": "deadlock | xfer-worker-1 | xfer-worker-3"})
    slow = net("NET.HTTP.SLOW", "Slow HTTP responses from 10.9.0.41:41441: p95 3.003 s", 50, at(0),
               {"server": "10.9.0.41:41441"}, severity=Severity.MEDIUM)
    timeouts = log("29x upstream ledger (<*>:<*>) timed out after <*>.0s on <*>", 12,
                   "ERROR upstream ledger (10.9.0.41:41441) timed out after 3.0s on /pay/1", at(0.1),
                   artifact="api/payments.log", count=29, last=at(25))
    d = diagnose([slow, dump, timeouts])
    assert d.top.finding == 1, [(c.title, c.confidence) for c in d.causes]
    assert 0 in d.top.explained


def test_a_names_servfail_answers_and_unanswered_queries_are_one_happening_told_by_the_answer():
    unanswered = net("NET.DNS.UNANSWERED", "DNS query for ledger-db.pay.example never answered (4 query(ies))", 10,
                     at(0), {"name": "ledger-db.pay.example"}, severity=Severity.MEDIUM)
    servfail = net("NET.DNS.SERVFAIL", "DNS ServFail for ledger-db.pay.example (4 response(s))", 14, at(0.5),
                   {"name": "ledger-db.pay.example", "rcode": "ServFail"})
    other = net("NET.DNS.SERVFAIL", "DNS ServFail for mx.pay.example (1 response(s))", 90, at(0.6),
                {"name": "mx.pay.example", "rcode": "ServFail"}, severity=Severity.MEDIUM)
    client = log("26x cannot reach ledger ledger-db.pay.example:<*>, batch <*> left in outbox", 30,
                 "ERROR cannot reach ledger ledger-db.pay.example:5432, batch 7 left in outbox", at(1),
                 artifact="app/settle.log", count=26, last=at(20))
    d = diagnose([unanswered, servfail, other, client])
    assert d.top.finding == 1 and d.top.code == "NET.DNS.SERVFAIL", [(c.title, c.confidence) for c in d.causes]
    assert not any(c.finding == 0 for c in d.causes)            # one happening: the answer stands for it
    assert any(c.finding == 2 for c in d.causes) or 2 not in d.top.explained


def test_a_client_naming_the_program_it_failed_to_reach_does_not_explain_that_programs_death():
    """login-api's "upstream session-store (...) failed: Connect call failed" names session-store as
    what it called: session-store's OutOfMemoryError and its exits are the cause, the refusals the
    effect - not the other way round through the shared name, even though the first refusal (the
    planned restart before the crash loop) comes first."""
    oom = Finding("DUMP.JAVA_EXCEPTION", "java.lang.OutOfMemoryError: Java heap space", Severity.HIGH,
                  "host/supervisor.log",
                  (EvidenceRef.line("host/supervisor.log", 20, "Exception in thread main "
                                                               "java.lang.OutOfMemoryError: Java heap space"),),
                  count=3, first_seen=at(0), last_seen=at(8), analyzer="dumps.text",
                  data={"exception_type": "java.lang.OutOfMemoryError", "process": "session-store"})
    exits = death("session-store exited with status 1 (3x): session-store pid 5863 exited with code 1", at(0.2),
                  artifact="host/supervisor.log", line=21, count=3, last=at(8.2), process=["session-store"],
                  pid="5863", reason="exit-status", status=1)
    refused = log("177x upstream session-store (<*>:<*>) failed on <*>: [Errno <*>] Connect call failed", 40,
                  'ERROR upstream session-store (10.9.0.120:41120) failed on /login/u2a: [Errno 111] '
                  "Connect call failed ('10.9.0.120', 41120)", at(-5), artifact="edge/login-api.log", count=177,
                  last=at(30), data={"svc": "login-api"})
    d = diagnose([refused, oom, exits])
    assert d.top.finding == 1, [(c.title, c.confidence) for c in d.causes]
    assert not any(link.cause == 0 and link.effect in (1, 2) and any(k == "process" for k, _v in link.joined_on)
                   for c in d.causes for link in c.chain)
    assert next(c for c in d.causes if c.finding == 0).confidence < 0.5


def test_an_undated_core_written_in_the_incident_is_placed_there_a_text_trace_is_not():
    """A kernel core says nothing of when; its file was written as the process died.  Written inside
    the incident window, it is dated by that write and explains the resets that follow; a text
    trace (written to until collection) keeps no such date."""
    core = Artifact("b!/core.quoted.5207", ArtifactKind.ELF_CORE, 1, "",
                    meta={"mtime": at(0).isoformat()})
    crash = Finding("DUMP.CRASH", "quoted crashed: SIGFPE / FPE_INTDIV in quoted!spread_per_lot", Severity.CRITICAL,
                    core.path, (EvidenceRef.frame(core.path, 0),),
                    analyzer="dumps.elfcore", data={"process": "quoted", "problem_class": "DIVIDE_BY_ZERO"})
    resets = log("3x quote stream <*>:<*> lost: [Errno <*>] Connection reset by peer", 20,
                 "ERROR quote stream 10.9.0.80:31800 lost: [Errno 104] Connection reset by peer", at(0.3),
                 artifact="ui/pricing-ui.log", count=3, last=at(0.4))
    later = log("5x request <*> failed: HTTP <*>", 30, "ERROR request /q/1 failed: HTTP 502", at(2),
                artifact="ui/pricing-ui.log", count=5, last=at(30))
    events = [Event(at(0.3), "ui/pricing-ui.log", "log.error", "quote stream lost", Severity.HIGH),
              Event(at(30), "ui/pricing-ui.log", "log.error", "request failed", Severity.HIGH)]
    d = diagnose([resets, crash, later], events, artifacts=[core])
    top = d.top
    assert top.finding == 1, [(c.title, c.confidence, c.reasons) for c in d.causes]
    assert any("dated by when its file was written" in r for r in top.reasons) and 0 in top.explained
    trace = Artifact("b!/quoted.stderr", ArtifactKind.CRASH_TRACE, 1, "", meta={"mtime": at(0).isoformat()})
    crash_txt = Finding("DUMP.CRASH", crash.title, Severity.CRITICAL, trace.path,
                        (EvidenceRef.line(trace.path, 1, "Floating point exception"),), analyzer="dumps.text",
                        data={"process": "quoted", "problem_class": "DIVIDE_BY_ZERO"})
    d2 = diagnose([resets, crash_txt, later], events, artifacts=[trace])
    assert not any("dated by when its file was written" in r for c in d2.causes for r in c.reasons)


def test_a_restart_into_a_crash_loop_explains_the_refusals_that_began_at_the_planned_stop():
    """notifyd is stopped for a restart with a new setting; its port refuses from then on; the new
    process dies at every start (the first death logged 3 s after the refusals began).  The deaths,
    tied to the port by the client naming notifyd beside it, explain the refusals."""
    deaths_ = death("notifyd exited with status 1 (3x): notifyd pid 7080 exited with code 1", at(3),
                    artifact="host/supervisor.log", line=21, count=3, last=at(8), process=["notifyd"], pid="7080",
                    reason="exit-status", status=1)
    rst = net("NET.TCP.RST_TO_SYN", "Connection refused by 10.9.0.80:41880 (92 attempt(s))", 40, at(0),
              {"server": "10.9.0.80:41880", "connections": 92})
    client = log("92x upstream notifyd (<*>:<*>) failed on <*>: [Errno <*>] Connect call failed", 12,
                 "ERROR upstream notifyd (10.9.0.80:41880) failed on /notify/1: [Errno 111] Connect call failed",
                 at(0.1), artifact="edge/alerts-api.log", count=92, last=at(40))
    d = diagnose([rst, client, deaths_])
    assert d.top.finding == 2, [(c.title, c.confidence) for c in d.causes]
    assert 0 in d.top.explained


def test_the_core_of_a_crash_loop_and_the_loops_deaths_are_one_happening_led_by_the_crash():
    # a supervisor reports each death of a crash loop; the bundle holds the core of the first one (the
    # same pid) - the crash, not its death line, is the cause, and the refusals of the restarts follow it
    core = "cores.tar.gz!/core.shipd.17230"
    findings = [
        death("shipd killed by signal 11 (4x): <err> shipd (pid 17230) terminated by signal 11 (SIGSEGV) "
              "(core dumped); restarting in 2 s", at(0), count=4, last=at(7), process=["shipd"], pid="17230",
              signal="11"),
        Finding("DUMP.CRASH", "shipd crashed: SIGSEGV / SEGV_MAPERR at 0x8 in filter_geo.so!ls_filter",
                Severity.CRITICAL, core, (EvidenceRef.frame(core, 0, 0, "filter_geo.so!ls_filter"),),
                data={"signal": "SIGSEGV", "problem_class": "NULL_POINTER_READ", "signature": "ls_filter"}),
        net("NET.TCP.RST_TO_SYN", "Connection refused by 10.4.0.7:5140 (41 attempt(s))", 40, at(1),
            {"server": "10.4.0.7:5140", "connections": 41}),
        log("12x shipping to shipd 10.4.0.7:5140 failed: [Errno 111] Connection refused", 30,
            "shipping to shipd 10.4.0.7:5140 failed: [Errno 111] Connection refused", at(1), artifact="edge.log",
            count=12),
    ]
    facts = [Fact("dump.process", "shipd", core), Fact("dump.pid", 17230, core)]
    d = diagnose(findings, facts=facts)
    assert d.top.code == "DUMP.CRASH" and d.top.finding == 1
    assert all(c.finding != 0 for c in d.causes)          # the death line is the crash itself, not a rival
    assert 2 in d.top.explained
    # near miss: a death by another signal (the OOM killer's KILL) is not this core's: two happenings
    killed = death("shipd killed by signal 9 (1x): shipd (pid 17555) terminated by signal 9 (SIGKILL)", at(0),
                   process=["shipd"], pid="17555", signal="9")
    d2 = diagnose([killed] + findings[1:], facts=facts)
    assert any(c.finding == 0 for c in d2.causes)


def test_the_kernels_oom_kill_and_the_supervisors_kill_of_that_program_are_one_happening():
    # the journal's "status=9/KILL" of the unit comes right after the kernel's OOM kill of its pid: one
    # happening, led by the kernel's line (it says why); the refusals of the restart follow it
    kern = "host!/var/log/kern.log"
    findings = [
        death("reportd killed by signal 9 (2x): reportd.service: Main process exited, code=killed, status=9/KILL",
              at(0.2), artifact="host!/journal.txt", count=2, last=at(40), process=["reportd"], signal="9"),
        log("reportd killed by the kernel's OOM killer (2x): Out of memory: Killed process 5120 (reportd)", 80,
            "kernel: Out of memory: Killed process 5120 (reportd) total-vm:812340kB", at(0), artifact=kern,
            code="LOG.PROCESS_EXIT", count=2, last=at(39.8),
            data={"reason": "oom-kill", "process": ["reportd"], "pid": "5120"}),
        net("NET.TCP.RST_TO_SYN", "Connection refused by 10.4.0.9:7070 (12 attempt(s))", 40, at(0.6),
            {"server": "10.4.0.9:7070", "connections": 12}),
        log("12x report 7 failed: reportd 10.4.0.9:7070: [Errno 111] Connection refused", 30,
            "report 7 failed: reportd 10.4.0.9:7070: [Errno 111] Connection refused", at(0.6), artifact="web.log",
            count=12),
    ]
    d = diagnose(findings)
    assert d.top.finding == 1 and d.top.signal == "out_of_memory"
    assert all(c.finding != 0 for c in d.causes)
    # near miss: the same program ending by a SIGSEGV a moment later is another happening than the kill
    crashed = death("reportd killed by signal 11 (1x): reportd.service: Main process exited, code=killed, "
                    "status=11/SEGV", at(0.2), artifact="host!/journal.txt", process=["reportd"], signal="11")
    d2 = diagnose([crashed] + findings[1:])
    assert any(c.finding == 0 for c in d2.causes) or any(0 in c.explained for c in d2.causes)


def test_errors_written_a_moment_before_each_death_are_its_last_words():
    # a container's log is named by its id: nothing names the program, but its error comes a moment
    # before each of the runtime's four exits of that program - the error is why it died
    exits = death("accountsd exited with status 3 (4x): task-exit accountsd exitCode 3", at(0.07),
                  artifact="events.jsonl", count=4, last=at(9.3), process=["accountsd"], status=3)
    exits = Finding(exits.code, exits.title, exits.severity, exits.artifact, exits.evidence, count=4,
                    first_seen=at(0.07), last_seen=at(9.3), data={"reason": "exit-status", "process": ["accountsd"]})
    migration = log("4x ERROR migration <*> failed: duplicate column name: mfa_secret", 40,
                    "ERROR migration 0042_add_mfa_columns failed: duplicate column name: mfa_secret", at(0),
                    artifact="containers/3f9c1d27/3f9c1d27-json.log", count=4, last=at(9.2))
    refused = net("NET.TCP.RST_TO_SYN", "Connection refused by 10.4.0.16:8080 (29 attempt(s))", 40, at(0.2),
                  {"server": "10.4.0.16:8080", "connections": 29})
    d = diagnose([exits, migration, refused])
    assert d.top.finding == 1, [(c.finding, c.title) for c in d.causes]
    link = next(x for x in d.top.chain if x.effect == 0)
    assert link.relation == "last-words-end-program" and link.joined_on[0][0] == "lockstep"
    # near miss: the same error, but not as often as the program died (3 of 4): no lockstep, no tie
    fewer = Finding(migration.code, migration.title, migration.severity, migration.artifact, migration.evidence,
                    count=3, first_seen=at(0), last_seen=at(9.2), analyzer="logs.text", data={})
    d2 = diagnose([exits, fewer, refused])
    assert d2.top.finding != 1


def test_the_core_of_a_crash_loops_last_death_explains_the_refusals_that_began_at_the_first():
    # the core file is the last crash's (written 20 s after the first crash's refusals began): tied by
    # the program the client names with the endpoint, it still explains them - by name, never by time
    path = "dumps.tar.gz!/dumps/core.anticheatd"
    crash = Finding("DUMP.CRASH", "anticheatd crashed: SIGSEGV / SEGV_MAPERR at 0x0 in libac_aimbot.so!snap_score",
                    Severity.CRITICAL, path, (EvidenceRef.frame(path, 0, 0, "libac_aimbot.so!snap_score"),),
                    data={"signal": "SIGSEGV", "problem_class": "NULL_POINTER_READ"})
    core = Artifact(path, ArtifactKind.ELF_CORE, 1, "", meta={"mtime": at(20).isoformat()})
    refused = net("NET.TCP.RST_TO_SYN", "Connection refused by 10.9.0.60:7777 (36 attempt(s))", 40, at(0.2),
                  {"server": "10.9.0.60:7777", "connections": 36})
    client = log("36x anticheat report for <*> lost: [Errno <*>] Connection refused (anticheatd <*>:<*>)", 30,
                 "anticheat report for p7 lost: [Errno 111] Connection refused (anticheatd 10.9.0.60:7777)", at(0.2),
                 artifact="gameserver.log", count=36, last=at(25))
    facts = [Fact("dump.process", "anticheatd", path)]
    d = diagnose([refused, crash, client], _window_events(), facts=facts, artifacts=[core])
    assert d.top.finding == 1, [(c.finding, c.title) for c in d.causes]
    assert 0 in d.top.explained
    # near miss: the core of a program nothing names beside the endpoint explains nothing there
    other = Finding("DUMP.CRASH", "logrot crashed: SIGABRT in logrot!main", Severity.CRITICAL, "dumps!/core.logrot",
                    (EvidenceRef.frame("dumps!/core.logrot", 0, 0, "logrot!main"),), data={"signal": "SIGABRT"})
    other_core = Artifact("dumps!/core.logrot", ArtifactKind.ELF_CORE, 1, "", meta={"mtime": at(20).isoformat()})
    d2 = diagnose([refused, other, client], _window_events(), facts=[Fact("dump.process", "logrot", "dumps!/core.logrot")],
                  artifacts=[other_core])
    assert all(0 not in c.explained for c in d2.causes if c.finding == 1)


def test_refusals_the_capture_saw_end_in_an_accepted_connection_are_a_start_not_the_cause():
    # two refused SYNs while a printer service was starting, then it took connections: its zero-window
    # stall seconds later is the cause of the sender's time-outs, not the start-up refusals
    refused = net("NET.TCP.RST_TO_SYN", "Connection refused by 10.1.0.120:9100 (2 attempt(s))", 1, at(0),
                  {"server": "10.1.0.120:9100", "connections": 2, "accepted_after_s": 0.05})
    stall = net("NET.TCP.ZERO_WINDOW_STALL", "10.1.0.120 advertised a zero window for 7.9 s (receiver not reading)",
                40, at(1.4), {"receiver": "10.1.0.120", "duration_s": 7.9, "reopened": True})
    sender = log("1x job 77 to printer 10.1.0.120:9100: send timed out after 5 s; job requeued", 30,
                 "job 77 to printer 10.1.0.120:9100: send timed out after 5 s; job requeued", at(6.4),
                 artifact="printbridge.log")
    d = diagnose([refused, stall, sender])
    assert d.top.finding == 1, [(c.finding, c.title, c.confidence) for c in d.causes]
    ref = next(c for c in d.causes if c.finding == 0)
    assert any("took connections again" in r for r in ref.reasons)
    # near miss: without the accepted connection the refusals are not called transient
    still = net("NET.TCP.RST_TO_SYN", "Connection refused by 10.1.0.120:9100 (2 attempt(s))", 1, at(0),
                {"server": "10.1.0.120:9100", "connections": 2})
    d2 = diagnose([still, stall, sender])
    assert not any("took connections again" in r for c in d2.causes for r in c.reasons)
