"""Reading README.md's fenced blocks, and running one Python block with its claims checked
(used by test_readme.py; ``python readme_blocks.py BLOCK_FILE FIRST_LINE README`` runs a
Python block).

A Python block runs as a script in a fresh interpreter, compiled under the name README.md
with its own line numbers, so a traceback points into the README. A line that is a single
expression followed by a comment holding a Python literal (``op.done   # True``) claims that
value: the expression is checked against it.
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Block", "read_blocks", "with_claims_checked"]

FENCE = re.compile(r"^```(?P<lang>\S*)\s*$")


@dataclass(frozen=True)
class Block:
    line: int  # the line of the opening fence, counted from 1
    lang: str
    text: str
    heading: str  # the nearest heading above it

    @property
    def where(self) -> str:
        return f"README.md:{self.line}"

    @property
    def first_line(self) -> int:
        """The README line of the block's first line of code."""
        return self.line + 1


def read_blocks(path: Path) -> list[Block]:
    blocks: list[Block] = []
    heading = ""
    lang: str | None = None
    start = 0
    body: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if lang is None:
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            match = FENCE.match(line)
            if match:
                lang, start, body = match["lang"], number, []
            continue
        if line.startswith("```"):
            blocks.append(Block(start, lang, "\n".join(body) + "\n", heading))
            lang = None
        else:
            body.append(line)
    if lang is not None:
        raise ValueError(f"README.md:{start}: a fenced block is never closed")
    return blocks


def _claims(source: str) -> dict[int, ast.expr]:
    """Line (of the block) -> the literal its trailing comment holds, as an expression."""
    claims: dict[int, ast.expr] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        text = token.string[1:].strip()
        try:
            ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue  # words, not a value
        claims[token.start[0]] = ast.parse(text, mode="eval").body
    return claims


class _Claims(ast.NodeTransformer):
    def __init__(self, claims: dict[int, ast.expr], offset: int) -> None:
        self._claims = claims
        self._offset = offset

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        if node.lineno == node.end_lineno and node.lineno in self._claims:
            expected = self._claims[node.lineno]
            check = ast.Call(
                func=ast.Name("__readme_claim__", ast.Load()),
                args=[node.value, expected, ast.Constant(node.lineno + self._offset)],
                keywords=[],
            )
            return ast.copy_location(ast.Expr(check), node)
        return node


def with_claims_checked(source: str, first_line: int) -> ast.Module:
    """The block's code, its claims turned into checks, numbered as README.md numbers it."""
    tree = ast.parse(source, filename="README.md", feature_version=(3, 10))
    tree = ast.fix_missing_locations(_Claims(_claims(source), first_line - 1).visit(tree))
    ast.increment_lineno(tree, first_line - 1)
    return tree


def _claim(value: object, expected: object, line: int) -> None:
    if value != expected:
        raise AssertionError(f"README.md:{line}: the comment says {expected!r}, got {value!r}")


def main() -> None:
    block, first_line, readme = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    # Compiled under the README's own path: a traceback quotes the README's lines.
    code = compile(with_claims_checked(block.read_text(), first_line), readme, "exec")
    sys.argv = [readme]
    exec(code, {"__name__": "__main__", "__readme_claim__": _claim})


if __name__ == "__main__":
    main()
