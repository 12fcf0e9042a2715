"""Build of the optional native code: the line scanner (tokmon._native._scan) and, on POSIX,
the warm check's stat calls (tokmon._native._stat).

Everything else is declared in pyproject.toml. The extensions are optional: without a C
compiler (or if a build fails) the install goes on and tokmon uses the pure-Python code,
with the same results.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_VENDOR = "tokmon/_native/vendor/yyjson"
_MACROS = [
    ("YYJSON_DISABLE_WRITER", "1"),
    ("YYJSON_DISABLE_INCR_READER", "1"),
    ("YYJSON_DISABLE_UTILS", "1"),
    ("YYJSON_DISABLE_NON_STANDARD", "1"),
]


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing: the extension only makes scans faster."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all (e.g. distutils' CCompilerError)
            self._skip(exc, "tokmon's native extensions were")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._skip(exc, f"{ext.name} was")

    @staticmethod
    def _skip(exc: BaseException, what: str) -> None:
        sys.stderr.write(
            f"warning: {what} not built ({exc}); "
            "the pure-Python code is used (same results, slower)\n"
        )


def _extensions() -> list[Extension]:
    if os.environ.get("TOKMON_BUILD_NATIVE", "1") == "0":
        return []
    args: list[str] = []
    if sys.platform != "win32":
        args = ["-O3", "-std=c99"]
    extra = os.environ.get("TOKMON_NATIVE_CFLAGS")  # e.g. sanitizers (scripts/native_asan.sh)
    link: list[str] = []
    if extra:
        args += extra.split()
        link += extra.split()
    exts = [
        Extension(
            "tokmon._native._scan",
            sources=["tokmon/_native/_scan.c", f"{_VENDOR}/yyjson.c"],
            depends=[f"{_VENDOR}/yyjson.h"],
            define_macros=_MACROS,
            extra_compile_args=args,
            extra_link_args=link,
            optional=True,
        )
    ]
    if os.name == "posix":  # Windows keeps os.stat (its st_ino is not the C library's)
        exts.append(
            Extension(
                "tokmon._native._stat",
                sources=["tokmon/_native/_stat.c"],
                extra_compile_args=args,
                extra_link_args=link,
                optional=True,
            )
        )
    return exts


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
