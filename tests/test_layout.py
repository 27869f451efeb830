"""The house rules of the package's layout: imports point one way, no cycles, no symlinks, every room installed."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import tomllib

ROOT = Path(__file__).parents[1]
TOOLS = ROOT / "tools"
PACKAGE = "imagenet_sketch_tools"
# Lower layers never import higher ones: commands -> features -> the dataset core -> shared helpers.
# Evaluation reads datasets through the builder's load(), so it sits above the builder, as the commands do.
LAYERS = {"common": 0, "dataset": 1, "fetch": 2, "hub": 2, "inspection": 2, "pipeline": 2, "evaluation": 3, "cli": 4}


def module_name(path: Path) -> str:
    parts = path.relative_to(TOOLS).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


def imports_of(path: Path) -> set[str]:
    """Every imagenet_sketch_tools module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name.startswith(PACKAGE + ".") or name == "imagenet_sketch")
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in TOOLS.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        targets = {target for target in imports_of(path) if target in modules or target == "imagenet_sketch"}
        # `from pkg import module` depends on the module, not on what pkg/__init__ re-exports for users.
        edges[name] = {target for target in targets if not any(other.startswith(target + ".") for other in targets)}
    return edges


def layer(module: str) -> float:
    if module == "imagenet_sketch":  # the builder: above what it reads with, below what runs it
        return 2.5
    return LAYERS[module.split(".")[1]] if module.count(".") else -1


def test_every_module_lives_in_a_room_with_a_layer():
    loose = [path.name for path in TOOLS.glob("*.py") if path.name != "__init__.py"]
    assert loose == []
    rooms = {path.parent.relative_to(TOOLS).parts[0] for path in TOOLS.rglob("__init__.py") if path.parent != TOOLS}
    assert rooms <= set(LAYERS), rooms - set(LAYERS)


def test_imports_point_down_the_layers_and_only_commands_import_the_builder():
    upward = [
        f"{source} -> {target}"
        for source, targets in graph().items()
        for target in targets
        if layer(target) > layer(source)
    ]
    assert upward == []


def test_there_is_no_import_cycle():
    edges = graph()
    state: dict[str, str] = {}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target) :] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_every_subpackage_is_installed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {module_name(path) for path in TOOLS.rglob("__init__.py")}
    assert on_disk == listed


def test_the_repository_holds_no_symlink():
    tracked = subprocess.run(["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert [line for line in tracked.splitlines() if line.startswith("120000")] == []
