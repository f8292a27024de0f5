"""One large log read in byte ranges by several processes gives the single-pass report:
the same templates, counts, findings, events, facts, evidence lines and records table."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from backline.analyzers.base import AnalysisContext
from backline.analyzers.logs.formats import detect_format
from backline.analyzers.logs.ranges import count_newlines, plan_ranges
from backline.analyzers.logs.store import query
from backline.analyzers.logs.text_analyzer import analyze_text_log
from backline.model import Event, Fact, Finding

BASE = datetime(2026, 5, 4, 3, 2, 1, tzinfo=timezone.utc)


def make_log(path: Path, n: int = 6000, seed: int = 7) -> None:
    rng = random.Random(seed)
    t = BASE
    out = []
    for i in range(n):
        t += timedelta(milliseconds=rng.randint(5, 900))
        if i == n // 3:
            t += timedelta(minutes=47)                       # a silence
        if n // 2 <= i < n // 2 + 300:
            t -= timedelta(milliseconds=rng.randint(5, 880))  # a burst (and time going back)
        st = t.strftime("%Y-%m-%d %H:%M:%S,") + f"{t.microsecond // 1000:03d}"
        th = f"pool-{rng.randint(1, 4)}"
        k = rng.random()
        if n // 2 <= i < n // 2 + 300:
            out.append(f"{st} WARN [{th}] net.Client: retry {i} for peer 10.1.{i % 9}.{i % 200}")
        elif k < 0.02:
            out.append(f"{st} ERROR [{th}] app.Worker: job {i} failed")
            out.append(f"java.lang.IllegalStateException: state {rng.choice(['A', 'B'])} not allowed")
            out.append(f"\tat app.Worker.run(Worker.java:{rng.randint(10, 20)})")
            out.append("\tat java.lang.Thread.run(Thread.java:748)")
        elif k < 0.03:                                       # a trace logged one record per line
            out.append(f"{st} ERROR [trace-1] app.Handler: java.io.IOException: pipe {i} closed")
            for f in range(rng.randint(2, 40)):
                out.append(f"{st} ERROR [trace-1] app.Handler: \tat app.Handler.send{f}(Handler.java:{40 + f})")
        elif k < 0.04:
            out.append(f"{st} WARN [{th}] net.Client: retry {i} for peer 10.1.{i % 9}.{i % 200}")
        elif k < 0.042:                                     # deaths told at INFO level
            who = rng.choice(["invoicer", "tilerd"])
            out.append(f"{st} INFO [sup] proc.Supervisor: exited: {who} (exit status {rng.randint(1, 3)}; "
                       "not expected)")
        elif k < 0.5:
            out.append(f"{st} INFO [{th}] app.Store: wrote {rng.randint(1, 9999)} rows to table t{i % 3}")
        elif k < 0.8:
            out.append(f"{st} DEBUG [{th}] app.Cache: hit ratio {rng.random():.3f} size {rng.randint(1, 99)} MB")
        elif k < 0.8005:
            out.append(f"{st} INFO [{th}] app.Rare: a seldom message {i}")
        else:
            out.append(f"{st} INFO [{th}] user {rng.choice(['ann', 'bob', 'cy', 'dee'])} logged in from "
                       f"host-{rng.randint(1, 40)}")
    if n > 1000:
        # a long trace logged one record per line in the middle of the file: the cut at
        # half the file falls inside it
        half, acc, mid = sum(len(x) + 1 for x in out) // 2, 0, 0
        while acc < half:
            acc += len(out[mid]) + 1
            mid += 1
        st = out[mid][:23]
        out[mid:mid] = [f"{st} ERROR [trace-2] app.Batch: java.lang.OutOfMemoryError: heap"] + [
            f"{st} ERROR [trace-2] app.Batch: \tat app.Batch.step{f}(Batch.java:{f + 1})" for f in range(400)]
    if n > 10:
        late = t + timedelta(seconds=1)
        out.append(late.strftime("%Y-%m-%d %H:%M:%S,000") + " ERROR [main] app.Main: fatal: shutting down")
    path.write_text("\n".join(out) + "\n")


def _outputs(path: Path, work: Path, **opts):
    work.mkdir()
    ctx = AnalysisContext(work_dir=work, max_events=150, options={"logs.text": opts} if opts else {})
    out = list(analyze_text_log(path, "big.log", ctx))
    return out, ctx.warnings


def _comparable(outputs):
    rows = []
    for o in outputs:
        if isinstance(o, Fact) and o.name == "log.parquet":
            continue
        rows.append(o)
    return rows


def test_byte_ranges_give_the_single_pass_report(tmp_path):
    log = tmp_path / "big.log"
    make_log(log)
    one, w1 = _outputs(log, tmp_path / "one")
    many, w2 = _outputs(log, tmp_path / "many", jobs=2, ranges=8, split_min_bytes=0)
    # some cut falls inside a trace logged one record per line (its range completes it)
    data = log.read_bytes()
    fmt = detect_format(data[:40000].decode().splitlines()[:400])
    cuts = [r.start for r in plan_ranges(log, fmt, 8)[1:]]
    inside = [c for c in cuts if b"[trace-2] app.Batch: \tat" in data[c:data.index(b"\n", c)]
              and b"[trace-2] app.Batch:" in data[data.rindex(b"\n", 0, c - 1):c]]
    assert len(inside) == 1
    assert inside, "the input should put a cut inside a per-line trace"

    assert not any("one pass" in w for w in w2), w2
    assert w1 == w2
    a, b = _comparable(one), _comparable(many)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x == y, (x, y)
    # the findings cite lines across the whole file, the counts are the file's
    kinds = {f.code for f in one if isinstance(f, Finding)}
    assert {"LOG.ERROR_TEMPLATE", "LOG.SILENCE", "LOG.BURST", "DUMP.JAVA_EXCEPTION", "LOG.PROCESS_EXIT"} <= kinds, kinds
    assert sum(isinstance(o, Event) for o in one) >= 150
    joined = [f for f in one if isinstance(f, Fact) and f.name == "log.stack_trace" and f.value.get("joined")]
    assert joined
    oom = [f for f in joined if "OutOfMemoryError" in f.value["text"]]
    assert len(oom) == 1 and oom[0].value["text"].count("\n") == 400, "the trace across the cut is whole"
    # the records tables hold the same rows with the same templates
    sql = "SELECT line, end_line, ts, level, template_id, template, message FROM records ORDER BY line"
    q1 = query([tmp_path / "one" / "records.parquet"], sql)
    q2 = query([tmp_path / "many" / "records.parquet"], sql)
    assert q1 == q2 and len(q1[1]) > 5000
    assert not list((tmp_path / "many").glob("records.part*"))


def test_cuts_fall_on_record_starts(tmp_path):
    log = tmp_path / "big.log"
    make_log(log, n=3000)
    data = log.read_bytes()
    fmt = detect_format(data[:40000].decode().splitlines()[:400])
    ranges = plan_ranges(log, fmt, 7)
    assert len(ranges) == 7 and ranges[0].start == 0 and ranges[-1].end == len(data)
    for a, b in zip(ranges, ranges[1:]):
        assert a.end == b.start and data[b.start - 1:b.start] == b"\n"
        line = data[b.start:data.index(b"\n", b.start)].decode()
        assert fmt.regex.match(line) and not line[0].isspace()     # never inside a stack trace
    assert sum(count_newlines(log, r.start, r.end) for r in ranges) == data.count(b"\n")


def test_a_layout_change_inside_a_range_reads_the_file_in_one_pass(tmp_path):
    log = tmp_path / "mixed.log"
    make_log(log, n=2000)
    lines = log.read_text().splitlines()
    # the second half in another layout: a range cannot know it from the first half
    other = [ln[:23].replace("-", "/").replace(",", ".") + " svc: " + ln.split(" ", 3)[-1]
             if i > 1500 and ln[:4].isdigit() else ln for i, ln in enumerate(lines)]
    log.write_text("\n".join(other) + "\n")
    one, _ = _outputs(log, tmp_path / "one")
    many, warns = _outputs(log, tmp_path / "many", jobs=2, ranges=4, split_min_bytes=0)
    assert any("read in one pass, not in byte ranges: another header format" in w for w in warns), warns
    assert _comparable(one) == _comparable(many)


class _LostWorker:
    """An executor whose range tasks fail (a worker lost)."""

    def map(self, fn, *iterables):
        raise OSError("worker lost")


def test_a_failed_range_task_reads_the_file_in_one_pass(tmp_path):
    log = tmp_path / "big.log"
    make_log(log, n=1500)
    one, _ = _outputs(log, tmp_path / "one")
    again, warns = _outputs(log, tmp_path / "again", executor=_LostWorker(), ranges=3, split_min_bytes=0)
    assert any("a range failed (OSError: worker lost)" in w for w in warns), warns
    assert _comparable(one) == _comparable(again)
    assert not list((tmp_path / "again").glob("records.part*"))


def test_crlf_bom_long_and_binary_lines_across_ranges(tmp_path):
    log = tmp_path / "odd.log"
    make_log(log, n=3000, seed=11)
    lines = log.read_bytes().split(b"\n")
    for i in (400, 1500, 2600):                       # over-long lines (cut at 64 KiB, counted)
        lines[i] = lines[i] + b" " + b"x" * 70_000
    lines[900] = b"\x00\x01\x02\x03 binary junk \x04\x05"  # a binary line (skipped, counted)
    lines[1200] = lines[1200] + " caf\xe9".encode("latin-1")    # not UTF-8 (read as Latin-1)
    log.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines))
    one, w1 = _outputs(log, tmp_path / "one")
    many, w2 = _outputs(log, tmp_path / "many", jobs=2, ranges=6, split_min_bytes=0)
    assert not any("one pass" in w for w in w2), w2
    assert w1 == w2 and any("longer than" in w for w in w1) and any("binary" in w for w in w1)
    assert _comparable(one) == _comparable(many)
    facts = {f.name: f.value for f in one if isinstance(f, Fact)}
    assert facts["log.long_lines"] == 3 and facts["log.binary_lines"] == 1


def test_free_text_past_the_miner_caps_reads_the_file_in_one_pass(tmp_path, monkeypatch):
    from backline.analyzers.logs import miner

    monkeypatch.setattr(miner, "SHAPE_MAX", 60)         # forked range processes inherit it
    rng = random.Random(5)
    words = [f"{a}{b}" for a in ("red", "blue", "old", "new", "big") for b in ("cat", "map", "sun", "oak", "fig")]
    lines = []
    t = BASE
    for i in range(2400):
        t += timedelta(seconds=1)
        text = " ".join(rng.choice(words) for _ in range(4))
        lines.append(t.strftime("%Y-%m-%d %H:%M:%S,000") + f" INFO [main] app.Chat: {text}")
    log = tmp_path / "chat.log"
    log.write_text("\n".join(lines) + "\n")
    one, _ = _outputs(log, tmp_path / "one")
    many, warns = _outputs(log, tmp_path / "many", jobs=2, ranges=3, split_min_bytes=0)
    assert any("read in one pass" in w and "cap" in w for w in warns), warns
    assert _comparable(one) == _comparable(many)
