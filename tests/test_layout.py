"""The house rules of the package's layout: imports point one way, no cycles, no symlinks, every file installed,
each module importable under one name only."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[1]
TOOLS = ROOT / "tools" / "imagenet_sketch_tools"
PACKAGE = "imagenet_sketch_tools"
# Lower layers never import higher ones: commands -> features -> the dataset core -> shared helpers.
# Evaluation reads datasets through the builder's load(), so it sits above the builder, as the commands do.
LAYERS = {
    "common": 0,
    "dataset": 1,
    "fetch": 2,
    "hub": 2,
    "inspection": 2,
    "pipeline": 2,
    "evaluation": 3,
    "report": 3,
    "cli": 4,
}


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


def test_the_wheel_holds_every_file_of_the_package_and_the_builder(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    packed = {name for name in zipfile.ZipFile(wheel).namelist() if ".dist-info/" not in name}
    tracked = subprocess.run(["git", "ls-files", "tools"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert packed == {path.removeprefix("tools/") for path in tracked.split()} | {"imagenet_sketch.py"}


def test_the_package_runs_as_a_module_and_is_importable_under_one_name_only():
    cli = subprocess.run([sys.executable, "-m", f"{PACKAGE}.cli", "--help"], capture_output=True, text=True)
    assert cli.returncode == 0 and "usage: imagenet-sketch" in cli.stdout
    twice = subprocess.run([sys.executable, "-c", f"import tools.{PACKAGE}"], cwd=ROOT, capture_output=True, text=True)
    assert twice.returncode == 1 and f"ImportError: import {PACKAGE}, not tools.{PACKAGE}" in twice.stderr


def test_the_repository_holds_no_symlink():
    tracked = subprocess.run(["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert [line for line in tracked.splitlines() if line.startswith("120000")] == []


def test_an_editable_install_imports_the_builder_and_the_package_from_the_repository():
    """The README's test command installs editable: both must come from this tree, not from a copy in
    site-packages that edits would never reach (hatchling's force-include once put the builder there)."""
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import imagenet_sketch, {PACKAGE}; print(imagenet_sketch.__file__); print({PACKAGE}.__file__)",
        ],
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [Path(path).resolve() for path in found] == [ROOT / "imagenet_sketch.py", TOOLS / "__init__.py"]
