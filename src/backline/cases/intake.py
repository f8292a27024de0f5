"""The intake quality gate: is an escalation complete enough to work on?

Rules are data (``intake_rules.json`` in this package, or a file of the same
shape passed in): per product, a list of required items, each with a weight,
the field of the submission it is read from, and a minimum length.  A
product without its own rules uses ``"*"``.

>>> rules = IntakeRules.default()
>>> r = rules.check("any product", {"symptoms": "Server crashes on start"})
>>> r.complete, "business_impact" in r.missing
(False, True)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from backline.errors import UsageError


@dataclass(frozen=True, slots=True)
class IntakeItem:
    """One thing an escalation must carry."""

    name: str
    label: str
    weight: float = 1.0
    min_length: int = 10
    required: bool = True


@dataclass(frozen=True, slots=True)
class IntakeResult:
    score: float                      # 0..1, weighted share of items present
    missing: tuple[str, ...]          # names of required items absent or too short
    complete: bool
    hints: tuple[str, ...]            # human-readable: what to add

    def to_json(self) -> dict[str, Any]:
        return {"score": self.score, "missing": list(self.missing),
                "complete": self.complete, "hints": list(self.hints)}


@dataclass(frozen=True, slots=True)
class ProductRules:
    items: tuple[IntakeItem, ...]
    pass_score: float = 1.0           # the score needed besides "no required item missing"


class IntakeRules:
    """Per-product intake rules."""

    def __init__(self, products: Mapping[str, ProductRules]):
        if "*" not in products:
            raise UsageError("intake rules need a default product entry '*'")
        self.products = dict(products)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str = "intake rules") -> "IntakeRules":
        try:
            products: dict[str, ProductRules] = {}
            for product, spec in data["products"].items():
                items = tuple(IntakeItem(name=i["name"], label=i.get("label", i["name"]),
                                         weight=float(i.get("weight", 1.0)),
                                         min_length=int(i.get("min_length", 10)),
                                         required=bool(i.get("required", True)))
                              for i in spec["items"])
                products[product] = ProductRules(items, float(spec.get("pass_score", 1.0)))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UsageError(f"malformed intake rules: {exc!r}", artifact=source) from None
        return cls(products)

    @classmethod
    def load(cls, path: Path) -> "IntakeRules":
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")), str(path))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"cannot read intake rules: {exc}", artifact=str(path)) from None

    @classmethod
    def default(cls) -> "IntakeRules":
        text = resources.files("backline.cases").joinpath("data/intake_rules.json").read_text("utf-8")
        return cls.from_json(json.loads(text), "intake_rules.json")

    def for_product(self, product: str) -> ProductRules:
        return self.products.get(product, self.products.get(product.lower(), self.products["*"]))

    def check(self, product: str, submission: Mapping[str, Any]) -> IntakeResult:
        """Score ``submission`` (item name -> text or list) against the product's rules."""
        rules = self.for_product(product)
        total = sum(i.weight for i in rules.items) or 1.0
        got = 0.0
        missing: list[str] = []
        hints: list[str] = []
        for item in rules.items:
            if _present(submission.get(item.name), item.min_length):
                got += item.weight
            elif item.required:
                missing.append(item.name)
                hints.append(f"add {item.label} (at least {item.min_length} characters)"
                             if item.min_length > 1 else f"add {item.label}")
        score = round(got / total, 3)
        complete = not missing and score >= rules.pass_score - 1e-9
        return IntakeResult(score, tuple(missing), complete, tuple(hints))


def _present(value: Any, min_length: int) -> bool:
    if value is None:
        return False
    if isinstance(value, (list, tuple)):
        return len(value) > 0 and any(_present(v, 1) for v in value)
    if isinstance(value, Mapping):
        return len(value) > 0
    return len(str(value).strip()) >= max(min_length, 1)
