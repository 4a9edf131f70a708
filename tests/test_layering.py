"""Imports only point down the layers of DESIGN.md; checked on the source with ast."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: package -> top-level imports it must never make (at run time or under TYPE_CHECKING)
FORBIDDEN = {
    "qom": {"plugins", "devices", "backends", "unicorn", "pluggy"},
    "backends": {"devices", "unicorn"},
    "devices": {"unicorn"},
}
#: modules allowed to import unicorn: the address-space plugin only
UNICORN_OWNERS = {"plugins/address_space.py"}
QOM_ALLOWED_THIRD_PARTY = {"attrs"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & FORBIDDEN[package])
        for path in _modules(package)
        if _imports(path) & FORBIDDEN[package]
    }
    assert offenders == {}


def test_qom_uses_only_stdlib_and_attrs() -> None:
    import sys

    stdlib = set(sys.stdlib_module_names)
    for path in _modules("qom"):
        extra = _imports(path) - stdlib - QOM_ALLOWED_THIRD_PARTY - {"qom", "__future__"}
        assert extra == set(), f"{path.relative_to(ROOT)} imports {sorted(extra)}"


def test_only_the_address_space_imports_unicorn() -> None:
    for package in ("qom", "plugins", "devices", "backends"):
        for path in _modules(package):
            rel = str(path.relative_to(ROOT))
            if "unicorn" in _imports(path):
                assert rel in UNICORN_OWNERS, f"{rel} imports unicorn"


def test_plugin_marker_module_imports_only_pluggy() -> None:
    assert _imports(ROOT / "plugins" / "__init__.py") == {"pluggy"}


def test_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from plugins import hookimpl\nimport unicorn.x86_const\n")
    assert _imports(bad) == {"plugins", "unicorn"}
