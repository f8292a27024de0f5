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
findings (:class:`Deaths`, record by record, grouped by what died and how).

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
{'reason': 'crash-message', 'process': ['geoindexd'], 'pid': '21364', 'said': '*** stack smashing detected ***: terminated'}
>>> death("worker exited normally") is None
True
>>> death("The process renderd.exe (pid 4242) exited with exit code 0xc0000005")["status"] == 0xC0000005
True
>>> death("/opt/app/run.sh: line 12:  4242 Killed                  /opt/app/bin/renderd --serve")
{'reason': 'crash-message', 'said': 'line N: N Killed'}
>>> death("2026-12-07T17:25:37Z svrun: relayd exited with status 78, restarting in 1 s")
{'reason': 'exit-status', 'process': ['relayd'], 'status': 78}
>>> death("2026-12-07T18:15:00Z supervise[21966]: relayd exited with status 1")   # the writer tells another's end
{'reason': 'exit-status', 'process': ['relayd'], 'status': 1}
>>> death("2026-12-07 17:25:37,493 ERROR relayd exiting with status 78")
{'reason': 'exit-status', 'process': ['relayd'], 'status': 78}
>>> death("worker exited with code 3")
{'reason': 'exit-status', 'status': 3}
>>> death('{"msg": "task exit", "container": "quotes", "pid": 26356, "exitCode": 2}')
{'reason': 'exit-status', 'process': ['quotes'], 'pid': '26356', 'status': 2}
>>> death("[watch 2026-12-07 17:51:32] quotefeed rc=134, restart in 4s")     # a wrapper's return code (128+6: SIGABRT)
{'reason': 'exit-status', 'process': ['quotefeed'], 'status': 134}
>>> death("[watch] quotefeed rc=0, restart in 4s"), death("flow src=10.0.0.1 dst=10.0.0.2 proc=3")
(None, None)
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from backline.model import Event, EvidenceRef, Finding, Severity

MAX_EXITS = 10

_OOM = re.compile(r"\b(?:Out of memory|Memory cgroup out of memory|oom[-_ ]kill\w*)\b[^\n]{0,40}?\bKill(?:ed)? process (\d+)"
                  r"|\bKilled process (\d+) \(|\bOOMKilled\b(?!\"?\s*[:=]\s*(?:false|0)\b)|\boom-kill:[^\n]*\btask=", re.I)
_SIGNAL = re.compile(
    r"\b(?:killed|terminated|exited|stopped|died|aborted|ended)(?:\s+(?:by|on|with|due\s+to|from)\s+|:\s*)"
    r"(?:signal\s+(?P<num>\d+)(?:\s*\((?:SIG)?(?P<name1>[A-Z]{2,6})\))?|(?:signal\s+)?\bSIG(?!NAL\b)(?P<name2>[A-Z]{2,6}))\b"
    r"|\bcode=(?:killed|dumped),\s*status=(?P<snum>\d+)/(?:SIG)?(?P<sname>[A-Z]{2,6})\b", re.I)
_STATUS = re.compile(
    r"\bcode=exited,\s*status=(?P<a>-?(?:0x[0-9a-f]+|\d+))"
    r"|\bexit(?:ed|ing)?\s+(?:with\s+)?(?:exit\s+)?(?:code|status)[\s=:]*\(?(?P<b>-?(?:0x[0-9a-f]+|\d+))"
    r"|\bexited\s+with\s+(?P<c>-?(?:0x[0-9a-f]+|\d+))\b"
    r"|\breturned\s+(?:exit\s+)?(?:code|status)\s+(?P<d>-?(?:0x[0-9a-f]+|\d+))"
    r"|\bexit_?(?:code|status)[\"']?\s*[=:]\s*[\"']?(?P<e>-?(?:0x[0-9a-f]+|\d+))"      # JSON and key=value events
    r"|\brc\s*[=:]\s*(?P<f>\d+)\b", re.I)      # a wrapper's return code (a library's negative rc=-3 is none)
_CRASH = re.compile(r"\*\*\*[^*\n]{3,80}\*\*\*:?\s*terminated|\bsegfault at\b|\bgeneral protection fault\b"
                    r"|\btrap (?:invalid opcode|divide error)\b|\b(?:Segmentation fault|Aborted|Bus error|"
                    r"Illegal instruction|Floating point exception)\s+\(core dumped\)"
                    # a shell's job status: "run.sh: line 12:  4242 Killed   ./app --serve"
                    r"|\bline \d+:\s+\d+\s+(?:Killed|Segmentation fault|Aborted|Bus error|Illegal instruction|"
                    r"Floating point exception)(?=\s)", re.I)
#: a runtime's or C library's last words before it aborts the process: the JVM's
#: ``Terminating due to java.lang.OutOfMemoryError: ...`` (``-XX:+ExitOnOutOfMemoryError``), the C++
#: runtime's ``terminate called after throwing an instance of 'std::out_of_range'``, glibc's heap
#: checks (``free(): invalid size``, ``double free or corruption (out)``, ``corrupted size vs. prev_size``)
_LAST_WORDS = re.compile(
    r"\bTerminating due to (?:[\w$]+\.)+[\w$]*(?:Error|Exception)\b"
    r"|\bterminate called (?:after throwing an instance of|without an active exception|recursively)\b"
    r"|(?:^\s*|[:\]]\s*)(?:(?:free|malloc|realloc|calloc|munmap_chunk|malloc_consolidate|_int_\w{1,20})\(\):\s+"
    r"(?:invalid|corrupted|double free|unaligned|memory corruption|unsorted|smallbin|largebin)[^\n]{0,60}"
    r"|double free or corruption \((?:out|!prev|fasttop|top|!\w{1,10})\)"
    r"|corrupted (?:size vs\. prev_size|double-linked list)[^\n]{0,40})\s*$")
#: the last words looked for on continuation lines (a cheap screen before :func:`death`)
_TAIL_HINT = re.compile(r"Terminating due to|terminate called|\(\):\s|double free|corrupted |\*\*\*|core dumped")
MAX_TAIL_LINES = 2000
#: a supervisor giving up on a program
_GAVE_UP = re.compile(r"\bentered FATAL state\b|\b(?:start request repeated too quickly)\b", re.I)
#: a process, child or worker that ended unexpectedly, said without a status or signal
_DIED = re.compile(r"\b(?:process|child|worker|program|daemon)\b[^\n]{0,60}\b(?:died|crashed|exited unexpectedly|"
                   r"exited prematurely|terminated abnormally|exited abnormally|terminated unexpectedly)\b", re.I)
#: a stop someone asked for: SIGTERM, SIGINT, SIGHUP (the shell's 128+N for them)
_REQUESTED_SIGNALS = {"TERM", "INT", "HUP", "15", "2", "1"}
_REQUESTED_STATUS = {0, 130, 143, 129, -15, -2, -1}
_EXPECTED = re.compile(r";\s*expected\)|\bDeactivated successfully\b|\bexited normally\b", re.I)

_KILLED_NAME = re.compile(r"\bKill(?:ed)? process \d+ \(([^)\s]{1,40})\)|\btask=([\w.-]{1,40}),", re.I)
_UNIT = re.compile(r"(?<![\w.-])([A-Za-z_][\w@.-]{0,60}?)(?:@[\w.-]*)?\.service\b")
_SUPERVISED = re.compile(r"\b(?:exited|gave up|stopped|terminated|died|crashed|killed|backoff|fatal):\s*'?([A-Za-z_][\w.-]{1,40})'?"
                         r"(?=\s|\(|$)", re.I)
_NAME_PID = re.compile(r"(?<![\w/.-])([A-Za-z_][\w.-]{1,40})\s*\((?:pid\s*)?(\d{1,10})\)", re.I)
_NAME_PID_WORD = re.compile(r"(?<![\w/.-])([A-Za-z_][\w.-]{1,40}):?\s+pid\s*[:=#]?\s*(\d{1,10})\b", re.I)
_PROG_PID = re.compile(r"(?<![\w/.-])([A-Za-z_][\w.-]{1,40})\[(\d{1,10})\]")
_PID = re.compile(r"\b(?:pid|process|child|worker)[\"']?\s*[:=#]?\s*(\d{2,10})\b", re.I)
#: ``svrun: relayd exited with status 78``: the program named as the subject of the death words
_SUBJECT = re.compile(r"(?:^|[\s:\]>|])([A-Za-z_][\w.-]{1,40}):?\s+(?:has\s+|is\s+)?(?:(?:exited|exiting|terminated|died|crashed|"
                      r"was\s+killed|aborted)\b|rc\s*[=:])", re.I)
#: ``"container": "quotes"``, ``unit=billing``: the name a structured event gives the process
_FIELD_NAME = re.compile(r"\b(?:container|service|program|app|unit|process_name|task_name)[\"']?\s*[=:]\s*"
                         r"[\"']?([A-Za-z_][\w.-]{1,40})", re.I)
#: the same screen in RE2 syntax, run over a whole block of head lines at once
_HINT_RE2 = (r"kill|exit|signal|status|\brc ?[=:]|terminat|free\(\)|double free|corrupted|\*\*\*|segfault|fault|trap|core dumped|fatal state|died|crash|"
             r"abnormal|prematurely|unexpectedly|repeated too quickly")
_NOT_NAME = {"process", "child", "worker", "program", "service", "daemon", "main", "the", "with", "signal", "pid",
             "kernel", "exit", "status", "code"}
#: words that stand before "exited" without naming a program
_NOT_SUBJECT = {"it", "has", "had", "have", "that", "which", "then", "and", "just", "task", "job", "thread", "container",
                "instance", "unexpectedly", "already", "never", "subprocess", "command", "script", "shell", "app",
                "application", "server", "client", "info", "warn", "warning", "error", "notice", "debug", "fatal",
                "critical", "crit", "err"}


def _requested(sig: str | None) -> bool:
    return bool(sig) and sig.upper().removeprefix("SIG") in _REQUESTED_SIGNALS


def _said(words: str) -> str:
    """The crash words a line says, as a group key: digits masked, spaces single."""
    return " ".join(re.sub(r"\d+", "N", words).split()).lstrip(":] ")[:80]


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
            raw = next(g for g in m.groups() if g is not None).lower()
            status = int(raw, 16) if raw.startswith(("0x", "-0x")) else int(raw)
            if status in _REQUESTED_STATUS:
                return None
            out, where = {"reason": "exit-status", "status": status}, m.start()
    if out is None:
        m = _CRASH.search(line)
        if m:
            out, where = {"reason": "crash-message", "said": _said(m.group())}, m.start()
    if out is None:
        m = _LAST_WORDS.search(line)
        if m:
            out, where = {"reason": "crash-message", "said": _said(m.group())}, m.start()
    if out is None:
        m = _GAVE_UP.search(line)
        if m:
            out, where = {"reason": "gave-up"}, m.start()
    if out is None:
        m = _DIED.search(line)
        if m:
            out, where = {"reason": "died"}, m.start()
    if out is None:
        return None
    names: list[str] = []
    pid = out.pop("pid", None)
    for rx in (_KILLED_NAME, _UNIT, _SUPERVISED, _FIELD_NAME):
        for n in rx.findall(line):
            n = n if isinstance(n, str) else next((x for x in n if x), "")
            if n.lower() not in _NOT_NAME and n not in names:
                names.append(n)
    subject = _SUBJECT.search(line, max(0, where - 60))
    if subject and (subject.start(1) > where + 1 or subject.group(1).lower() in _NOT_NAME | _NOT_SUBJECT):
        subject = None
    # the program named (with its pid) nearest before the death words - "svscan[6269]: notifyd pid 7080
    # exited" tells notifyd's end, a line's own prefix names only its writer - unless the death words
    # have a subject of their own after it: "supervise[311]: mailq exited with status 1" is the writer
    # telling another program's end (and the pid is the writer's)
    # ("runsv[88]: worker (pid 4121) terminated": a word like "worker" names no program, but its pid is
    # the one that died)
    cands = [x for rx in (_NAME_PID, _PROG_PID, _NAME_PID_WORD) for x in rx.finditer(line) if x.start() < where + 1]
    if cands and not names:
        near = max(cands, key=lambda x: x.start())
        if subject is None or near.end() > subject.start(1):
            if near.group(1).lower() not in _NOT_NAME:
                names.append(near.group(1))
            pid = pid or near.group(2)
    if not names and subject is not None:
        names.append(subject.group(1))
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


class Deaths:
    """The deaths a log tells, collected record by record while the log streams (a template can
    hold clean and abnormal ends alike: ``{"msg": "task exit", "exitCode": 0}`` and ``... 2}``),
    grouped by what died and how: one ``LOG.PROCESS_EXIT`` finding per group (at most
    :data:`MAX_EXITS`, the earliest first).  Each block's head lines are screened at once by
    a cheap pattern (Arrow's RE2) before :func:`death` reads the few that pass."""

    MAX_GROUPS = 200

    MAX_EVENTS = 500

    def __init__(self, artifact: str):
        self.artifact = artifact
        self.groups: dict[tuple, dict[str, Any]] = {}
        self.events: list[Event] = []       # a death is a problem on the timeline, at whatever level it was logged

    def add_block(self, b) -> None:
        import numpy as np
        import pyarrow.compute as pc

        heads = b.strings["head"]
        mask = pc.fill_null(pc.match_substring_regex(heads, _HINT_RE2, ignore_case=True), False)
        for i in np.flatnonzero(mask.to_numpy(zero_copy_only=False)).tolist():
            text = heads[i].as_py() or ""
            d = death(text)
            if d is not None:
                msg = b.strings["message"][i].as_py() or ""
                self._count(b, i, d, int(b.line[i]), text, msg if msg and death(msg) is not None else text,
                            event=int(b.severity[i]) < int(Severity.HIGH))
        # a runtime's last words on a line of their own, without stamp or level, continue the
        # record before them (``Terminating due to java.lang.OutOfMemoryError``, ``free(): invalid
        # size``): the continuation lines of multi-line records are read for those words only
        for i, whole in b.texts:
            nl = whole.find("\n")
            if nl < 0 or not _TAIL_HINT.search(whole, nl):
                continue
            for k, part in enumerate(whole[nl + 1:].split("\n")[:MAX_TAIL_LINES], 1):
                if not _TAIL_HINT.search(part):
                    continue
                d = death(part)
                if d is not None and d["reason"] == "crash-message":
                    self._count(b, i, d, int(b.line[i]) + k, part[:500], part, event=True)

    def _count(self, b, i: int, d: dict, line: int, text: str, words: str, *, event: bool) -> None:
        key = (d["reason"], tuple(d.get("process", ())), d.get("signal"), d.get("status"), d.get("said"))
        g = self.groups.get(key)
        if g is None:
            if len(self.groups) >= self.MAX_GROUPS:
                return
            g = self.groups[key] = {"death": d, "count": 0, "first_ts": None, "last_ts": None, "examples": []}
        g["count"] += 1
        ts = b.dt(i)
        if len(self.events) < self.MAX_EVENTS and event:
            # records at error level already are events of their own
            self.events.append(Event(ts=ts, artifact=self.artifact, kind="log.process_exit",
                                     summary=words[:300], severity=Severity.HIGH,
                                     ref=EvidenceRef.line(self.artifact, line, text[:500]), analyzer="logs.text"))
        if ts is not None:
            g["first_ts"] = ts if g["first_ts"] is None or ts < g["first_ts"] else g["first_ts"]
            g["last_ts"] = ts if g["last_ts"] is None or ts > g["last_ts"] else g["last_ts"]
        if len(g["examples"]) < 3:
            g["examples"].append((line, text[:500]))
        if "words" not in g:                  # the record's message when it says it all, else its line
            g["words"] = words

    def absorb(self, other: "Deaths") -> None:
        """Add the deaths of the records that follow this one's in the file (the next byte
        range, :mod:`.ranges`): the same groups, counts, examples and events as one pass."""
        room = self.MAX_EVENTS - len(self.events)
        self.events.extend(other.events[:max(0, room)])
        for key, g in other.groups.items():
            mine = self.groups.get(key)
            if mine is None:
                if len(self.groups) < self.MAX_GROUPS:
                    self.groups[key] = g
                continue
            mine["count"] += g["count"]
            for end, pick in (("first_ts", min), ("last_ts", max)):
                vals = [t for t in (mine[end], g[end]) if t is not None]
                mine[end] = pick(vals) if vals else None
            mine["examples"] = (mine["examples"] + g["examples"])[:3]

    def findings(self, analyzer: str) -> Iterator[Finding]:
        for g in sorted(self.groups.values(), key=lambda g: g["examples"][0][0])[:MAX_EXITS]:
            d = g["death"]
            who = ", ".join(d.get("process", ())) or "a process"
            how = {"oom-kill": "killed by the kernel's OOM killer", "signal": f"killed by signal {d.get('signal')}",
                   "exit-status": f"exited with status {d.get('status')}", "crash-message": "crashed",
                   "gave-up": "ended and was given up", "died": "ended unexpectedly"}[d["reason"]]
            line, text = g["examples"][0]
            yield Finding(
                code="LOG.PROCESS_EXIT", title=f"{who} {how} ({g['count']}x): {g['words'][:160]}",
                severity=Severity.HIGH, artifact=self.artifact,
                evidence=tuple(EvidenceRef.line(self.artifact, ln, t) for ln, t in g["examples"]),
                detail=f"{g['count']} line(s) say so; first at line {line}",
                count=g["count"], first_seen=g["first_ts"], last_seen=g["last_ts"], analyzer=analyzer,
                data={"first_line": line, **d})
