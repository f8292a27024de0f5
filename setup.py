"""Build of the compiled part of Backline (everything else is in pyproject.toml).

The per-packet path of the capture analysis and the per-line path of the text-log
analysis are Cython (``src/backline/analyzers/net/_engine.pyx``,
``src/backline/analyzers/logs/_engine.pyx``); pip compiles them on install.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("backline.analyzers.net._engine", ["src/backline/analyzers/net/_engine.pyx"],
                   extra_compile_args=["-O2"]),
         Extension("backline.analyzers.logs._engine", ["src/backline/analyzers/logs/_engine.pyx"],
                   extra_compile_args=["-O2"], libraries=["pcre2-8"])],
        compiler_directives={"language_level": "3"},
    ),
)
