"""The README's main command: the tour runs and shows real results."""

from pyqom import demo


def test_tour_runs_and_shows_qemu_answers(capsys, monkeypatch) -> None:
    monkeypatch.setenv("PYQOM_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert demo.main() == 0
    out = capsys.readouterr().out
    assert "qom-get mem1 size (partial path)" in out and "-> 1073741824" in out
    assert "GenericError: Parameter 'size' expects uint64" in out
    assert "attempt to add duplicate property 'mem1' to object (type 'container')" in out
    assert "b'hello, guest!'" in out
    assert out.rstrip().endswith('-> ["type"]')
