"""The engine (jobs) stands alone: it imports nothing of the studio or the characters, and
its modules import each other without a cycle.

The imports are read from the source by grimp, the graph import-linter checks. Imports
inside functions count as much as those at the top of a module, so an import moved into a
function to dodge a cycle, or to reach the studio from the engine, is still seen.
"""

from __future__ import annotations

import graphlib
from itertools import pairwise

import grimp
import pytest

ENGINE = "jobs"
SCENE_CODE = ("studio", "characters")
# Migrations are history, kept as Django wrote them; they may name any app's code.
MIGRATIONS = "jobs.migrations"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(ENGINE, *SCENE_CODE, cache_dir=None)


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def _engine_modules(graph: grimp.ImportGraph) -> set[str]:
    return {m for m in graph.find_descendants(ENGINE) | {ENGINE} if not _within(m, MIGRATIONS)}


def _import_lines(graph: grimp.ImportGraph, importer: str, imported: str) -> list[str]:
    """Where `importer` imports `imported`, as `module:line: source`."""
    details = graph.get_import_details(importer=importer, imported=imported)
    return [f"{importer}:{d['line_number']}: {d['line_contents']}" for d in details]


def test_the_engine_imports_nothing_of_the_studio_or_the_characters(graph):
    illegal = [
        line
        for module in sorted(_engine_modules(graph))
        for imported in sorted(graph.find_modules_directly_imported_by(module))
        if imported.partition(".")[0] in SCENE_CODE
        for line in _import_lines(graph, module, imported)
    ]
    assert not illegal, "The engine imports scene code:\n" + "\n".join(illegal)


def _first_cycle(graph: grimp.ImportGraph, package: str, modules: set[str]) -> list[str]:
    """A cycle among the children of `package` (its own __init__ counting as one of them),
    each child standing for its whole subtree; as lines naming an import of each step."""
    depth = package.count(".") + 2

    def child(module: str) -> str:
        return package if module == package else ".".join(module.split(".")[:depth])

    subtree = {m for m in modules if _within(m, package)}
    imports: dict[str, set[str]] = {child(m): set() for m in subtree}
    example: dict[tuple[str, str], tuple[str, str]] = {}
    for importer in subtree:
        for imported in graph.find_modules_directly_imported_by(importer) & subtree:
            step = (child(importer), child(imported))
            if step[0] != step[1]:
                imports[step[0]].add(step[1])
                example.setdefault(step, (importer, imported))
    try:
        graphlib.TopologicalSorter(imports).prepare()
    except graphlib.CycleError as error:
        # graphlib lists each node before the one that imports it: reversed, each imports the next.
        cycle = error.args[1][::-1]
        lines = [" -> ".join(cycle)]
        for step in pairwise(cycle):
            lines += _import_lines(graph, *example[step])[:1]
        return lines
    return []


def test_the_engine_has_no_import_cycle(graph):
    """Checked in every package among its children, so a cycle between two modules shows
    up at the package that holds them both, and one between subpackages shows up too."""
    modules = _engine_modules(graph)
    packages = sorted(m for m in modules if graph.find_children(m))
    cycles = [lines for package in packages if (lines := _first_cycle(graph, package, modules))]
    assert not cycles, "Import cycles in the engine:\n" + "\n\n".join(
        "\n".join(lines) for lines in cycles
    )


def test_the_provider_adapters_know_no_engine_rows(graph):
    """jobs.models imports the adapters (an account's capabilities, a job's sent request);
    an adapter takes anything with a kind, a base URL, a model and a key."""
    chain = graph.find_shortest_chain(
        importer="jobs.providers", imported="jobs.models", as_packages=True
    )
    assert chain is None, "jobs.providers reaches jobs.models: " + " -> ".join(chain)
