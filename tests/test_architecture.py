"""The package's shape: no import cycle, a contracts module that is a leaf, and the light commands
(`--help`, watch's polling, rollback's metadata reads) answering without TensorFlow."""
import ast
import pathlib
import subprocess
import sys

import pytest

from project_helpers import REPO

PACKAGES = ("pipeline", "components")


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: pathlib.Path, known: set[str]) -> set[str]:
    """The package modules a file imports at module level or in a function: a cycle through a lazy import
    is still a cycle in the design."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(path): path for package in PACKAGES for path in (REPO / package).rglob("*.py")}
    known = set(files)
    return {name: imported_modules(path, known) - {name} for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting, done = [], set()

    def visit(name):
        if name in visiting:
            return visiting[visiting.index(name):] + [name]
        if name in done:
            return None
        visiting.append(name)
        for target in sorted(graph[name]):
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        done.add(name)
        return None

    for name in sorted(graph):
        cycle = visit(name)
        if cycle:
            return cycle
    return None


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert "pipeline.cli" in graph and "components.contracts" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_contracts_is_a_leaf():
    tree = ast.parse((REPO / "components" / "contracts.py").read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def loaded_modules(code: str) -> set[str]:
    completed = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                               capture_output=True, text=True, check=True)
    return set(completed.stdout.split())


@pytest.mark.parametrize("modules", [
    "pipeline.cli",
    "pipeline.watch, pipeline.metadata_store",
    "pipeline.rollback, pipeline.summary",
    "pipeline.report, pipeline.status",
])
def test_light_modules_do_not_load_tensorflow_or_tfx(modules):
    loaded = loaded_modules(f"import {modules}")
    assert {name.split(".")[0] for name in loaded} & {"tensorflow", "tfx", "tensorflow_model_analysis"} == set()


def test_help_answers_without_tensorflow():
    completed = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline", "--help"],
                               capture_output=True, text=True)
    assert completed.returncode == 0
    assert "rollback" in completed.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines()}
    assert "pipeline.cli" in imported
    assert not [name for name in imported if name.split(".")[0] == "tensorflow"]
