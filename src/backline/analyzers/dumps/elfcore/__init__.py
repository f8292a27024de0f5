"""Linux ELF core files: threads, registers, signal, mapped files, stacks, waits.

>>> from backline.analyzers.dumps.elfcore import load_core
>>> callable(load_core)
True
"""

from backline.analyzers.dumps.elfcore.analysis import load_core

__all__ = ["load_core"]
