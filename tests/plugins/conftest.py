"""Fixtures of the plugin tests: iasl (shared with the ACPI table tests), and
pip-installing an example distribution for real."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from acpi_fixtures import iasl

__all__ = ["iasl", "pip_install_example"]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def pip_install_example(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``install(name)``: ``examples/NAME`` pip-installed (no dependencies) into a
    fresh directory, returned for ``PYTHONPATH``; skips without ``examples/``."""

    def install(name: str) -> Path:
        source = EXAMPLES / name
        if not source.is_dir():
            pytest.skip("the examples/ folder is not next to the tests")
        target = tmp_path_factory.mktemp("site")
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
             "--no-build-isolation", "--target", str(target), str(source)],
            capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return target

    return install
