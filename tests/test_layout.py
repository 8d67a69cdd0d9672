"""The layout's promises: the binding core needs no server stack, and no module imports
another that imports it back (the arrows run one way)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import v1op_pb

PACKAGE = Path(v1op_pb.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """The v1op_pb modules that ``path`` imports, at module level or inside functions."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("v1op_pb"):
                continue
            for alias in node.names:
                # ``from . import x`` may name a submodule.
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _exists(candidate) else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("v1op_pb"))
    found.discard(name)
    return {m for m in found if _exists(m)}


def _exists(module: str) -> bool:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def test_no_import_circles():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for nxt in sorted(graph.get(module, ())):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_binding_core_imports_no_server_stack():
    code = (
        "import sys, v1op_pb, v1op_pb.cli\n"
        'op = v1op_pb.from_json(\'{"name": "operations/1"}\')\n'
        "v1op_pb.to_json(op); v1op_pb.V1Operation.from_proto(op).to_json()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'aiohttp')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _part(module: str) -> str:
    """The part a module belongs to: a subpackage of the parts, or the binding core (the
    top-level modules and the codec beneath them)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in _LEVEL) else "core"


_LEVEL = {"core": 0, "server": 1, "gateway": 1, "client": 1, "cli": 2}


def test_parts_import_only_downward():
    """cli -> server, gateway, client -> binding core: never the other way."""
    for module, targets in _graph().items():
        part = _part(module)
        for target in targets:
            other = _part(target)
            if part == other or part == "_codec" or other == "_codec":
                continue
            assert _LEVEL[other] < _LEVEL[part] or (
                # The one sideways arrow: `serve --http-addr` starts the gateway in-process.
                (module, target) == ("v1op_pb.server.app", "v1op_pb.gateway")
            ), f"{module} imports {target}"


def test_codec_imports_nothing_above_the_core():
    for module, targets in _graph().items():
        if module.startswith("v1op_pb._codec"):
            assert {_part(t) for t in targets} <= {"core", "_codec"}, module
