"""The second example distribution (devices nobody wrote into pyqom), installed for
real: its own tests pass, with pyqom finding it through its entry point alone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pyqom-example-devices"


@pytest.fixture(scope="module")
def installed(pip_install_example) -> Path:
    return pip_install_example(EXAMPLE.name)


def _env(site: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYQOM_DISABLE_PLUGIN_AUTOLOAD", "PYQOM_DISABLED_PLUGINS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.update(overrides)
    return env


def test_its_own_tests_pass_with_autoload_on(installed: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         str(EXAMPLE / "tests")], env=_env(installed), capture_output=True, text=True,
        cwd=installed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b6 passed", done.stdout), done.stdout   # nothing skipped


def test_blocking_it_by_name_removes_its_devices(installed: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pyqom", "-m", "1G", "-display", "none", "-nodefaults",
         "-device", "example-ports"], env=_env(installed, PYQOM_DISABLED_PLUGINS="example-devices"),
        capture_output=True, text=True, cwd=installed, stdin=subprocess.DEVNULL, timeout=30)
    assert (done.returncode, done.stderr) == (
        1, "pyqom: -device example-ports: 'example-ports' is not a valid device model name\n")
