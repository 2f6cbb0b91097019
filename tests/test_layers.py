"""The package's layers: every import inside fxfault points down (docs/architecture.md)."""

import ast
from pathlib import Path

import fxfault

ROOT = Path(fxfault.__file__).parent

#: layer rank by top-level module; a module may import only from its own rank or below
RANKS = {
    "errors": 0, "_version": 0, "text": 0, "files": 0, "config": 1,
    "faults": 2, "ops": 3, "quantizers": 4, "graph": 5,
    "runtime": 6, "inspection": 7, "campaign": 8, "cli": 9, "testing": 9,
    # compatibility re-exports of fxfault 0.1 and the package itself
    "control": 10, "training": 10, "inspect": 10, "export": 10, "graph_diff": 10, "transform": 10,
    "__init__": 10, "__main__": 10,
}


def _top(path: Path) -> str:
    rel = path.relative_to(ROOT).parts
    return rel[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = path.relative_to(ROOT).parts[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(pkg[: len(pkg) - node.level + 1])
                target = [*base, *(node.module.split(".") if node.module else [])]
                if not target:  # "from . import x" at the top level
                    target = [a.name for a in node.names][:1]
            elif node.module and node.module.startswith("fxfault."):
                target = node.module.split(".")[1:]
            else:
                continue
            out.append((target[0], node.lineno))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("fxfault."):
                    out.append((a.name.split(".")[1], node.lineno))
    return out


def test_dependencies_point_down():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        top = _top(path)
        rank = RANKS[top]
        for target, line in _imports(path):
            if target not in RANKS:
                continue
            if RANKS[target] > rank:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {target} (layer {RANKS[target]} > {rank})")
    assert not bad, "\n".join(bad)


def test_every_module_is_placed():
    assert {_top(p) for p in ROOT.rglob("*.py")} <= set(RANKS)
