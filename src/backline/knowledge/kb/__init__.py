"""Known issues: the model, the matcher schema and engine, and the starter pack.

>>> from backline.knowledge.kb import load_pack
>>> len(load_pack()) >= 40
True
"""

from backline.knowledge.kb.engine import ANALYZER, MATCH, NOT_AFFECTED, kb_findings, match_issues
from backline.knowledge.kb.loader import entry_to_dict, load_pack, load_path, parse_entry, parse_text
from backline.knowledge.kb.model import KbResult, KnownIssue, Status

__all__ = ["ANALYZER", "MATCH", "NOT_AFFECTED", "KbResult", "KnownIssue", "Status", "entry_to_dict",
           "kb_findings", "load_pack", "load_path", "match_issues", "parse_entry", "parse_text"]
