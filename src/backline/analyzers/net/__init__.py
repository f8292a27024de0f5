"""backline.analyzers.net: network captures.

The per-packet path is the compiled module :mod:`._engine` (Cython), built
by pip when Backline is installed.  A source tree used without installing
has no such module; say so plainly instead of failing on the first import.
"""

try:
    from backline.analyzers.net import _engine  # noqa: F401
except ImportError as exc:  # pragma: no cover - only in an unbuilt source tree
    raise ImportError(
        "Backline's compiled packet engine (backline.analyzers.net._engine) is not built: "
        "install Backline with `pip install -e .` (or `make venv`), which compiles it; "
        f"a C compiler is needed ({exc})") from exc
