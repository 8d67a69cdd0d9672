"""Build the native core of the JSON codec (v1op_pb._codec._native); everything else about
the package is declared in pyproject.toml."""

from pathlib import Path

from setuptools import Extension, setup

NATIVE = Path("v1op_pb/_codec/native")

setup(
    ext_modules=[
        Extension(
            "v1op_pb._codec._native",
            sources=sorted(str(p) for p in NATIVE.glob("*.c")),
            depends=[str(NATIVE / "native.h")],
            extra_compile_args=["-std=c11", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
