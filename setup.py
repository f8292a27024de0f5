"""Build of the compiled part of Backline (everything else is in pyproject.toml).

The per-packet path of the capture analysis is Cython
(``src/backline/analyzers/net/_engine.pyx``); pip compiles it on install.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("backline.analyzers.net._engine", ["src/backline/analyzers/net/_engine.pyx"],
                   extra_compile_args=["-O2"])],
        compiler_directives={"language_level": "3"},
    ),
)
