"""Evidence intake: files, folders and nested archives in; classified artifacts out.

>>> from backline.evidence import IntakeLimits, Intake, collect, classify_file
>>> IntakeLimits().max_depth
8

See docs/evidence.md for containers, limits and how kinds are decided.
"""

from backline.evidence.classify import Classification, classify_file, classify_head
from backline.evidence.intake import Intake, collect
from backline.evidence.limits import IntakeLimits

__all__ = ["Classification", "Intake", "IntakeLimits", "classify_file", "classify_head", "collect"]
