"""The ``evtx.event_index`` fact: every kind of event of a Windows event log, counted.

The evtx analyzer's findings cover crashes, shutdowns, disk errors and the
top error events.  Known-issue matchers also need events that are neither
(audit failures such as Kerberos pre-authentication failures 4771 with status
``0x25``, "clock skew too great", are logged at level 0), and the values of
their status fields.  This index lists each (provider, event id) once: count,
worst level, first and last record, the first record's summary, and for the
status-like data fields (and unnamed data) up to :data:`MAX_VALUES` distinct
values with their counts.

At most :data:`MAX_KINDS` kinds are listed; events of further kinds are
counted in :attr:`EventIndex.other` (the analyzer warns about them).

>>> idx = EventIndex()
>>> idx.add("Microsoft-Windows-Security-Auditing", 4771, 0, 88, "4771: ...", {"Status": "0x25", "IpPort": "1"})
>>> idx.entries()[0]["fields"]
{'Status': {'0x25': 1}}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_KINDS = 2000
MAX_VALUES = 8
MAX_VALUE_TEXT = 200
#: Named event data fields whose values say what went wrong (kept per kind of event).
STATUS_FIELDS = frozenset({"Status", "SubStatus", "FailureCode", "FailureReason", "ResultCode", "ErrorCode",
                           "Error", "ErrorState", "ExceptionCode", "param1", "param2", "param3"})
#: Unnamed event data: the first values are kept under "1", "2", ...
MAX_UNNAMED = 6
_LEVEL_SEVERITY = {1: "critical", 2: "high", 3: "medium"}


@dataclass(slots=True)
class _Kind:
    provider: str
    event_id: int
    count: int = 0
    level: int = 0
    first_record: int = 0
    last_record: int = 0
    excerpt: str = ""
    fields: dict[str, dict[str, int]] = field(default_factory=dict)


class EventIndex:
    """Counts events by provider and id while a file is read."""

    def __init__(self) -> None:
        self.kinds: dict[tuple[str, int], _Kind] = {}
        self.other = 0          # events of kinds past MAX_KINDS

    def add(self, provider: str, event_id: int, level: int, record_id: int, summary: str,
            data: dict[str, Any] | list[Any]) -> None:
        key = (provider, event_id)
        k = self.kinds.get(key)
        if k is None:
            if len(self.kinds) >= MAX_KINDS:
                self.other += 1
                return
            k = self.kinds[key] = _Kind(provider, event_id, first_record=record_id, excerpt=summary[:500])
        k.count += 1
        k.last_record = record_id
        # levels: 1 critical < 2 error < 3 warning < 4 info; 0 is LogAlways (audit)
        if level and (not k.level or level < k.level):
            k.level = level
        if isinstance(data, dict):
            items = [(n, v) for n, v in data.items() if n in STATUS_FIELDS]
        else:
            items = [(str(i + 1), v) for i, v in enumerate(data[:MAX_UNNAMED])]
        for name, value in items:
            if value is None:
                continue
            text = str(value)[:MAX_VALUE_TEXT]
            vals = k.fields.setdefault(name, {})
            if text in vals:
                vals[text] += 1
            elif len(vals) < MAX_VALUES:
                vals[text] = 1

    def entries(self) -> list[dict[str, Any]]:
        """The index as plain data, most frequent kinds first."""
        out = []
        for k in sorted(self.kinds.values(), key=lambda k: (-k.count, k.provider, k.event_id)):
            out.append({"provider": k.provider, "event_id": k.event_id, "count": k.count, "level": k.level,
                        "severity": _LEVEL_SEVERITY.get(k.level, "info"), "first_record": k.first_record,
                        "last_record": k.last_record, "excerpt": k.excerpt, "fields": k.fields})
        return out
