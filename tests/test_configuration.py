"""One declaration of the environment (resources/core/config.py): the code reads nothing it lacks,
the documentation's table is generated from it, and a bad value names its variable."""

import re

import pytest

from resources.core.config import DOC, LakehouseEnvironment, table, variable_names
from resources.core.settings import REPO_ROOT

pytestmark = pytest.mark.fast

READ_BY = ["assets", "resources", "teams", "benchmarks", "dbt_project", "deploy", "Makefile", "workspace.yaml"]
SKIP = {"target", "logs", "__pycache__"}


def _named_in_code() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for top in READ_BY:
        path = REPO_ROOT / top
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            if SKIP & set(file.relative_to(REPO_ROOT).parts) or file.suffix in (".pyc", ".parquet", ".zip"):
                continue
            for name in re.findall(r"\bLAKEHOUSE_[A-Z0-9_]*[A-Z0-9]\b", file.read_text(errors="ignore")):
                found.setdefault(name, set()).add(str(file.relative_to(REPO_ROOT)))
    return found


def test_every_variable_the_code_names_is_declared():
    named = _named_in_code()
    assert len(named) >= 20  # the scan finds the variables at all
    undeclared = {name: sorted(files) for name, files in named.items() if name not in variable_names()}
    assert not undeclared, f"declare these in resources/core/config.py: {undeclared}"


def test_the_documented_table_is_the_declaration():
    text = DOC.read_text()
    assert table() in text, "run `python -m resources.core.config` to regenerate docs/configuration.md's table"
    for name in variable_names():
        assert text.count(f"| `{name}` |") == 1, name


def test_values_are_typed_and_a_bad_one_is_named():
    config = LakehouseEnvironment.from_environ(
        {"LAKEHOUSE_CATALOG_KEEP": "2", "LAKEHOUSE_REPORT_WORKERS": "", "LAKEHOUSE_SPARK_MASTER": "local[1]"}
    )
    assert (config.catalog_keep, config.report_workers, config.spark_master) == (2, None, "local[1]")
    assert LakehouseEnvironment.from_environ({}).duckdb_memory == "3GB"  # the default
    for name, bad in (("LAKEHOUSE_CATALOG_KEEP", "0"), ("LAKEHOUSE_REPORT_WORKERS", "$(echo 2)")):
        with pytest.raises(ValueError, match=re.escape(f"{name}='{bad}'")):
            LakehouseEnvironment.from_environ({name: bad})


def test_private_dagster_names_are_imported_in_one_place_and_match_the_installed_dagster():
    import dagster as dg

    from resources.core import dagster_private

    assert dg.__version__.startswith(dagster_private.PINNED), (dg.__version__, dagster_private.PINNED)
    assert all(getattr(dagster_private, name) is not None for name in dagster_private.__all__)
    importers = [
        str(path.relative_to(REPO_ROOT))
        for top in ("assets", "resources", "teams", "tests", "benchmarks")
        for path in (REPO_ROOT / top).rglob("*.py")
        if re.search(r"\bdagster\._", path.read_text())
        and path.name not in ("dagster_private.py", "test_configuration.py")
    ]
    assert not importers, f"import Dagster's private names through resources/core/dagster_private.py: {importers}"


def _project_imports() -> dict[str, set[str]]:
    """Module -> the project modules it imports at run time (typing-only imports left out)."""
    import ast

    modules = {}
    for top in ("assets", "resources", "teams"):
        for path in (REPO_ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = ast.parse(path.read_text())
    edges: dict[str, set[str]] = {}
    for name, tree in modules.items():
        typing_only = {
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for n in ast.walk(block)
        }
        found = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.module:
                found |= {c for c in [node.module, *(f"{node.module}.{a.name}" for a in node.names)] if c in modules}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in modules}
        edges[name] = found - {name}
    return edges


def test_no_import_cycles_between_the_projects_modules():
    edges = _project_imports()
    assert len(edges) > 50
    cycles = []

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False

    for module, imported in edges.items():
        cycles += [(module, other) for other in imported if module < other and reaches(other, module, set())]
    assert not cycles, f"modules that import each other, directly or through others: {cycles}"


def test_no_private_name_is_imported_from_another_module():
    private = []
    for top in ("assets", "resources", "teams", "benchmarks", "tests"):
        for path in (REPO_ROOT / top).rglob("*.py"):
            for line in path.read_text().splitlines():
                match = re.match(r"\s*from (assets|resources|teams)[\w.]* import (.*)", line)
                if match and re.search(r"(^|[ ,(])_\w", match.group(2)):
                    private.append(f"{path.relative_to(REPO_ROOT)}: {line.strip()}")
    assert not private, private


def test_the_slowest_first_order_names_test_modules():
    """A misspelt name would silently drop a module from the front of `make test`'s queue."""
    from tests.conftest import SLOWEST_FIRST

    assert [m for m in SLOWEST_FIRST if not (REPO_ROOT / "tests" / f"{m}.py").exists()] == []
