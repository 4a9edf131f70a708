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
