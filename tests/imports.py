"""One static (AST) scan of what a Python file imports, for the tests of import boundaries."""

from __future__ import annotations

import ast
from pathlib import Path

import ufs_tui

PACKAGE_DIR = Path(ufs_tui.__file__).parent


def module_name(path: Path) -> str:
    """The dotted name of a module under ``ufs_tui`` from its path."""
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, me: str | None = None) -> list[tuple[int, str]]:
    """(line, module) for every import in ``path``, read as module ``me`` (by default its own name under
    ``ufs_tui``; needed only to resolve relative imports). ``from M import n`` gives ``M.n`` (n may be a module
    or a name in M: check with :func:`within`); ``import_module("M")`` and ``__import__("M")`` with a constant
    give ``M``."""
    if me is None:
        me = module_name(path) if PACKAGE_DIR in path.parents else path.stem
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")
                module = ".".join(base[: len(base) - node.level + 1] + ([module] if module else []))
            out += [(node.lineno, f"{module}.{a.name}") for a in node.names]
        elif _dynamic(node):
            assert isinstance(node, ast.Call) and isinstance(node.args[0], ast.Constant)
            out.append((node.lineno, str(node.args[0].value)))
    return out


def _dynamic(node: ast.AST) -> bool:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name) and node.args):
        return False
    name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
    arg = node.args[0]
    return name in ("import_module", "__import__") and isinstance(arg, ast.Constant) and isinstance(arg.value, str)


def within(module: str, prefix: str) -> bool:
    """Whether ``module`` is ``prefix`` or inside it."""
    return module == prefix or module.startswith(prefix + ".")
