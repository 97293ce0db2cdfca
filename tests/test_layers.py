"""The packages form floors, and an import only ever goes down (or stays on its floor):

    core (settings, errors, atomic writes, the dbt manifest)
      <- warehouse, embeddings, recommendations, quality, evaluation, experiments, serving, reports
      <- assets (Dagster assets, with their resources, partitions and dbt handle)
      <- orchestration (definitions, jobs, schedules, sensors)
      <- shopguide (command line, run launcher, producers)

so that a change on one floor can only break the floors above it, and any package can be
imported, tested or replaced without dragging in the ones above. Read from the source with
`ast`, so that an import inside a function (made lazy to keep start-up fast) counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

FLOORS = {
    "core": 0,
    "warehouse": 1,
    "embeddings": 1,
    "recommendations": 1,
    "quality": 1,
    "evaluation": 1,
    "experiments": 1,
    "serving": 1,
    "reports": 1,
    "assets": 2,
    "orchestration": 3,
    "shopguide": 4,
}


def imports_of(package: str) -> list[tuple[str, int, str]]:
    """(file, line, imported module) for every absolute import of another project package."""
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                if module.split(".")[0] in FLOORS and module.split(".")[0] != package:
                    found.append((str(path.relative_to(REPO)), node.lineno, module))
    return found


def package_graph() -> dict[str, dict[str, list[str]]]:
    """package -> imported package -> the places that import it."""
    graph: dict[str, dict[str, list[str]]] = {package: {} for package in FLOORS}
    for package in FLOORS:
        for file, line, module in imports_of(package):
            graph[package].setdefault(module.split(".")[0], []).append(f"{file}:{line} {module}")
    return graph


def test_every_top_level_package_has_a_floor():
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")}
    assert packages <= set(FLOORS), f"give these packages a floor in FLOORS: {packages - set(FLOORS)}"


def test_every_top_level_package_is_installed():
    # A package missing from pyproject's list imports from a checkout but not from an install
    # (a fresh `pip install .`, or the console script of an editable install).
    import fnmatch
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests", "bench"}
    missing = {name for name in packages if not any(fnmatch.fnmatch(name, pat) for pat in patterns)}
    assert not missing, f"add these packages to [tool.setuptools.packages.find] include: {missing}"


def test_no_package_imports_a_floor_above_it():
    upward = [
        f"{place} ({package}, floor {FLOORS[package]}, imports {target}, floor {FLOORS[target]})"
        for package, targets in package_graph().items()
        for target, places in targets.items()
        if FLOORS[target] > FLOORS[package]
        for place in places
    ]
    assert not upward, "imports going up a floor:\n" + "\n".join(upward)


def reachable(graph: dict[str, dict[str, list[str]]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_no_import_cycle_between_packages():
    graph = package_graph()
    reach = {package: reachable(graph, package) for package in graph}
    # Packages that reach each other: one tangle, however many paths lead around it.
    tangles = {
        tuple(sorted(other for other in reach[package] if package in reach[other]))
        for package in graph
        if package in reach[package]
    }
    assert not tangles, "packages importing each other, directly or round a loop: " + "; ".join(
        " <-> ".join(tangle) for tangle in sorted(tangles)
    )


def test_no_package_imports_another_ones_private_module():
    private = [
        f"{file}:{line} {module}"
        for package in FLOORS
        for file, line, module in imports_of(package)
        if any(part.startswith("_") for part in module.split(".")[1:])
    ]
    assert not private, "private modules imported from another package:\n" + "\n".join(private)
