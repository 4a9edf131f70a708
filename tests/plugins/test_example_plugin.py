"""The example third-party plugin, installed for real and found through its entry point."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pyqom-example-plugin"

USE_IT = textwrap.dedent("""
    import json
    import qom
    from pyqom.manager import make_plugin_manager, make_tree
    tree = make_tree(make_plugin_manager())
    try:
        qom.object_add(tree, {"qom-type": "example-greeter", "id": "g1",
                              "greeting": "hello", "repeat": 2})
        print(json.dumps({"message": qom.qom_get(tree, "/objects/g1", "message")}))
    except qom.QomError as err:
        print(json.dumps({"error": str(err)}))
""")


@pytest.fixture(scope="module")
def installed_example(pip_install_example) -> Path:
    """The example distribution pip-installed (no dependencies) into a fresh directory."""
    target = pip_install_example(EXAMPLE.name)
    assert list(target.glob("pyqom_example_plugin-*.dist-info/entry_points.txt"))
    return target


def _run(site: Path, **env_overrides: str) -> str:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYQOM_DISABLE_PLUGIN_AUTOLOAD", "PYQOM_DISABLED_PLUGINS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.update(env_overrides)
    done = subprocess.run([sys.executable, "-c", USE_IT], env=env, check=True,
                          capture_output=True, text=True, cwd=site)
    return done.stdout.strip()


def test_found_through_the_entry_point_alone(installed_example: Path) -> None:
    assert _run(installed_example) == '{"message": "hello hello"}'


def test_autoload_off_switch(installed_example: Path) -> None:
    out = _run(installed_example, PYQOM_DISABLE_PLUGIN_AUTOLOAD="1")
    assert out == ('{"error": "Parameter \'qom-type\' does not accept value '
                   '\'example-greeter\'"}')


def test_blocklist(installed_example: Path) -> None:
    out = _run(installed_example, PYQOM_DISABLED_PLUGINS="example")
    assert "does not accept value 'example-greeter'" in out


def test_its_own_tests_pass_with_the_shipped_fixtures(installed_example: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(installed_example),
                                                      env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        env=env, capture_output=True, text=True, cwd=installed_example,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b[1-9]\d* passed", done.stdout) and "failed" not in done.stdout
