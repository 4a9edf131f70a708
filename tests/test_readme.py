"""The README's two commands exist, and CI runs the README's test command."""

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


def test_the_nvdimm_example_runs(monkeypatch) -> None:
    monkeypatch.setenv("PYQOM_DISABLE_PLUGIN_AUTOLOAD", "1")
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("<!-- nvdimm-example -->")
    fence = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
    exec(compile("\n".join(lines[fence + 1:end]), "README.md", "exec"), {})
