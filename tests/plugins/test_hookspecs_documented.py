"""Every hook has a docstring and is listed, with its real signature, in CONTRIBUTING.md."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from plugins import hookspecs
from pyqom.manager import make_plugin_manager

CONTRIBUTING = Path(__file__).resolve().parents[2] / "CONTRIBUTING.md"


def _specs() -> list[str]:
    pm = make_plugin_manager(autoload=False)
    return sorted(name for name in dir(pm.hook) if name.startswith("qom_"))


def test_there_are_hooks() -> None:
    assert "qom_register_types" in _specs()


@pytest.mark.parametrize("name", _specs())
def test_hookspec_has_a_real_docstring(name: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, name))
    assert doc and len(doc.split()) >= 10
    for param in inspect.signature(getattr(hookspecs, name)).parameters:
        assert f":param {param}:" in doc, f"{name} does not document {param}"


@pytest.mark.parametrize("name", _specs())
def test_hookspec_is_in_contributing(name: str) -> None:
    params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    assert f"{name}({params})" in CONTRIBUTING.read_text()


def test_every_hook_is_prefixed() -> None:
    public = [n for n, f in vars(hookspecs).items()
              if inspect.isfunction(f) and not n.startswith("_")]
    assert public and all(n.startswith("qom_") for n in public)
