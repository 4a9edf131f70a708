"""Shared test set-up: pyqom's own pytest plugin provides the fixtures."""

import pytest

pytest_plugins = ["pyqom.testing"]


@pytest.fixture(autouse=True)
def _no_installed_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test picks up a third-party plugin that happens to be installed (the
    example plugin is, in CI): autoloading is off unless a test turns it on."""
    monkeypatch.setenv("PYQOM_DISABLE_PLUGIN_AUTOLOAD", "1")
