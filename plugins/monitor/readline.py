"""QEMU 7.2's monitor readline (``util/readline.c``), byte for byte.

An interactive HMP monitor feeds every byte it reads to :meth:`Readline.feed`.
The echo is QEMU's: after each byte the changed line is redrawn (``ESC[D`` back
to where the terminal's cursor is, the whole line, ``ESC[K``), then the cursor
is moved with ``ESC[C``/``ESC[D``.  Nothing is printed when a byte changes
nothing.  The keys are QEMU's and only QEMU's:

==================  =========================================================
Enter (CR or LF)    run the line (it goes to the history unless empty)
Backspace, DEL      delete before the cursor
Ctrl-D, ``ESC[3~``  delete under the cursor (an empty line stays as it is)
Left, Right         ``ESC[D``, ``ESC[C``
Home, End           Ctrl-A/Ctrl-E, ``ESC[1~``/``ESC[4~``, ``ESC O H``/``ESC O F``
Up, Down            ``ESC[A``/``ESC[B`` (also ``ESC[F``/``ESC[E``): the history
                    (64 lines, no duplicates: a repeated line moves to the end)
Ctrl-W              delete the word before the cursor
Ctrl-L              clear the screen, reprint the prompt and the line
Tab                 completion (see :meth:`Readline.complete`)
==================  =========================================================

Any other control byte is ignored (Ctrl-K, Ctrl-U, Ctrl-N and Ctrl-P do nothing
in QEMU 7.2), and the line holds at most 4,095 bytes (``READLINE_CMD_BUF_SIZE``):
bytes past that are dropped, so the echo of a long line stays bounded.  (QEMU
lets an insertion in the middle of a full line grow it to 4,096 bytes and
corrupt its cursor; pyqom drops that byte too.)

Output goes through ``write`` as bytes; ``\\n`` becomes ``\\r\\n`` as QEMU's
``monitor_puts`` writes it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

#: QEMU's READLINE_CMD_BUF_SIZE: the longest line, in bytes
MAX_LINE = 4095
#: QEMU's READLINE_MAX_CMDS: history lines kept
HISTORY_SIZE = 64
#: QEMU's READLINE_MAX_COMPLETIONS
MAX_COMPLETIONS = 256

#: ``completer(text before the cursor)`` -> (candidates, length of the word they complete)
Completer = Callable[[str], tuple[list[str], int]]


class _Esc(enum.Enum):
    NORM = 0
    ESC = 1
    CSI = 2
    SS3 = 3


class Readline:
    """One monitor's line editor.

    :param write: sends bytes to the terminal.
    :param run: called with each entered line (decoded as UTF-8, invalid bytes
        replaced); it prints the command's output and the next prompt.
    :param completer: finds Tab completions, or ``None`` for none.
    :param prompt: printed by :meth:`show_prompt`.
    """

    def __init__(self, write: Callable[[bytes], None], run: Callable[[str], None],
                 completer: Completer | None = None, prompt: str = "(qemu) ") -> None:
        self._write = write
        self._run = run
        self._completer = completer
        self.prompt = prompt
        self.line = bytearray()
        self.cursor = 0
        self._shown = bytearray()    # what the terminal shows after the prompt
        self._shown_cursor = 0       # where the terminal's cursor is in it
        self._esc = _Esc.NORM
        self._esc_param = 0
        self.history: list[bytes] = []
        self._hist_entry = -1        # the history line being edited, or -1

    # -- output -----------------------------------------------------------------

    def _print(self, text: bytes) -> None:
        self._write(text.replace(b"\n", b"\r\n"))

    def show_prompt(self) -> None:
        """QEMU's ``readline_show_prompt``: the prompt, then the line is redrawn in full."""
        self._print(self.prompt.encode())
        self._shown = bytearray()
        self._shown_cursor = 0
        self._esc = _Esc.NORM

    def _update(self) -> None:
        """QEMU's ``readline_update``: redraw a changed line, then move the cursor."""
        out = bytearray()
        if self.line != self._shown:
            out += b"\x1b[D" * self._shown_cursor + self.line + b"\x1b[K"
            self._shown = bytearray(self.line)
            self._shown_cursor = len(self.line)
        if self.cursor != self._shown_cursor:
            delta = self.cursor - self._shown_cursor
            out += (b"\x1b[C" if delta > 0 else b"\x1b[D") * abs(delta)
            self._shown_cursor = self.cursor
        if out:
            self._write(bytes(out))

    # -- input ------------------------------------------------------------------

    def feed(self, data: bytes, stop: Callable[[], bool] = lambda: False) -> bytes:
        """Handle ``data`` byte by byte; ``stop()`` true ends it early (after ``quit``,
        or while the entered line runs).  Returns the bytes not handled."""
        for index, byte in enumerate(data):
            if stop():
                return data[index:]
            self.handle_byte(byte)
        return b""

    def handle_byte(self, byte: int) -> None:
        """QEMU's ``readline_handle_byte`` for one byte, then the redraw."""
        state = self._esc
        if state is _Esc.NORM:
            if byte in (10, 13):
                self._enter()
                return  # the command printed its output and the next prompt
            self._normal(byte)
        elif state is _Esc.ESC:
            self._esc_param = 0
            self._esc = {ord("["): _Esc.CSI, ord("O"): _Esc.SS3}.get(byte, _Esc.NORM)
        elif state is _Esc.CSI:
            if 0x30 <= byte <= 0x39:
                self._esc_param = self._esc_param * 10 + byte - 0x30
            else:
                self._csi(byte)
                self._esc = _Esc.NORM
        else:
            if byte == ord("F"):
                self.cursor = len(self.line)
            elif byte == ord("H"):
                self.cursor = 0
            self._esc = _Esc.NORM
        self._update()

    def _normal(self, byte: int) -> None:
        if byte == 1:                      # Ctrl-A
            self.cursor = 0
        elif byte == 4:                    # Ctrl-D
            self._delete()
        elif byte == 5:                    # Ctrl-E
            self.cursor = len(self.line)
        elif byte == 9:                    # Tab
            self.complete()
        elif byte == 12:                   # Ctrl-L
            self._print(b"\x1b[2J\x1b[1;1H")
            self.show_prompt()
        elif byte == 23:                   # Ctrl-W
            self._delete_word()
        elif byte == 27:
            self._esc = _Esc.ESC
        elif byte in (8, 127):
            if self.cursor > 0:
                del self.line[self.cursor - 1]
                self.cursor -= 1
        elif byte == 155:                  # a one-byte CSI
            self._esc = _Esc.CSI
        elif byte >= 32:
            self.insert(bytes([byte]))

    def _csi(self, byte: int) -> None:
        if byte in (ord("A"), ord("F")):
            self._history_up()
        elif byte in (ord("B"), ord("E")):
            self._history_down()
        elif byte == ord("D"):
            self.cursor = max(0, self.cursor - 1)
        elif byte == ord("C"):
            self.cursor = min(len(self.line), self.cursor + 1)
        elif byte == ord("~"):
            if self._esc_param == 1:
                self.cursor = 0
            elif self._esc_param == 3:
                self._delete()
            elif self._esc_param == 4:
                self.cursor = len(self.line)

    # -- editing ----------------------------------------------------------------

    def insert(self, text: bytes) -> None:
        """Insert at the cursor, up to the 4,095-byte limit."""
        room = MAX_LINE - len(self.line)
        text = text[:max(room, 0)]
        self.line[self.cursor:self.cursor] = text
        self.cursor += len(text)

    def _delete(self) -> None:
        if self.cursor < len(self.line):
            del self.line[self.cursor]

    def _delete_word(self) -> None:
        """Ctrl-W, QEMU's ``readline_backword``: spaces before the cursor, then the word
        before them.  Like QEMU it never looks at the first byte, so a word after a
        single leading space goes with that space."""
        if self.cursor == 0:
            return
        start = self.cursor - 1
        while start > 0 and self.line[start:start + 1].isspace():
            start -= 1
        while start > 0:
            if self.line[start:start + 1].isspace():
                start += 1
                break
            start -= 1
        del self.line[start:self.cursor]
        self.cursor = start

    def _enter(self) -> None:
        line = bytes(self.line)
        self._history_add(line)
        self._print(b"\n")
        self.line.clear()
        self.cursor = 0
        self._shown = bytearray()
        self._shown_cursor = 0
        self._run(line.decode("utf-8", "replace"))

    # -- history ----------------------------------------------------------------

    def _history_add(self, line: bytes) -> None:
        """QEMU's ``readline_hist_add``: no empty lines, a repeated line moves to the end."""
        if not line:
            return
        if line in self.history:
            if self.history.index(line) == HISTORY_SIZE - 1:
                return  # already the last of a full history (QEMU keeps its position too)
            self.history.remove(line)
        elif len(self.history) == HISTORY_SIZE:
            del self.history[0]
        self.history.append(line)
        self._hist_entry = -1

    def _recall(self, index: int) -> None:
        self.line = bytearray(self.history[index][:MAX_LINE])
        self.cursor = len(self.line)

    def _history_up(self) -> None:
        if self._hist_entry == 0:
            return
        if self._hist_entry == -1:
            self._hist_entry = len(self.history)
        self._hist_entry -= 1
        if self._hist_entry >= 0:
            self._recall(self._hist_entry)

    def _history_down(self) -> None:
        if self._hist_entry == -1:
            return
        if self._hist_entry < HISTORY_SIZE - 1 and self._hist_entry + 1 < len(self.history):
            self._hist_entry += 1
            self._recall(self._hist_entry)
        else:
            self.line.clear()
            self.cursor = 0
            self._hist_entry = -1

    # -- completion -------------------------------------------------------------

    def complete(self) -> None:
        """QEMU's ``readline_completion`` on the text before the cursor.

        One candidate: its missing part is inserted, and a space unless it ends
        in ``/``.  Several: the common prefix is inserted and the sorted
        candidates are listed in columns (each at least 10 wide, 80 in all),
        then the prompt and the line are printed again.
        """
        if self._completer is None:
            return
        before = self.line[:self.cursor].decode("utf-8", "replace")
        found, index = self._completer(before)
        candidates: list[bytes] = []
        for name in found:
            encoded = name.encode()
            if len(candidates) < MAX_COMPLETIONS and encoded not in candidates:
                candidates.append(encoded)
        if not candidates:
            return
        if len(candidates) == 1:
            (only,) = candidates
            self.insert(only[index:])
            if only and not only.endswith(b"/"):
                self.insert(b" ")
            return
        candidates.sort()
        prefix = min(len(candidate) for candidate in candidates)
        for candidate in candidates[1:]:
            prefix = next((i for i in range(prefix) if candidate[i] != candidates[0][i]),
                          prefix)
        if prefix > index:
            self.insert(candidates[0][index:prefix])
        width = min(max(max(len(candidate) for candidate in candidates) + 2, 10), 80)
        columns = 80 // width
        out = bytearray(b"\n")
        for number, candidate in enumerate(candidates, 1):
            out += candidate.ljust(width)
            if number % columns == 0 or number == len(candidates):
                out += b"\n"
        self._print(bytes(out))
        self.show_prompt()
