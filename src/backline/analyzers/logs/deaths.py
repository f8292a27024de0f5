"""Process deaths told by a log, whatever the line's level: ``LOG.PROCESS_EXIT``.

A process that ends abnormally is often told only by a line at INFO level or without
any: the kernel's OOM killer (``Memory cgroup out of memory: Killed process 4242
(renderd)``), a supervisor (``exited: billing (exit status 1; not expected)``,
``child worker[311] terminated by signal 9``), an init system (``app.service: Main
process exited, code=killed, status=6/ABRT``), a C library's last words (``*** stack
smashing detected ***: terminated``), a shell (``Segmentation fault (core dumped)``).
These lines are the wording kernels, init systems, supervisors and C libraries use in
general; one program's own message is never matched here.  Clean ends are not deaths:
exit status 0, an exit the supervisor calls expected, a stop by SIGTERM/SIGINT/SIGHUP
(or the shell's 130/143 for them).

:func:`death` reads one line; :func:`process_exits` turns a log's templates into
findings (one per template, the first abnormal example as its evidence).

>>> death("Dec  7 14:52:23 tiles01 kernel: Memory cgroup out of memory: Killed process 15632 (tilerd) total-vm:70784kB")
{'reason': 'oom-kill', 'process': ['tilerd'], 'pid': '15632'}
>>> death("2026-12-07 14:53:25,291 INFO exited: invoicer (exit status 1; not expected)")
{'reason': 'exit-status', 'process': ['invoicer'], 'status': 1}
>>> death("2026-12-07 14:53:25,291 INFO exited: report-export (exit status 0; expected)") is None
True
>>> death("unitd[21362]: geoindexd.service: Main process exited, code=killed, status=6/ABRT")
{'reason': 'signal', 'process': ['geoindexd'], 'signal': 'ABRT'}
>>> death("procmgr[88]: down: tilerd[15632] terminated by signal 9")
{'reason': 'signal', 'process': ['tilerd'], 'pid': '15632', 'signal': '9'}
>>> death("procmgr[88]: down: tilerd[15632] terminated by signal 15") is None      # a requested stop
True
>>> death("geoindexd[21364]: *** stack smashing detected ***: terminated")
{'reason': 'crash-message', 'process': ['geoindexd'], 'pid': '21364'}
>>> death("worker exited normally") is None
True
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from backline.analyzers.logs.stats import TemplateStats
from backline.model import EvidenceRef, Finding, Severity

MAX_EXITS = 10

_OOM = re.compile(r"\b(?:Out of memory|Memory cgroup out of memory|oom[-_ ]kill\w*)\b[^\n]{0,40}?\bKill(?:ed)? process (\d+)"
                  r"|\bKilled process (\d+) \(|\bOOMKilled\b|\boom-kill:[^\n]*\btask=", re.I)
_SIGNAL = re.compile(
    r"\b(?:killed|terminated|exited|stopped|died|aborted|ended)\s+(?:by|on|with|due\s+to|from)\s+"
    r"(?:signal\s+(?P<num>\d+)(?:\s*\((?:SIG)?(?P<name1>[A-Z]{2,6})\))?|(?:signal\s+)?\bSIG(?!NAL\b)(?P<name2>[A-Z]{2,6}))\b"
    r"|\bcode=(?:killed|dumped),\s*status=(?P<snum>\d+)/(?:SIG)?(?P<sname>[A-Z]{2,6})\b", re.I)
_STATUS = re.compile(
    r"\bcode=exited,\s*status=(?P<a>-?\d+)"
    r"|\bexit(?:ed)?\s+(?:with\s+)?(?:exit\s+)?(?:code|status)[\s=:]*\(?(?P<b>-?\d+)"
    r"|\bexited\s+with\s+(?P<c>-?\d+)\b"
    r"|\breturned\s+(?:exit\s+)?(?:code|status)\s+(?P<d>-?\d+)", re.I)
_CRASH = re.compile(r"\*\*\*[^*\n]{3,80}\*\*\*:?\s*terminated|\bsegfault at\b|\bgeneral protection fault\b"
                    r"|\btrap (?:invalid opcode|divide error)\b|\b(?:Segmentation fault|Aborted|Bus error|"
                    r"Illegal instruction|Floating point exception)\s+\(core dumped\)", re.I)
_GAVE_UP = re.compile(r"\bentered FATAL state\b|\b(?:start request repeated too quickly)\b|"
                      r"\b(?:process|child|worker|program|daemon)\b[^\n]{0,60}\b(?:died|crashed|exited unexpectedly|"
                      r"exited prematurely|terminated abnormally|exited abnormally|terminated unexpectedly)\b", re.I)
#: a stop someone asked for: SIGTERM, SIGINT, SIGHUP (the shell's 128+N for them)
_REQUESTED_SIGNALS = {"TERM", "INT", "HUP", "15", "2", "1"}
_REQUESTED_STATUS = {0, 130, 143, 129}
_EXPECTED = re.compile(r";\s*expected\)|\bDeactivated successfully\b|\bexited normally\b", re.I)

_KILLED_NAME = re.compile(r"\bKill(?:ed)? process \d+ \(([^)\s]{1,40})\)|\btask=([\w.-]{1,40}),", re.I)
_UNIT = re.compile(r"(?<![\w.-])([A-Za-z_][\w@.-]{0,60}?)(?:@[\w.-]*)?\.service\b")
_SUPERVISED = re.compile(r"\b(?:exited|gave up|stopped|terminated|died|crashed|killed|backoff|fatal):\s*'?([A-Za-z_][\w.-]{1,40})'?"
                         r"(?=\s|\(|$)", re.I)
_NAME_PID = re.compile(r"(?<![\w/.-])([A-Za-z_][\w.-]{1,40})\s*\((?:pid\s*)?(\d{1,10})\)", re.I)
_PROG_PID = re.compile(r"(?<![\w/.-])([A-Za-z_][\w.-]{1,40})\[(\d{1,10})\]")
_PID = re.compile(r"\b(?:pid|process)\s*[:=#]?\s*(\d{2,10})\b", re.I)
#: a cheap test on a template's constant words before the patterns above
_HINT = re.compile(r"kill|exit|signal|status|terminat|\*\*\*|segfault|fault|trap|core dumped|fatal state|died|"
                   r"crash|abnormal|prematurely|unexpectedly|repeated too quickly", re.I)
_NOT_NAME = {"process", "child", "worker", "program", "service", "daemon", "main", "the", "with", "signal", "pid",
             "kernel", "exit", "status", "code"}


def _requested(sig: str | None) -> bool:
    return bool(sig) and sig.upper().removeprefix("SIG") in _REQUESTED_SIGNALS


def death(line: str) -> dict[str, Any] | None:
    """What ``line`` says about a process ending abnormally (reason, process names, pid,
    signal or exit status), or None (no death, or a clean or requested end)."""
    if _EXPECTED.search(line):
        return None
    out: dict[str, Any] | None = None
    where = 0
    m = _OOM.search(line)
    if m:
        out, where = {"reason": "oom-kill"}, m.start()
        pid = m.group(1) or m.group(2)
        if pid:
            out["pid"] = pid
    if out is None:
        m = _SIGNAL.search(line)
        if m:
            sig = m.group("name1") or m.group("name2") or m.group("sname") or m.group("num") or m.group("snum")
            num = m.group("num") or m.group("snum")
            if _requested(sig) or _requested(num):
                return None
            out, where = {"reason": "signal", "signal": sig.upper().removeprefix("SIG") if sig else num}, m.start()
    if out is None:
        m = _STATUS.search(line)
        if m:
            status = int(next(g for g in m.groups() if g is not None))
            if status in _REQUESTED_STATUS:
                return None
            out, where = {"reason": "exit-status", "status": status}, m.start()
    if out is None:
        m = _CRASH.search(line)
        if m:
            out, where = {"reason": "crash-message"}, m.start()
    if out is None:
        m = _GAVE_UP.search(line)
        if m:
            out, where = {"reason": "gave-up"}, m.start()
    if out is None:
        return None
    names: list[str] = []
    pid = out.pop("pid", None)
    for rx in (_KILLED_NAME, _UNIT, _SUPERVISED):
        for n in rx.findall(line):
            n = n if isinstance(n, str) else next((x for x in n if x), "")
            if n.lower() not in _NOT_NAME and n not in names:
                names.append(n)
    for rx in (_NAME_PID, _PROG_PID):
        # the program named right before the death words (a line's own prefix names its writer)
        cands = [x for x in rx.finditer(line) if x.start() < where + 1 and x.group(1).lower() not in _NOT_NAME]
        if cands and not names:
            names.append(cands[-1].group(1))
            pid = pid or cands[-1].group(2)
    if pid is None:
        p = _PID.search(line) or re.search(r"\bpid=(\d+)", line)
        if p:
            pid = p.group(1)
    res: dict[str, Any] = {"reason": out["reason"]}
    if names:
        res["process"] = names[:3]
    if pid:
        res["pid"] = pid
    res.update({k: v for k, v in out.items() if k != "reason"})
    return res


def process_exits(artifact: str, tpls: list[TemplateStats], analyzer: str) -> Iterator[Finding]:
    """``LOG.PROCESS_EXIT`` findings: templates whose lines say a process ended abnormally (at
    most :data:`MAX_EXITS`, the earliest first)."""
    found = []
    for t in tpls:
        if not _HINT.search(t.template):
            continue
        for ln, text in t.examples:
            d = death(text)
            if d is not None:
                found.append((t.first_line, t, ln, text, d))
                break
    found.sort(key=lambda x: x[0])
    for first_line, t, ln, text, d in found[:MAX_EXITS]:
        who = ", ".join(d.get("process", ())) or "a process"
        how = {"oom-kill": "killed by the kernel's OOM killer", "signal": f"killed by signal {d.get('signal')}",
               "exit-status": f"exited with status {d.get('status')}", "crash-message": "crashed",
               "gave-up": "ended and was given up"}[d["reason"]]
        yield Finding(
            code="LOG.PROCESS_EXIT", title=f"{who} {how} ({t.count}x): {t.template[:160]}",
            severity=Severity.HIGH, artifact=artifact,
            evidence=(EvidenceRef.line(artifact, ln, text[:500]),)
            + tuple(EvidenceRef.line(artifact, x, y[:500]) for x, y in t.examples if x != ln),
            detail=f"{t.count} line(s) of this template; first at line {t.first_line}",
            count=t.count, first_seen=t.first_ts, last_seen=t.last_ts, analyzer=analyzer,
            data={"template_id": t.template_id, "template": t.template, "level": t.level, **d})
