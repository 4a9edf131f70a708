"""QEMU 7.2's readline, key by key; the expected bytes are what QEMU 7.2 writes for
the same keys (seen on a pseudo-terminal; ``tests/conformance/test_hmp_terminal.py``
compares whole sessions with the real binary)."""

from __future__ import annotations

import pytest

from plugins.monitor.readline import MAX_LINE, Readline


class Line:
    """A readline whose output and entered lines are recorded."""

    def __init__(self, candidates: list[str] | None = None) -> None:
        self.out: list[bytes] = []
        self.entered: list[str] = []
        self.candidates = candidates or []
        self.rl = Readline(self.out.append, self._run, self._complete)

    def _run(self, line: str) -> None:
        self.entered.append(line)
        self.rl.show_prompt()

    def _complete(self, text: str) -> tuple[list[str], int]:
        word = text.rsplit(" ", 1)[-1]
        return [c for c in self.candidates if c.startswith(word)], len(word)

    def keys(self, data: bytes) -> bytes:
        self.out.clear()
        self.rl.feed(data)
        return b"".join(self.out)

    def type(self, text: bytes) -> None:
        for byte in text:
            self.keys(bytes([byte]))


def test_each_key_redraws_the_line() -> None:
    line = Line()
    assert line.keys(b"i") == b"i\x1b[K"
    assert line.keys(b"n") == b"\x1b[Din\x1b[K"
    line.type(b"fo")
    assert line.keys(b"\x1b[D") == b"\x1b[D"
    assert line.keys(b"X") == b"\x1b[D" * 3 + b"infXo\x1b[K\x1b[D"


@pytest.mark.parametrize(("keys", "output"), [
    (b"\x1b[1~", b"\x1b[D" * 5), (b"\x1b[4~", b""), (b"\x1bOH", b"\x1b[D" * 5),
    (b"\x01", b"\x1b[D" * 5), (b"\x1b[H", b""), (b"\x0b", b""), (b"\x15", b""),
    (b"\x0e", b""), (b"\x10", b""), (b"\x1b[2~", b""), (b"\x1bx", b""),
])
def test_movement_and_keys_qemu_ignores(keys: bytes, output: bytes) -> None:
    line = Line()
    line.type(b"abcde")
    assert line.keys(keys) == output


def test_delete_backspace_and_ctrl_l() -> None:
    line = Line()
    line.type(b"abcXdef")
    line.keys(b"\x1b[D" * 3)
    assert line.keys(b"\x04") == b"\x1b[D" * 4 + b"abcXef\x1b[K\x1b[D\x1b[D"
    assert line.keys(b"\x1b[3~") == b"\x1b[D" * 4 + b"abcXf\x1b[K\x1b[D"
    assert line.keys(b"\x7f") == b"\x1b[D" * 4 + b"abcf\x1b[K\x1b[D"
    assert line.keys(b"\x08") == b"\x1b[D" * 3 + b"abf\x1b[K\x1b[D"
    line.keys(b"\x05")
    assert line.keys(b"\x0c") == b"\x1b[2J\x1b[1;1H(qemu) abf\x1b[K"
    empty = Line()
    assert empty.keys(b"\x04\x7f\x1b[D") == b""   # Ctrl-D on an empty line: nothing


def test_ctrl_right_inserts_its_tail_and_8bit_csi_keeps_the_parameter() -> None:
    line = Line()
    assert line.keys(b"\x1b[1;5C") == b"5\x1b[K\x1b[D5C\x1b[K"
    line = Line()
    line.type(b"abc")
    line.keys(b"\x1b[D\x1b[D\x1b[3~")              # the parameter is now 3
    assert line.keys(b"\x9b~") == b"\x1b[Da\x1b[K"  # 0x9b, then ~: delete again


def test_ctrl_w_as_qemu() -> None:
    line = Line()
    line.type(b"foo bar  baz  ")
    assert line.keys(b"\x17") == b"\x1b[D" * 14 + b"foo bar  \x1b[K"
    line.keys(b"\x17")
    assert bytes(line.rl.line) == b"foo "
    lead = Line()
    lead.type(b" foo")
    lead.keys(b"\x17")
    assert bytes(lead.rl.line) == b""      # QEMU never looks at byte 0


def test_enter_and_history() -> None:
    line = Line()
    assert line.keys(b"\x1b[A") == b""
    line.keys(b"one\rtwo\r\rone\r")
    assert line.entered == ["one", "two", "", "one"]
    assert line.rl.history == [b"two", b"one"]
    assert line.keys(b"\x1b[A").endswith(b"one\x1b[K")
    assert line.keys(b"\x1b[F").endswith(b"two\x1b[K")    # ESC[F is Up, as in QEMU
    assert line.keys(b"\x1b[A") == b""
    assert line.keys(b"\x1b[B").endswith(b"one\x1b[K")
    assert line.keys(b"\x1b[E") == b"\x1b[D" * 3 + b"\x1b[K"
    assert line.keys(b"\x1b[B") == b""


def test_history_keeps_64_lines() -> None:
    line = Line()
    for number in range(70):
        line.keys(b"c%d\r" % number)
    assert len(line.rl.history) == 64 and line.rl.history[0] == b"c6"


def test_line_length_is_capped() -> None:
    line = Line()
    line.keys(b"a" * (MAX_LINE + 100))
    assert len(line.rl.line) == MAX_LINE
    assert line.keys(b"b") == b""
    line.keys(b"\r")
    assert line.entered == ["a" * MAX_LINE]


def test_one_completion_inserts_it_and_a_space() -> None:
    line = Line(["info", "dir/"])
    line.type(b"in")
    assert line.keys(b"\t") == b"\x1b[D\x1b[Dinfo \x1b[K"
    line.type(b"di")
    assert line.keys(b"\t").endswith(b"info dir/\x1b[K")


def test_several_completions_are_listed_in_columns() -> None:
    line = Line(["quit", "q", "qom-set", "qom-get", "qom-list", "qemu-io", "q"])
    line.type(b"q")
    assert line.keys(b"\t") == (b"\r\nq         qemu-io   qom-get   qom-list  qom-set   quit      "
                                b"\r\n(qemu) q\x1b[K")
    stats = Line(["stats", "status"])
    stats.type(b"stat")
    stats.keys(b"\x1b[D\x1b[D")
    assert stats.keys(b"\t") == (b"\r\nstats     status    \r\n(qemu) statat\x1b[K"
                                 b"\x1b[D\x1b[D")
