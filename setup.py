"""Build the native core of the JSON codec (v1op_pb._codec._native); everything else about
the package is declared in pyproject.toml.

The core is optional: where it cannot be built (no C compiler, no Python headers) the
install still succeeds, with one warning line, and the codec runs in pure Python (``v1op
--version`` says which is in use). ``V1OP_PB_REQUIRE_NATIVE=1`` makes a failed build an
error instead, for builds that must have it.
"""

import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

NATIVE = Path("v1op_pb/_codec/native")
REQUIRE_NATIVE = os.environ.get("V1OP_PB_REQUIRE_NATIVE", "") not in ("", "0")


class OptionalBuildExt(build_ext):
    """build_ext that leaves an extension out, with one warning line, when it cannot be
    compiled or linked here."""

    def run(self) -> None:
        try:
            super().run()
        except PlatformError as e:  # no compiler at all for this platform
            self._skip("all extensions", e)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except (CCompilerError, ExecError, PlatformError, OSError) as e:
            self._skip(ext.name, e)

    def _skip(self, what: str, error: Exception) -> None:
        if REQUIRE_NATIVE:
            raise error
        # One line: the compiler's full command line says nothing a user can act on.
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if len(reason) > 120:
            reason = reason[:117] + "..."
        print(
            f"WARNING: v1op-pb: {what} not built ({type(error).__name__}: {reason}); "
            "the JSON codec runs in pure Python",
            file=sys.stderr,
        )


setup(
    ext_modules=[
        Extension(
            "v1op_pb._codec._native",
            sources=sorted(str(p) for p in NATIVE.glob("*.c")),
            depends=[str(NATIVE / "native.h")],
            extra_compile_args=["-std=c11", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
