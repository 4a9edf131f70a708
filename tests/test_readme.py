"""The README's two commands exist, CI runs the README's test command, and the
README's examples run."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _command_after(marker: str) -> str:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index(f"<!-- {marker} -->")
    fence = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    return lines[fence + 1].strip()


def test_readme_has_both_commands() -> None:
    assert "pip install" in _command_after("main-command")
    assert "python -m pyqom.guest.demo" in _command_after("main-command")
    assert _command_after("test-command").endswith(".venv/bin/pytest")


def test_ci_reads_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in ci and "README.md" in ci


def test_the_api_example_runs(monkeypatch) -> None:
    monkeypatch.setenv("PYQOM_DISABLE_PLUGIN_AUTOLOAD", "1")
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("<!-- api-example -->")
    fence = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
    exec(compile("\n".join(lines[fence + 1:end]), "README.md", "exec"), {})


def test_the_additions_example_runs(tmp_path) -> None:
    """The regenerate / map / record-and-replay block, run by bash in a scratch
    directory whose ``.venv`` is this test's environment."""
    import shutil
    import subprocess
    import sys

    import pytest

    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 not installed (Debian: apt-get install "
                    "qemu-system-x86); CI installs it")
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("<!-- additions-example -->")
    fence = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", "\n".join(lines[fence + 1:end])],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                               "PYQOM_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    args = (tmp_path / "machine.args").read_text().strip()
    assert args in out and args == lines[lines.index("cat machine.args", fence) + 1][2:]
    assert (tmp_path / "live.svg").read_text() == (tmp_path / "cold.svg").read_text()
    devices = [line for line in out if '"addr": 4294967296' in line]
    assert len(devices) == 2 and devices[0] == devices[1]     # pyqom and QEMU, cold
    assert "session.jsonl: replayed, 8 lines matched" in out
    assert out[-1] == "differs from QEMU 7.2"
    assert out[-5] == "session.jsonl:13: first difference (monitor 0, connection 0)"
    assert "CommandNotFound" in out[-2]


def _block_after(marker: str) -> str:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index(f"<!-- {marker} -->")
    fence = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
    return "\n".join(lines[fence + 1:end])


def _run_shell(command: str) -> subprocess.CompletedProcess[str]:
    """A README shell command, with ``.venv/bin/pyqom`` the pyqom of this Python."""
    command = command.replace(".venv/bin/pyqom", f"{shlex.quote(sys.executable)} -m pyqom")
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYQOM_DISABLE_PLUGIN_AUTOLOAD": "1"})


def test_the_numa_example_runs() -> None:
    """The NUMA block's HMP screen: the nodes, their CPUs and memory."""
    result = _run_shell(_block_after("numa-example"))
    assert result.returncode == 0, result.stderr
    for line in ("2 nodes", "node 0 cpus: 0 1", "node 0 size: 1024 MB", "node 1 cpus: 2 3"):
        assert line in result.stdout.replace("\r", ""), result.stdout


def test_the_plan_example_runs(monkeypatch) -> None:
    monkeypatch.setenv("PYQOM_DISABLE_PLUGIN_AUTOLOAD", "1")
    exec(compile(_block_after("plan-example"), "README.md", "exec"), {})


def test_the_plan_qmp_command_runs() -> None:
    result = _run_shell(_block_after("plan-qmp-command"))
    assert result.returncode == 0, result.stderr
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert replies[2]["return"]["fits"] is True
    assert replies[2]["return"]["devices"][0]["addr"] == 0x100000000
    assert replies[3]["return"]["free-slots"] == 3
    assert replies[4]["return"].startswith("d1: slot 0, addr 0x100000000")


def test_the_check_config_command_prints_what_the_readme_shows() -> None:
    result = _run_shell(_block_after("check-config-command"))
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("<!-- check-config-command -->")
    shown_at = next(i for i in range(start + 4, len(lines)) if lines[i] == "```")
    end = next(i for i in range(shown_at + 1, len(lines)) if lines[i] == "```")
    assert result.stderr + result.stdout == "\n".join(lines[shown_at + 1:end]) + "\n"


def test_the_objects_example_runs() -> None:
    import os
    import subprocess
    import sys

    command = _command_after("objects-example").replace(".venv/bin/pyqom",
                                                        f"{sys.executable} -m pyqom")
    env = {**os.environ, "PYQOM_DISABLE_PLUGIN_AUTOLOAD": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60,
                            env=env)
    assert (result.returncode, result.stderr) == (0, "")
    replies = result.stdout.splitlines()[1:]
    assert replies[:4] == ['{"return": {}}', '{"return": [0]}', '{"return": {}}',
                           '{"return": true}']


def test_the_nvdimm_example_runs(monkeypatch) -> None:
    monkeypatch.setenv("PYQOM_DISABLE_PLUGIN_AUTOLOAD", "1")
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("<!-- nvdimm-example -->")
    fence = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
    exec(compile("\n".join(lines[fence + 1:end]), "README.md", "exec"), {})
