"""Synthetic findings and facts shaped exactly as the analyzers emit them (codes and ``data`` keys)."""

from __future__ import annotations

from typing import Any

from backline.model import EvidenceRef, Fact, Finding, Severity


def net(code: str, count: int = 1, art: str = "c.pcapng", **data: Any) -> Finding:
    return Finding(code, f"{code} {data}", Severity.HIGH, art, (EvidenceRef.packet(art, 7, "pkt"),),
                   count=count, analyzer="net.capture", data=data)


def tls(description: str, level: str = "fatal") -> Finding:
    return net("NET.TLS.ALERT", server="10.0.0.2:443", description=description, level=level,
               senders=["10.0.0.2"], sni="")


def smb(command: str, status_name: str) -> Finding:
    return net("NET.SMB2.ERROR", status="0xc0000022", status_name=status_name, command=command)


def http(status: int) -> Finding:
    return net("NET.HTTP.5XX" if status >= 500 else "NET.HTTP.4XX", server="10.0.0.2:80", path="/x", status=status)


def log(template: str, count: int = 1, art: str = "app.log", code: str = "LOG.ERROR_TEMPLATE",
        example: str | None = None) -> Finding:
    """A log finding; ``example`` is the raw line (default: the template with <*> filled)."""
    line = example or template.replace("<*>", "42")
    return Finding(code, f"{count}x {template}", Severity.HIGH, art, (EvidenceRef.line(art, 10, line),),
                   count=count, analyzer="logs.text",
                   data={"template_id": f"t{abs(hash(template)) % 10**8:08d}", "template": template,
                         "rank": 1, "level": "ERROR", "first_line": 10, "error_records": count,
                         "template_records": count})


def template_index(*templates: tuple[str, int], art: str = "syslog") -> Fact:
    """The logs.text analyzer's ``log.template_index`` fact for (template, count) pairs."""
    return Fact("log.template_index", [
        {"template_id": f"i{i}", "template": t, "count": n, "severity": "info", "first_line": i + 1,
         "example": t.replace("<*>", "7")} for i, (t, n) in enumerate(templates)], art, "logs.text")


def exc(type_: str, message: str, code: str = "DUMP.JAVA_EXCEPTION", causes: list[str] | None = None,
        signature: str | None = None, art: str = "trace.txt", **extra: Any) -> Finding:
    fmt = {"DUMP.JAVA_EXCEPTION": "java", "DUMP.PYTHON_EXCEPTION": "python",
           "DUMP.DOTNET_EXCEPTION": "dotnet"}.get(code, "hs_err")
    data = {"format": fmt, "signature": signature or f"{type_} | Main.run | Main.main",
            "problem_class": None, "exception_type": type_, "causes": causes or [], "threads": 1,
            "deadlocks": []}
    data.update(extra)
    return Finding(code, f"{type_}: {message}", Severity.HIGH, art,
                   (EvidenceRef.line(art, 1, f"{type_}: {message}"),), detail=data["signature"],
                   analyzer="dumps.text", data=data)


def jvm_fatal(problem_class: str, type_: str = "SIGSEGV", problematic_frame: str | None = None,
              error_location: str | None = None, signature: str | None = None) -> Finding:
    return exc(type_, "fatal error", code="DUMP.JVM_FATAL", problem_class=problem_class,
               problematic_frame=problematic_frame, error_location=error_location,
               signature=signature or f"{type_} | {problematic_frame or error_location}",
               jre_version="17.0.15+6", detail=None)


def crash(problem_class: str, reason: str, bucket_id: str, signature: str, blamed: str,
          specific: str | None = None, art: str = "app.dmp", address: int | None = 0) -> list[Finding]:
    """A minidump crash: DUMP.CRASH plus the specific code, as the minidump analyzer emits them."""
    data = {"problem_class": problem_class, "reason": reason, "address": address, "code": None,
            "signature": signature, "bucket_id": bucket_id, "blamed_frame": blamed, "thread": 1,
            "crashing_instruction": None}
    refs = (EvidenceRef.frame(art, 0, 0, blamed),)
    out = [Finding("DUMP.CRASH", f"Crash: {reason}", Severity.CRITICAL, art, refs, analyzer="dumps.minidump",
                   data=data)]
    if specific:
        out.append(Finding(specific, f"{problem_class.lower()}: {reason}", Severity.HIGH, art, refs,
                           analyzer="dumps.minidump", data=data))
    return out


def evtx(code: str, count: int = 1, art: str = "System.evtx", **data: Any) -> Finding:
    return Finding(code, f"{code} {data}", Severity.HIGH, art, (EvidenceRef.record(art, 88, "event"),),
                   count=count, analyzer="logs.evtx", data=data)


def event_index(*events: dict[str, Any], art: str = "System.evtx") -> Fact:
    """The evtx analyzer's ``evtx.event_index`` fact: dicts with provider, event_id, count, fields."""
    out = []
    for i, e in enumerate(events):
        out.append({"provider": e["provider"], "event_id": e["event_id"], "count": e.get("count", 1),
                    "level": e.get("level", 2), "severity": "high", "first_record": 100 + i,
                    "last_record": 100 + i, "excerpt": f"{e['provider']} {e['event_id']}",
                    "fields": e.get("fields", {})})
    return Fact("evtx.event_index", out, art, "logs.evtx")
