"""The import contract: layers point down, built-ins are independent peers.

Checked on the source with ``ast``, so imports under ``TYPE_CHECKING`` and
imports inside functions count as much as the ones at the top (CONTRIBUTING.md,
"Layers", describes the rules this encodes).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names) | {"__future__"}

#: The contract: what a plugin imports, besides ``qom``.
CONTRACT = {"plugins", "plugins.hookspecs", "plugins.services", "plugins.commands",
            "plugins.phases", "plugins.aml", "plugins.memdev", "plugins.device_events",
            "plugins.dimm"}
#: Built-in plugin packages: peers that never import each other.
BUILTINS = ("plugins.address_space", "plugins.acpi", "plugins.monitor", "plugins.nvdimm")
#: Built-ins held to what a third-party plugin may use: the contract and ``qom``
#: (and their own package), nothing of ``devices`` or ``backends``.
CONTRACT_ONLY = ("plugins.nvdimm",)
#: The only module allowed to import unicorn.
UNICORN_OWNER = "plugins.address_space.engine"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, dotted, at any level of the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # ``from plugins import aml`` imports the module plugins.aml
            names.update(f"{node.module}.{alias.name}" for alias in node.names
                         if _is_module(f"{node.module}.{alias.name}"))
    return names


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _sources() -> dict[str, set[str]]:
    sources: dict[str, set[str]] = {}
    for package in ("qom", "plugins", "devices", "backends", "pyqom"):
        for path in sorted((ROOT / package).rglob("*.py")):
            sources[_module_name(path)] = _imports(path)
    return sources


SOURCES = _sources()
OURS = {"qom", "plugins", "devices", "backends", "pyqom"}


def _ours(imported: set[str]) -> set[str]:
    return {name for name in imported if name.split(".")[0] in OURS}


def _third_party(imported: set[str]) -> set[str]:
    return {name.split(".")[0] for name in imported} - STDLIB - OURS


def _is_contract(name: str) -> bool:
    return name in CONTRACT


def _builtin_of(name: str) -> str | None:
    return next((b for b in BUILTINS if name == b or name.startswith(b + ".")), None)


def _allowed(module: str, imported: str) -> bool:
    """Whether ``module`` may import ``imported`` (one of ours)."""
    top = imported.split(".")[0]
    if module.startswith("pyqom"):
        return True
    if top == "pyqom":
        return False                              # nothing imports the composition root
    if module.startswith("qom"):
        return top == "qom"
    if _is_contract(module):
        return top == "qom" or _is_contract(imported)
    if top == "qom" or _is_contract(imported):
        return True
    if module.startswith("backends"):
        return top == "backends"
    if module.startswith("devices"):
        # devices use the abstract backend only, never a concrete one
        return top == "devices" or imported in ("backends", "backends.base")
    builtin = _builtin_of(module)
    assert builtin is not None, f"{module} is in no layer"
    if _builtin_of(imported) is not None:
        return _builtin_of(imported) == builtin   # never another built-in
    return top in ("devices", "backends")


def test_every_module_is_in_a_layer() -> None:
    for module in SOURCES:
        assert (module.split(".")[0] in ("qom", "devices", "backends", "pyqom")
                or _is_contract(module) or _builtin_of(module) is not None), module


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_imports_point_down(module: str) -> None:
    offenders = sorted(name for name in _ours(SOURCES[module]) if not _allowed(module, name))
    assert offenders == [], f"{module} may not import {offenders}"


def test_qom_uses_only_stdlib_and_attrs() -> None:
    for module, imported in SOURCES.items():
        if module.startswith("qom"):
            assert _third_party(imported) <= {"attrs"}, module


def test_the_contract_uses_only_qom_pluggy_and_attrs() -> None:
    for module in CONTRACT:
        assert _third_party(SOURCES[module]) <= {"pluggy", "attrs"}, module
    assert _ours(SOURCES["plugins"]) == set()     # the marker module: pluggy only


def test_only_the_engine_imports_unicorn() -> None:
    importers = sorted(module for module, imported in SOURCES.items()
                       if "unicorn" in _third_party(imported))
    assert importers == [UNICORN_OWNER]


@pytest.mark.parametrize("package", CONTRACT_ONLY)
def test_contract_only_builtins_import_only_the_contract_and_qom(package: str) -> None:
    modules = [module for module in SOURCES if _builtin_of(module) == package]
    assert modules, f"{package} has no modules"
    for module in modules:
        offenders = sorted(name for name in _ours(SOURCES[module])
                           if not (name.split(".")[0] == "qom" or _is_contract(name)
                                   or _builtin_of(name) == package))
        assert offenders == [], f"{module} may import only the contract and qom: {offenders}"
        assert _third_party(SOURCES[module]) <= {"attrs"}, module


def test_the_checker_sees_violations(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                   "    from plugins.monitor.control import VmControl\n"
                   "def f():\n    from plugins import aml\n")
    assert {"plugins.monitor.control", "plugins.aml"} <= _imports(bad)
    assert not _allowed("plugins.acpi.plugin", "plugins.monitor.control")
    assert not _allowed("devices.machine", "pyqom.vm")
    assert not _allowed("devices.pc_dimm", "backends.ram")
    assert not _allowed("plugins.services", "devices.machine")
    assert _allowed("plugins.acpi.plugin", "plugins.acpi.registers")
