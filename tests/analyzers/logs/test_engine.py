"""The compiled per-line path (``_engine.LineEngine``) against the plain definitions:
the reader's lines, the format's split and the miner's templates, line by line."""

from __future__ import annotations

import csv
import io

from backline.analyzers.logs._engine import Pattern, write_rows
from backline.analyzers.logs.formats import FORMATS, detect_format
from backline.analyzers.logs.mine_file import mine_file
from backline.analyzers.logs.miner import TemplateMiner, template_id
from backline.analyzers.logs.reader import open_log


def _messy(path):
    lines = []
    for i in range(3000):
        lines.append(f"2024-05-01 10:{i // 60 % 60:02d}:{i % 60:02d},{i % 1000:03d} "
                     f"{['INFO', 'WARN', 'ERROR'][i % 3]} [t{i % 4}] app.Mod{i % 5}: "
                     + ["user u{} logged in", "took {} ms", "cache {} miss", "jk2_init() slot {}"][i % 4].format(i))
    raw = "\n".join(lines).encode()
    raw = raw.replace(b"took 9 ms\n", b"took 9 ms\r\n")                    # a CRLF line
    raw = raw.replace(b"cache 10 miss\n", b"cache 10 miss\n\x00\x00\x00")   # NUL run at a line start
    raw = raw.replace(b"took 13 ms\n", b"took 13 ms\n\x01\x02\x03\x04\x05\x06garbage\n")   # a binary line
    raw = raw.replace(b"user u24 logged", b"user \xe9l\xe8ve logged")       # Latin-1 in UTF-8
    raw = raw.replace(b"took 17 ms\n", b"took 17 ms\n" + b"x" * 70000 + b"\n")             # an over-long line
    raw += b"\n   continuation line\n\nlast line without header"
    path.write_bytes(raw)


def test_per_line_templates_equal_the_plain_definition(tmp_path):
    p = tmp_path / "messy.log"
    _messy(p)
    src = open_log(p)
    numbered = list(src.numbered())
    fmt = detect_format([t for _, t in numbered[:400]])
    miner = TemplateMiner()
    msgs = [(n, (h.message if (h := fmt.split(t)) else t)) for n, t in numbered]
    for _, m in msgs:
        miner.add(m)
    want = [(n, template_id(miner.template(m)), miner.template(m)) for n, m in msgs]

    r = mine_file(p, keep_lines=True)
    r.shapes.seek(0)
    frags = []
    for t in r.shape_templates:
        buf = io.StringIO()
        csv.writer(buf).writerow(["", template_id(t), t])
        frags.append(buf.getvalue().encode())
    out = write_rows(r.shapes.read(), frags, 1).decode()
    got = [(int(a), b, c) for a, b, c in csv.reader(io.StringIO(out))]
    assert got == want
    assert r.lines == src.stats.lines
    assert sorted(r.warnings) == sorted(src.stats.warnings)
    assert any("binary line" in w for w in r.warnings) and any("Latin-1" in w for w in r.warnings)
    assert any("longer than" in w for w in r.warnings) and any("NUL" in w for w in r.warnings)
    assert sum(row[0] for row in r.rows.values()) == len(want)


def test_a_second_format_later_in_the_file_is_learned(tmp_path):
    a = [f"2024-05-01 10:00:{i % 60:02d},000 INFO [main] a.B: request {i} served" for i in range(3000)]
    b = [f"Dec  7 11:{i // 60 % 60:02d}:{i % 60:02d} host app[{100 + i}]: session {i} opened" for i in range(3000)]
    p = tmp_path / "joined.log"
    p.write_text("\n".join(a + b) + "\n")
    r = mine_file(p)
    assert sorted(r.rows) == ["request <*> served", "session <*> opened"]


def test_compiled_patterns_split_like_python_re():
    lines = {
        "syslog": "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0",
        "log4j": "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.A: Created MRAppMaster",
        "logcat": "03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogs",
        "bracket-ctime-level": "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok",
        "label-epoch-node": "- 1117838570 2005.06.03 R02-M1-N0 2005-06-03-15.42.50.675872 R02-M1-N0 RAS KERNEL "
                            "INFO instruction cache parity error corrected",
    }
    by_name = {f.name: f for f in FORMATS}
    for name, line in lines.items():
        rx = by_name[name].regex
        m = rx.match(line)
        spans = Pattern(by_name[name].pattern.encode()).groups(line.encode())
        assert spans == [m.span(i) for i in range(len(spans))], name
        assert len(spans) == rx.groups + 1 or all(m.span(i) == (-1, -1) for i in range(len(spans), rx.groups + 1))
