"""Two header layouts not in the corpus: an ISO stamp whose zone follows after one space
(with three-letter bracketed levels), and logfmt ``key=value`` records.  Lines written here."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from backline.analyzers.logs.formats import detect_format
from backline.analyzers.logs.mine_file import mine_file
from backline.analyzers.logs.reader import open_log
from backline.analyzers.logs.records import read_records
from backline.analyzers.logs.timestamps import find_timestamp
from backline.model import Severity, TsQuality

UTC = timezone.utc
BASE = datetime(2026, 3, 14, 8, 30, 0, 250000, tzinfo=UTC)
MESSAGES = ["Request {} finished in {} ms", "Cache miss for key user:{} ({} tries)",
            "Sync of batch {} failed: timeout after {} s"]
# (offset text, offset)
ZONES = [("+01:00", timedelta(hours=1)), ("-05:00", timedelta(hours=-5)), ("+0530", timedelta(hours=5, minutes=30)),
         ("-0330", timedelta(hours=-3, minutes=-30)), ("Z", timedelta(0)), ("+00:00", timedelta(0))]
LEVELS = [("INF", Severity.INFO), ("WRN", Severity.MEDIUM), ("ERR", Severity.HIGH), ("DBG", Severity.INFO),
          ("VRB", Severity.INFO), ("FTL", Severity.CRITICAL)]


def _spaced_zone_log(tmp_path, zone: str, off: timedelta, n: int = 60):
    lines, want = [], []
    for i in range(n):
        t = BASE + timedelta(seconds=17 * i)
        wall = t + off
        lvl, sev = LEVELS[i % len(LEVELS)]
        msg = MESSAGES[i % 3].format(i, 100 + 7 * i)
        lines.append(f"{wall:%Y-%m-%d %H:%M:%S}.{wall.microsecond // 1000:03d} {zone} [{lvl}] {msg}")
        want.append((t, lvl, sev, msg))
    p = tmp_path / "zone.log"
    p.write_text("\n".join(lines) + "\n")
    return p, lines, want


def _no_stamp_in(template: str, zone: str) -> None:
    assert not re.search(r"\d{4}-\d\d-\d\d|\d\d:\d\d", template), template
    assert zone not in template.split(), template
    assert not re.search(r"\[(?:INF|WRN|ERR|DBG|VRB|FTL)\]", template), template


def test_a_zone_after_one_space_is_part_of_the_stamp():
    for zone, _ in ZONES:
        line = f"2026-03-14 08:30:00.250 {zone} [INF] Started"
        assert find_timestamp(line) == ("iso", 0, 23 + 1 + len(zone)), zone
    # not a zone: a number, or an hour out of range, after the stamp stays in the message
    assert find_timestamp("2026-03-14 08:30:00 -12 done") == ("iso", 0, 19)
    assert find_timestamp("2026-03-14 08:30:00 +25:00 done") == ("iso", 0, 19)
    assert find_timestamp("2026-03-14 08:30:00 Zone b up") == ("iso", 0, 19)


def test_spaced_zone_records_instant_level_and_message(tmp_path):
    for zone, off in ZONES:
        p, lines, want = _spaced_zone_log(tmp_path, zone, off)
        recs = list(read_records(open_log(p)))
        assert [r.ts for r in recs] == [w[0] for w in want], zone
        assert all(r.ts_quality == TsQuality.EXACT for r in recs)
        assert [r.level for r in recs] == [w[1] for w in want], zone
        assert [r.severity for r in recs] == [w[2] for w in want], zone
        assert [r.message for r in recs] == [w[3] for w in want], zone
        # the Python split of the same format agrees with the compiled engine
        fmt = detect_format(lines)
        for line, r in zip(lines, recs):
            h = fmt.split(line)
            assert (h.level, h.message) == (r.level, r.message)


def test_spaced_zone_templates_hold_no_stamp(tmp_path):
    for zone, off in ZONES:
        p, _, want = _spaced_zone_log(tmp_path, zone, off)
        mined = mine_file(p)
        assert len(mined.rows) == 3, (zone, list(mined.rows))
        for t, (count, first, last, level, _ex) in mined.rows.items():
            _no_stamp_in(t, zone)
            assert level in {lv for lv, _ in LEVELS}
            mine = [w[0] for w in want if re.fullmatch(re.escape(t).replace("<\\*>", ".+"), w[3])]
            assert (count, first, last) == (len(mine), min(mine), max(mine)), (zone, t)


def _logfmt_lines(n: int = 60):
    """logfmt records in several key orders, time keys and stamp shapes; the wanted instant,
    level and message of each."""
    lines, want = [], []
    for i in range(n):
        t = BASE + timedelta(seconds=13 * i, milliseconds=i)
        lvl = ["info", "warn", "error", "debug", "INFO", "WARN"][i % 6]
        body = [f'msg="request finished" req={i} dur={300 + i}ms',
                f'msg="cache miss" key=user:{i} path="/a b/{i}"',
                f'msg="pool exhausted" size={i % 9} waiting={i}'][i % 3]
        k = i % 5
        if k == 0:
            stamp = "time=" + t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            line = f"{stamp} level={lvl} {body}"
        elif k == 1:      # RFC 3339 with an offset, quoted, after the level
            stamp = 'time="' + (t + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f") + '+02:00"'
            line = f"level={lvl} {stamp} {body}"
        elif k == 2:      # epoch seconds with a fraction, level key last
            stamp = f"ts={t.timestamp():.3f}"
            line = f"{stamp} {body} lvl={lvl}"
        elif k == 3:      # stamp in the middle, severity key
            stamp = "t=" + (t - timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "-04:00"
            head, rest = re.fullmatch(r'(msg="[^"]*") (.*)', body).groups()
            line = f"severity={lvl} {head} {stamp} {rest}"
        else:             # epoch milliseconds under "timestamp"
            stamp = f"timestamp={int(t.timestamp() * 1000)}"
            line = f"{body} {stamp} level={lvl}"
        lines.append(line)
        want.append((t.replace(microsecond=t.microsecond // 1000 * 1000), lvl, body))
    return lines, want


def test_logfmt_records_instant_level_and_message(tmp_path):
    lines, want = _logfmt_lines()
    assert detect_format(lines).name == "logfmt"
    p = tmp_path / "app.log"
    p.write_text("\n".join(lines) + "\n")
    recs = list(read_records(open_log(p)))
    assert len(recs) == len(want)
    for r, (t, lvl, body) in zip(recs, want):
        assert r.ts == t, r.text
        assert r.ts_quality == TsQuality.EXACT
        assert r.level == lvl
        assert r.message == body, r.text
    sev = {"info": Severity.INFO, "debug": Severity.INFO, "warn": Severity.MEDIUM, "error": Severity.HIGH}
    assert [r.severity for r in recs] == [sev[w[1].lower()] for w in want]


def test_logfmt_templates_hold_no_stamp(tmp_path):
    lines, want = _logfmt_lines()
    p = tmp_path / "app.log"
    p.write_text("\n".join(lines) + "\n")
    mined = mine_file(p)
    assert len(mined.rows) == 3, list(mined.rows)
    for t, (count, first, last, _level, _ex) in mined.rows.items():
        assert not re.search(r"\b(?:time|ts|t|timestamp|level|lvl|severity)=", t), t
        assert not re.search(r"\d{4}-\d\d-\d\d|\d\d:\d\d:\d\d", t), t
        mine = [w[0] for w in want if w[2].split('"')[1] in t]
        assert (count, first, last) == (len(mine), min(mine), max(mine)), t


def test_logfmt_time_key_that_is_not_a_stamp_stays_in_the_message(tmp_path):
    lines = [f'time=2026-03-14T08:30:{i:02d}Z level=info msg="took" t=soon n={i}' for i in range(20)]
    p = tmp_path / "app.log"
    p.write_text("\n".join(lines) + "\n")
    recs = list(read_records(open_log(p)))
    assert recs[3].ts == datetime(2026, 3, 14, 8, 30, 3, tzinfo=UTC)
    assert recs[3].message == 'msg="took" t=soon n=3'


def test_lines_that_are_not_only_pairs_are_not_logfmt():
    lines = [f"2026-03-14 08:30:{i:02d} INFO worker: done level=3 time=5ms" for i in range(20)]
    assert detect_format(lines).name != "logfmt"
    lines = [f"user={i} action=login" for i in range(20)]      # no time or level key
    assert detect_format(lines).name != "logfmt"
