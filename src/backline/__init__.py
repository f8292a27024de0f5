"""Backline: the escalation engineer's workbench.

Evidence in (logs, event logs, captures, dumps; files, folders, nested archives),
analysis out (findings that point back at the line, packet, record or frame).
"""

__version__ = "0.1.0"
