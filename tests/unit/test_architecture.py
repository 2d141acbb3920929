"""The layout ARCHITECTURE.md describes, checked: imports run one way (cli → workflows → domain →
engine), and nothing below the CLI prints, prompts or imports typer.

Every module under podrepro/ is parsed with ``ast`` (nothing is imported or run) and each of its
imports counts: at the top, inside functions and under ``TYPE_CHECKING`` alike.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "podrepro"

# Modules every layer may import, the engine included; they import only each other.
LEAVES = frozenset({"podrepro", "podrepro.errors", "podrepro.paths", "podrepro.audit", "podrepro.reporting"})

# layer -> the layers it may import
# workflows that live beside their domain package (what ``podrepro debug`` composes)
WORKFLOW_MODULES = frozenset({"podrepro.debug.command", "podrepro.triage.command", "podrepro.matrix.command", "podrepro.bisect.command",
                              "podrepro.bundle.command", "podrepro.bundle.replay",
                              "podrepro.system.command"})
ALLOWED: dict[str, frozenset[str]] = {
    "main": frozenset({"main", "cli", "workflows", "domain", "engine", "leaf"}),
    "cli": frozenset({"cli", "workflows", "domain", "engine", "leaf"}),
    "workflows": frozenset({"workflows", "domain", "engine", "leaf"}),
    "domain": frozenset({"domain", "engine", "leaf"}),
    "engine": frozenset({"engine", "leaf"}),
    "leaf": frozenset({"leaf"}),
    # shipped as data and run standalone (oci_wrapper.py under buildah): nothing of podrepro's
    "native": frozenset(),
}


def _within(mod: str, package: str) -> bool:
    return mod == package or mod.startswith(package + ".")


def layer(mod: str) -> str:
    if mod == "podrepro.__main__":
        return "main"
    if _within(mod, "podrepro.cli"):
        return "cli"
    if _within(mod, "podrepro.workflows") or mod in WORKFLOW_MODULES:
        return "workflows"
    if _within(mod, "podrepro.engine"):
        return "engine"
    if _within(mod, "podrepro.native"):
        return "native"
    if mod in LEAVES:
        return "leaf"
    return "domain"


def modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path, ast.parse(path.read_text(), str(path))


def is_module(name: str) -> bool:
    p = ROOT.joinpath(*name.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def imports(mod: str, path: Path, tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, module imported) for each import of a podrepro module."""
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if _within(a.name, "podrepro"):
                    yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the current package up
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            if not _within(base, "podrepro"):
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                yield node.lineno, sub if is_module(sub) else base


def _imported_roots(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name.split(".")[0] for a in node.names}
    if isinstance(node, ast.ImportFrom) and not node.level:
        return {(node.module or "").split(".")[0]}
    return set()


def _lines(found: list[tuple[str, int, str]]) -> str:
    return "\n".join(f"{path}:{line}: {what}" for path, line, what in sorted(found))


def test_layers_are_known() -> None:
    # the test itself would pass vacuously if the package moved or the walk found nothing
    found = {layer(m) for m, _, _ in modules()}
    assert {"main", "cli", "workflows", "domain", "engine", "leaf"} <= found, found


def test_imports_run_one_way() -> None:
    wrong: list[tuple[str, int, str]] = []
    for mod, path, tree in modules():
        for line, target in imports(mod, path, tree):
            src, dst = layer(mod), layer(target)
            if dst not in ALLOWED[src]:
                wrong.append((str(path.relative_to(ROOT)), line, f"{mod} ({src}) imports {target} ({dst})"))
    assert not wrong, "imports that run the wrong way (see ARCHITECTURE.md):\n" + _lines(wrong)


def test_nothing_below_the_cli_prints_prompts_or_imports_typer() -> None:
    wrong: list[tuple[str, int, str]] = []
    for mod, path, tree in modules():
        if layer(mod) in ("cli", "main"):
            continue
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            what = None
            if _imported_roots(node) & {"typer", "click"}:
                what = "imports typer/click"
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                what = "calls print()"
            elif (isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr")
                  and isinstance(node.value, ast.Name) and node.value.id == "sys"):
                use = parents.get(node)
                if not (isinstance(use, ast.Attribute) and use.attr == "isatty"):  # asking is not writing
                    what = f"uses sys.{node.attr}"
            if what:
                wrong.append((str(path.relative_to(ROOT)), getattr(node, "lineno", 0), f"{mod} {what}"))
    assert not wrong, ("only podrepro.cli prints, prompts or draws progress; pass a reporting.Reporter, "
                       "Notify or Confirm down instead:\n" + _lines(wrong))
