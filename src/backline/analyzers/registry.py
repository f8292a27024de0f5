"""The explicit list of analyzers.

Backline's own analyzers are listed in :data:`BUILTIN_ANALYZERS`; nothing is
registered as a side effect of importing a module.  Third-party packs add
analyzers through the ``backline.analyzers`` entry-point group (each entry
point names an :class:`~backline.analyzers.base.Analyzer` subclass).
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points

from backline.analyzers.base import Analyzer

#: "module:Class" of every built-in analyzer, in run order.
BUILTIN_ANALYZERS: tuple[str, ...] = (
    "backline.analyzers.dumps.minidump.analyzer:MinidumpAnalyzer",
    "backline.analyzers.dumps.elfcore.analyzer:ElfCoreAnalyzer",
    "backline.analyzers.dumps.text.analyzer:TextCrashAnalyzer",
    "backline.analyzers.logs.text_analyzer:LogsTextAnalyzer",
    "backline.analyzers.logs.evtx_analyzer:LogsEvtxAnalyzer",
    "backline.analyzers.net.analyzer:NetCaptureAnalyzer",
)


def _load(spec: str) -> type[Analyzer]:
    module, _, cls = spec.partition(":")
    return getattr(import_module(module), cls)


def builtin_analyzer_classes() -> list[type[Analyzer]]:
    return [_load(s) for s in BUILTIN_ANALYZERS]


def plugin_analyzer_classes() -> list[type[Analyzer]]:
    out: list[type[Analyzer]] = []
    for ep in entry_points(group="backline.analyzers"):
        cls = ep.load()
        if isinstance(cls, type) and issubclass(cls, Analyzer):
            out.append(cls)
    return out


def all_analyzer_classes(include_plugins: bool = True) -> list[type[Analyzer]]:
    classes = builtin_analyzer_classes()
    if include_plugins:
        classes += plugin_analyzer_classes()
    return classes


def analyzer_by_name(name: str) -> type[Analyzer]:
    for cls in all_analyzer_classes():
        if cls.name == name:
            return cls
    raise KeyError(name)
