"""Windows, Breakpad and Crashpad minidumps: parser, processing into a CrashReport, analyzer."""

from backline.analyzers.dumps.minidump.parser import parse_minidump, read_minidump

__all__ = ["parse_minidump", "read_minidump"]
