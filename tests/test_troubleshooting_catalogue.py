"""The hardening catalogue stays whole: at least 40 rows, each naming a test that exists, every hardening
test listed, and the troubleshooting page's table (docs/troubleshooting.md, linked from the README) generated
from it."""

from __future__ import annotations

import importlib
import re

from .conftest import REPO
from .hardening_catalogue import CATALOGUE, TROUBLESHOOTING, table_block

# every test module: its tests marked @pytest.mark.hardening are the catalogue's rows
MODULES = sorted(path.stem for path in (REPO / "tests").glob("test_*.py"))


def _test_ids(module_name: str) -> set[str]:
    """``path::function`` or ``path::function[id]`` for every test in a module marked ``hardening``."""
    module = importlib.import_module(f"tests.{module_name}")
    path = f"tests/{module_name}.py"
    ids = set()
    for name, func in vars(module).items():
        if not name.startswith("test_") or not callable(func) or func.__module__ != module.__name__:
            continue
        marks = getattr(func, "pytestmark", [])
        if not any(m.name == "hardening" for m in marks):
            continue
        params = [m for m in marks if m.name == "parametrize"]
        if params:
            ids |= {f"{path}::{name}[{i}]" for i in params[0].kwargs["ids"]}
        else:
            ids.add(f"{path}::{name}")
    return ids


def test_at_least_40_entries_with_unique_tests():
    tests = [row[3] for row in CATALOGUE]
    assert len(CATALOGUE) >= 40
    assert len(set(tests)) == len(tests), [t for t in tests if tests.count(t) > 1]


def test_every_hardening_test_is_catalogued_and_every_row_exists():
    listed = {row[3] for row in CATALOGUE}
    hardening = set().union(*(_test_ids(m) for m in MODULES))
    assert sorted(hardening - listed) == []
    for test in listed - hardening:  # rows naming tests in the other modules
        path, _, node = test.partition("::")
        function = node.split("[")[0]
        assert re.search(rf"^def {function}\(", (REPO / path).read_text(), re.M), test


def test_troubleshooting_table_is_current_and_linked():
    assert table_block() in TROUBLESHOOTING.read_text(), "regenerate with: python -m tests.hardening_catalogue --write-docs"
    assert "(docs/troubleshooting.md)" in (REPO / "README.md").read_text()
