"""Every time stamp shape in a whole file, with lines written here: the header is found
without a library format for the layout, every stamp is read to the right instant, and no
part of a stamp reaches a template (the same three templates whatever the shape)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from backline.analyzers.logs.loghub import parse_file
from backline.analyzers.logs.reader import open_log
from backline.analyzers.logs.records import read_records

UTC = timezone.utc
BASE = datetime(2026, 3, 4, 5, 6, 7, 250000, UTC)
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
DAYS = "Mon Tue Wed Thu Fri Sat Sun".split()
TEMPLATES = {"connection from <*> closed after <*> ms", "queue depth <*> over limit <*>",
             "worker started with pid <*>"}


def _msg(i: int) -> str:
    k = i % 3
    if k == 0:
        return f"connection from 10.0.{i % 7}.{i % 250} closed after {i * 13 % 997} ms"
    if k == 1:
        return f"queue depth {i * 7} over limit {100 + i % 5}"
    return f"worker started with pid {3000 + i}"


def _h12(t: datetime) -> tuple[int, str]:
    return (t.hour % 12 or 12), ("AM" if t.hour < 12 else "PM")


#: name -> (stamp writer, precision kept by the shape: seconds of the instants compared)
SHAPES = {
    "iso padded": (lambda t: t.strftime("%Y-%m-%d %H:%M:%S,") + f"{t.microsecond // 1000:03d}", 0.001),
    "iso unpadded": (lambda t: f"{t.year}-{t.month}-{t.day} {t.hour}:{t.minute}:{t.second}", 1),
    "compact unpadded": (lambda t: f"{t:%Y%m%d}-{t.hour}:{t.minute}:{t.second}:{t.microsecond // 1000}",
                         0.001),
    "year slash": (lambda t: t.strftime("%Y/%m/%d %H:%M:%S"), 1),
    "month.day bracketed": (lambda t: f"[{t.month}.{t.day:02d} {t:%H:%M:%S}]", 1),
    "day.month bracketed": (lambda t: f"[{t.day:02d}.{t.month:02d} {t:%H:%M:%S}]", 1),
    "day.month.year": (lambda t: t.strftime("%d.%m.%Y %H:%M:%S"), 1),
    "month/day/year am-pm": (lambda t: f"{t:%m/%d/%Y} {_h12(t)[0]:02d}:{t:%M:%S} {_h12(t)[1]}", 1),
    "day/month/year": (lambda t: t.strftime("%d/%m/%Y %H:%M:%S"), 1),
    "ctime": (lambda t: f"{DAYS[t.weekday()]} {MONTHS[t.month - 1]} {t.day:2d} {t:%H:%M:%S} {t.year}", 1),
    "rfc2822": (lambda t: f"{DAYS[t.weekday()]}, {t.day:02d} {MONTHS[t.month - 1]} {t.year} {t:%H:%M:%S} +0000",
                1),
    "common log": (lambda t: f"[{t.day:02d}/{MONTHS[t.month - 1]}/{t.year}:{t:%H:%M:%S} +0000]", 1),
    "day-mon-year": (lambda t: f"{t.day:02d}-{MONTHS[t.month - 1]}-{t.year} {t:%H:%M:%S}", 1),
    "mon day, year am-pm": (lambda t: f"{MONTHS[t.month - 1]} {t.day:02d}, {t.year} {_h12(t)[0]}:{t:%M:%S} "
                                      f"{_h12(t)[1]}", 1),
    "yymmdd": (lambda t: t.strftime("%y%m%d %H%M%S"), 1),
    "epoch seconds": (lambda t: f"{t.timestamp():.3f}", 0.001),
    "epoch milliseconds": (lambda t: str(int(t.timestamp() * 1000)), 0.001),
    "epoch microseconds": (lambda t: str(int(round(t.timestamp() * 1e6))), 1e-6),
}


def _write(path, stamp, n=90, untimed_every=0, second=None):
    out = []
    for i in range(n):
        t = BASE + timedelta(seconds=3607 * i + i % 11, milliseconds=17 * i)
        w = second if (second is not None and i % 4 == 3) else stamp
        out.append(f"{w(t)} {'WARN' if i % 5 == 0 else 'INFO'} [w-{i % 4}] svc.Pool: {_msg(i)}")
        if untimed_every and i % untimed_every == untimed_every - 1:
            out.append(f"    detail {i}: see above")
    path.write_text("\n".join(out) + "\n")
    # the files' dates are the instants of their stamps (shapes without a year infer it)
    os.utime(path, (BASE.timestamp() + 86400 * 5, BASE.timestamp() + 86400 * 5))
    return [BASE + timedelta(seconds=3607 * i + i % 11, milliseconds=17 * i) for i in range(n)]


@pytest.mark.parametrize("name", list(SHAPES))
def test_each_stamp_shape_is_header_and_read_exactly(name, tmp_path):
    stamp, prec = SHAPES[name]
    path = tmp_path / "a.log"
    instants = _write(path, stamp)
    recs = list(read_records(open_log(path)))
    assert len(recs) == len(instants)
    for r, t in zip(recs, instants):
        assert r.ts is not None, (name, r.text)
        assert abs((r.ts - t).total_seconds()) < prec, (name, r.text, r.ts, t)
        assert r.level in ("INFO", "WARN") and r.message == _msg(r.line - 1)
    assert set(parse_file(path)) == TEMPLATES, name


def test_two_shapes_in_one_file_and_untimed_lines_between(tmp_path):
    path = tmp_path / "mixed.log"
    first, _ = SHAPES["iso padded"]
    second, _ = SHAPES["epoch milliseconds"]
    instants = _write(path, first, n=120, untimed_every=10, second=second)
    recs = list(read_records(open_log(path)))
    assert len(recs) == 120                          # the untimed lines continue a record
    assert all(r.ts is not None and abs((r.ts - t).total_seconds()) < 0.001 for r, t in zip(recs, instants))
    # untimed lines that are records of their own: their templates hold no stamp either
    tpls = set(parse_file(path))
    assert TEMPLATES <= tpls
    assert not any(c.isdigit() for t in tpls for c in t), tpls


def test_no_time_shape_header_by_column_statistics(tmp_path):
    path = tmp_path / "nots.log"
    lines = [f"{'ERROR' if i % 7 == 0 else 'INFO'} {4000 + i % 3} [pool-{i % 5}] svc.Pool: {_msg(i)}"
             for i in range(80)]
    path.write_text("\n".join(lines) + "\n")
    recs = list(read_records(open_log(path)))
    assert [r.message for r in recs] == [_msg(i) for i in range(80)]
    assert {r.level for r in recs} == {"ERROR", "INFO"} and recs[1].thread == "pool-1"
    assert set(parse_file(path)) == TEMPLATES


def test_a_stamp_never_reaches_the_template_when_the_layout_changes_midway(tmp_path):
    path = tmp_path / "restart.log"
    a, _ = SHAPES["day.month.year"]
    b, _ = SHAPES["compact unpadded"]
    lines = []
    for i in range(200):
        t = BASE + timedelta(seconds=61 * i)
        w = a if i < 100 else b
        lines.append(f"{w(t)} INFO [w-{i % 4}] svc.Pool: {_msg(i)}")
    path.write_text("\n".join(lines) + "\n")
    assert set(parse_file(path)) == TEMPLATES
