"""Header formats: the loghub headers (checked against the ground truth Content) and others."""

from __future__ import annotations

import csv

import pytest

from backline.analyzers.logs.formats import detect_format
from backline.analyzers.logs.reader import open_log

SYSTEMS = ["Android", "Apache", "BGL", "HDFS", "Hadoop", "Linux", "OpenSSH", "Spark"]


@pytest.mark.parametrize("system", SYSTEMS)
def test_loghub_message_equals_ground_truth_content(corpus, system):
    base = corpus / "logs" / "loghub-2k" / system
    lines = [ln.text for ln in open_log(base / f"{system}_2k.log")]
    with open(base / f"{system}_2k.log_structured_corrected.csv", encoding="utf-8", newline="") as fh:
        truth = [r["Content"] for r in csv.DictReader(fh)]
    fmt = detect_format(lines[:400])
    got = [(h.message if (h := fmt.split(s)) else s) for s in lines]
    bad = [i for i, (g, t) in enumerate(zip(got, truth)) if " ".join(g.split()) != " ".join(t.split())]
    assert len(got) == len(truth) and bad == []


@pytest.mark.parametrize("line,name,fields", [
    ("2016-09-28 04:30:30, Info                  CBS    Loaded Servicing Stack v6.1.7601.23505",
     "iso-comma-level", {"level": "Info", "component": "CBS", "message": "Loaded Servicing Stack v6.1.7601.23505"}),
    ("2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - "
     "Notification time out: 3200", "log4j-dash", {"level": "INFO", "message": "Notification time out: 3200"}),
    ("20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579", "compact-pipe",
     {"component": "Step_LSC", "pid": "30002312", "message": "onStandStepChanged 3579"}),
    ("[10.30 16:49:06] chrome.exe - proxy.cse.cuhk.edu.hk:5070 open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS",
     "bracket-program", {"component": "chrome.exe",
                         "message": "proxy.cse.cuhk.edu.hk:5070 open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS"}),
    ("- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: session closed for user root",
     "labelled-syslog", {"component": "crond(pam_unix)", "pid": "2915", "message": "session closed for user root"}),
    ("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8",
     "rfc5424", {"host": "mymachine.example.com", "component": "su",
                 "message": "'su root' failed for lonvick on /dev/pts/8"}),
    ("Jul  1 09:00:55 calvisitor-10-105-160-95 kernel[0]: IOThunderboltSwitch<0>(0x0)::listenerCallback - x",
     "syslog", {"host": "calvisitor-10-105-160-95", "component": "kernel", "pid": "0",
                "message": "IOThunderboltSwitch<0>(0x0)::listenerCallback - x"}),
    ("nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server "
     "[req-38101a0b-2096 113d3a99 54fadb41 - - -] 10.11.10.1 \"GET /v2/servers/detail HTTP/1.1\" status: 200",
     "iso-pid-level-request", {"level": "INFO", "component": "nova.osapi_compute.wsgi.server",
              "message": "10.11.10.1 \"GET /v2/servers/detail HTTP/1.1\" status: 200"}),
    ('127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326', "access-log",
     {"host": "127.0.0.1", "message": '"GET /apache_pb.gif HTTP/1.0" 200 2326'}),
])
def test_library_formats(line, name, fields):
    fmt = detect_format([line] * 5)
    assert fmt.name == name
    h = fmt.split(line)
    assert h is not None and h.ts_text
    for k, v in fields.items():
        assert getattr(h, k) == v, k


def test_generic_fallback_finds_timestamp_and_level():
    words = ["thing", "disk", "the cache", "worker pool", "queue"]
    lines = [f"host{i} 2024-03-01T10:00:0{i} [ERROR] {words[i]} {i} broke" for i in range(5)]
    fmt = detect_format(lines)
    assert fmt.name.startswith("generic-")
    h = fmt.split(lines[2])
    assert (h.ts_text, h.level, h.message) == ("2024-03-01T10:00:02", "ERROR", "the cache 2 broke")


def test_plain_text_without_timestamps():
    fmt = detect_format(["hello world", "WARNING: disk low", "bye"])
    assert fmt.name == "plain"
    h = fmt.split("WARNING: disk low")
    assert (h.level, h.message) == ("WARNING", "disk low")


def test_generic_learns_numeric_columns_after_timestamp():
    msgs = ["Component State Change: Component alt{} is unavailable", "Link error on node {}",
            "boot (command {}) Error: Unable to start", "ClusterFileSystem: There is no server {}",
            "inconsistent nodesets node-{} 0x1fffffffe <ok> node-0 0x1fffffffe <ok>"]
    lines = [f"{134681 + i} node-{i} unix.hw state_change.unavailable {1077804742 + i} 1 "
             + msgs[i % len(msgs)].format(i) for i in range(10)]
    fmt = detect_format(lines)
    h = fmt.split(lines[0])
    assert h.ts_text == "1077804742"
    assert h.message == "Component State Change: Component alt0 is unavailable"


def test_generic_keeps_numbers_that_belong_to_the_message():
    lines = [f"2024-03-01T10:00:0{i} {i} workers started" if i % 2 else f"2024-03-01T10:00:0{i} idle"
             for i in range(8)]
    fmt = detect_format(lines)
    assert fmt.split(lines[1]).message == "1 workers started"


def test_journald_json_export():
    lines = ['{"__REALTIME_TIMESTAMP":"1700000000123456","PRIORITY":"3","_HOSTNAME":"web1",'
             '"SYSLOG_IDENTIFIER":"nginx","_PID":"812","MESSAGE":"upstream timed out (110)"}'] * 3
    fmt = detect_format(lines)
    h = fmt.split(lines[0])
    assert (h.level, h.component, h.pid, h.host, h.message) == ("err", "nginx", "812", "web1",
                                                                "upstream timed out (110)")
    from backline.analyzers.logs.timestamps import TsParser
    ts, _ = TsParser().parse(h.ts_kind, h.ts_text)
    assert ts.isoformat() == "2023-11-14T22:13:20.123456+00:00"


def test_json_lines_app_log():
    line = '{"time":"2024-05-01T10:00:00.5Z","level":"warn","logger":"db","msg":"slow query","ms":812}'
    h = detect_format([line] * 3).split(line)
    assert (h.ts_kind, h.level, h.component, h.message) == ("iso", "warn", "db", "slow query")


@pytest.mark.parametrize("line, ts, level, msg", [
    ('{"t":"2026-12-07 18:36:20,579","lvl":"INFO","svc":"authorizer","msg":"auth ok"}',
     "2026-12-07 18:36:20,579", "INFO", "auth ok"),                                 # a hand-rolled logger's "t"
    ('{"@t":"2026-12-07T18:36:20.5790000Z","@mt":"Order {Id} placed","@l":"Warning","Id":7}',
     "2026-12-07T18:36:20.5790000Z", "Warning", "Order {Id} placed"),              # Serilog's compact JSON
])
def test_json_lines_time_keys_of_other_loggers(line, ts, level, msg):
    h = detect_format([line] * 3).split(line)
    assert (h.ts_text, h.level, h.message) == (ts, level, msg) and h.ts_kind


def test_python_http_server_access_log():
    line = '127.0.0.1 - - [27/Nov/2026 10:13:44] "GET /api/stock/SKU-1001 HTTP/1.1" 200 -'
    fmt = detect_format([line] * 3)
    h = fmt.split(line)
    assert fmt.name == "access-log" and h.message == '"GET /api/stock/SKU-1001 HTTP/1.1" 200 -'
    from backline.analyzers.logs.timestamps import TsParser
    assert TsParser().parse(h.ts_kind, h.ts_text)[0].isoformat() == "2026-11-27T10:13:44+00:00"


def test_access_log_status_is_level():
    ok = '10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 200 2326'
    bad = '10.0.0.1 - - [10/Oct/2000:13:55:37 -0700] "POST /b HTTP/1.0" 503 12'
    fmt = detect_format([ok, bad, ok])
    assert fmt.split(ok).level == "info" and fmt.split(bad).level == "error"


MSGS = ["Worker {} started", "Loaded {} entries from /var/x", "Cache hit ratio is {} percent",
        "Connection closed by peer after {} requests", "Shutting down gracefully"]


def test_two_time_stamp_shapes_in_one_file_and_untimed_lines():
    lines = []
    for i in range(40):
        if i % 3:
            lines.append(f"2025-12-06 05:46:{i:02d},472 INFO pool: " + MSGS[i % 5].format(i))
        else:
            lines.append(f"17650000{i:02d}.123 WARNING " + MSGS[i % 5].format(i))
        if i % 7 == 0:
            lines.append(f"progress {i} of 100")
    fmt = detect_format(lines)
    assert len(fmt.alternates) == 1
    a = fmt.split("2025-12-06 05:46:01,472 INFO pool: Worker 3 started")
    b = fmt.split("1765000003.123 WARNING Worker 3 started")
    assert (a.message, a.level, a.component) == ("Worker 3 started", "INFO", "pool")
    assert (b.message, b.level, b.ts_kind, b.ts_text) == ("Worker 3 started", "WARNING", "epoch", "1765000003.123")
    assert fmt.split("progress 7 of 100") is None


def test_padded_header_columns_of_different_widths():
    levels = ["INFO", "WARNING", "ERROR", "DEBUG"]
    comps = ["CBS", "CSI", "DPX", "SQM"]
    lines = [f"2016-09-28 04:30:{i:02d}, {levels[i % 4]:<22}{comps[i % 3]:<7}" + MSGS[i % 5].format(i)
             for i in range(30)]
    h = detect_format(lines).split(lines[4])
    assert (h.level, h.component, h.message) == ("INFO", "CSI", "Shutting down gracefully")


def test_header_columns_without_a_time_stamp():
    lines = [f"{['INFO', 'WARN', 'ERROR'][i % 3]} [worker-{i % 4}] svc.mod{i % 3}: " + MSGS[i % 5].format(i)
             for i in range(30)]
    fmt = detect_format(lines)
    assert fmt.name == "columns"
    h = fmt.split(lines[2])
    assert (h.level, h.thread, h.component, h.message) == ("ERROR", "worker-2", "svc.mod2",
                                                          "Cache hit ratio is 2 percent")


def test_a_level_word_in_every_message_stays_in_the_message():
    lines = [f"2025-01-01 00:00:{i:02d},000 ERROR [m] x - fatal" for i in range(6)]
    assert detect_format(lines).split(lines[0]).message == "fatal"
