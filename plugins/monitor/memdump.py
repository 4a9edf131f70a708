"""Guest memory at the monitor: HMP ``x``/``xp`` (QEMU's ``memory_dump``), the
``/fmt`` and expression arguments they take, and QMP ``pmemsave``/``memsave``.

* ``/fmt`` is ``/[count][format][size]``: formats ``x d u o c`` (``i``, the
  disassembler, is not there), sizes ``b h w g`` (``L`` is ``g``).  What is
  left out comes from the previous ``x``/``xp`` (QEMU keeps the last format
  and size for the whole process: here for the VM), at first ``x`` and ``w``.
* Addresses and sizes are QEMU's monitor expressions: numbers (C syntax:
  ``0x``, leading ``0`` octal), ``'c'``, ``$reg`` (``$pc``, ``$rax``...),
  ``( )``, unary ``+ - ~``, ``* / %``, ``& | ^``, ``+ -``; so ``pmemsave 0 16
  /tmp/f`` reads ``16 / tmp`` and fails, as in QEMU.
* ``xp`` reads guest-physical memory; ``x`` and ``memsave`` go through the
  guest's page tables (``guest-cpu``'s ``read_virtual``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from qom import QomError

#: QEMU's defaults before the first ``x``/``xp`` with a format
DEFAULT_FORMAT: Final = "x"
DEFAULT_SIZE: Final = 4
_SIZES: Final = {"b": 1, "h": 2, "w": 4, "g": 8, "L": 8}
_FORMATS: Final = "oduxic"
U64: Final = (1 << 64) - 1


class MonitorArgumentError(Exception):
    """An HMP argument QEMU refuses: ``str()`` is the line QEMU prints."""


class DumpFormat:
    """The ``/fmt`` state of one VM: the last format and size used."""

    def __init__(self) -> None:
        self.format = DEFAULT_FORMAT
        self.size = DEFAULT_SIZE

    def parse(self, line: str, pos: int) -> tuple[tuple[int, str, int], int]:
        """``((count, format, size), new pos)`` for a ``/`` argument at ``pos``.

        :raises MonitorArgumentError: ``invalid char in format: 'C'``.
        """
        while pos < len(line) and line[pos].isspace():
            pos += 1
        if pos >= len(line) or line[pos] != "/":
            size = self.size if self.format != "i" else -1
            return (1, self.format, size), pos
        pos += 1
        count = 1
        if pos < len(line) and line[pos].isdigit():
            count = 0
            while pos < len(line) and line[pos].isdigit():
                count = count * 10 + int(line[pos])
                pos += 1
        size, format_ = -1, ""
        while pos < len(line):
            char = line[pos]
            if char in _FORMATS:
                format_ = char
            elif char in _SIZES:
                size = _SIZES[char]
            else:
                break
            pos += 1
        if pos < len(line) and not line[pos].isspace():
            raise MonitorArgumentError(f"invalid char in format: '{line[pos]}'")
        format_ = format_ or self.format
        if format_ != "i":
            if size < 0:
                size = self.size
            self.size = size
        self.format = format_
        return (count, format_, size), pos


class _Expression:
    """QEMU's monitor expression grammar (``get_expr``), 64-bit wrapping."""

    def __init__(self, text: str, pos: int, register: Callable[[str], int | None]) -> None:
        self.text = text
        self.pos = pos
        self.register = register

    def _char(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _next(self) -> None:
        if self.pos < len(self.text):
            self.pos += 1
            self._skip()

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def value(self) -> int:
        self._skip()
        return self._sum()

    def _sum(self) -> int:
        value = self._logic()
        while (op := self._char()) in ("+", "-") and op:
            self._next()
            other = self._logic()
            value = (value + other if op == "+" else value - other) & U64
        return value

    def _logic(self) -> int:
        value = self._product()
        while (op := self._char()) in ("&", "|", "^") and op:
            self._next()
            other = self._product()
            value = value & other if op == "&" else value | other if op == "|" else value ^ other
        return value

    def _product(self) -> int:
        value = self._unary()
        while (op := self._char()) in ("*", "/", "%") and op:
            self._next()
            other = self._unary()
            if op == "*":
                value = (value * other) & U64
            else:
                if other == 0:
                    raise MonitorArgumentError("division by zero")
                signed, divisor = _signed(value), _signed(other)
                quotient = abs(signed) // abs(divisor) * (1 if (signed < 0) == (divisor < 0)
                                                          else -1)
                value = (quotient if op == "/" else signed - quotient * divisor) & U64
        return value

    def _unary(self) -> int:
        char = self._char()
        if char == "+":
            self._next()
            return self._unary()
        if char == "-":
            self._next()
            return -self._unary() & U64
        if char == "~":
            self._next()
            return ~self._unary() & U64
        if char == "(":
            self._next()
            value = self._sum()
            if self._char() != ")":
                raise MonitorArgumentError("')' expected")
            self._next()
            return value
        if char == "'":
            self.pos += 1
            if self.pos >= len(self.text):
                raise MonitorArgumentError("character constant expected")
            value = ord(self.text[self.pos]) & 0xFF
            self.pos += 1
            if self._char() != "'":
                raise MonitorArgumentError("missing terminating ' character")
            self._next()
            return value
        if char == "$":
            self.pos += 1
            start = self.pos
            while self.pos < len(self.text) and (self.text[self.pos].isalnum()
                                                 or self.text[self.pos] in "_."):
                self.pos += 1
            name = self.text[start:self.pos]
            self._skip()
            found = self.register(name)
            if found is None:
                raise MonitorArgumentError("unknown register")
            return found & U64
        if char == "":
            raise MonitorArgumentError("unexpected end of expression")
        return self._number()

    def _number(self) -> int:
        """``strtoull(p, &end, 0)``: 0x hex, leading-0 octal, else decimal."""
        text, start = self.text, self.pos
        pos = start
        base, digits = 10, "0123456789"
        if text[pos:pos + 2].lower() == "0x" and pos + 2 < len(text) \
                and text[pos + 2] in "0123456789abcdefABCDEF":
            base, digits, pos = 16, "0123456789abcdefABCDEF", pos + 2
        elif text[pos:pos + 1] == "0":
            base, digits = 8, "01234567"
        end = pos
        while end < len(text) and text[end] in digits:
            end += 1
        if end == start:
            raise MonitorArgumentError(f"invalid char '{text[start]}' in expression")
        value = int(text[pos:end], base) if end > pos else 0
        if value > U64:
            raise MonitorArgumentError("number too large")
        self.pos = end
        self._skip()
        return value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


def parse_expression(line: str, pos: int, register: Callable[[str], int | None]
                     ) -> tuple[int, int]:
    """(value as an unsigned 64-bit int, new pos) of the expression at ``pos``.

    :raises MonitorArgumentError: QEMU's message (``invalid char 'z' in expression``...).
    """
    expression = _Expression(line, pos, register)
    value = expression.value()
    return value, expression.pos


def _printable(byte: int) -> str:
    """QEMU's ``monitor_printc``."""
    special = {0x27: "\\'", 0x5C: "\\\\", 0x0A: "\\n", 0x0D: "\\r"}
    if byte in special:
        return f"'{special[byte]}'"
    return f"'{chr(byte)}'" if 32 <= byte <= 126 else f"'\\x{byte:02x}'"


def memory_dump(count: int, format_: str, size: int, address: int,
                read: Callable[[int, int], bytes | None]) -> str:
    """QEMU's ``memory_dump``: lines of ``address: value value ...``.

    :param read: ``read(address, n)`` -> the bytes, or ``None`` if they cannot
        be read (``Cannot access memory`` ends the dump).
    """
    if format_ == "i":
        return "pyqom has no disassembler: the 'i' format is not available\n"
    length = size * count
    line_size = 8 if size == 1 else 16
    if format_ == "o":
        digits = -(-size * 8 // 3)
    elif format_ in ("u", "d"):
        digits = -(-size * 8 * 10 // 33)
    else:
        digits = size * 8 // 4
    if format_ == "c":
        size = 1
    out = []
    while length > 0:
        out.append(f"{address & U64:016x}:")
        chunk = min(length, line_size)
        data = read(address & U64, chunk)
        if data is None:
            out.append(" Cannot access memory\n")
            break
        for index in range(0, chunk, size):
            value = int.from_bytes(data[index:index + size], "little")
            if format_ == "o":
                out.append(" " + f"{'0' + format(value, 'o') if value else '0':>{digits}}")
            elif format_ == "x":
                out.append(f" 0x{value:0{digits}x}")
            elif format_ == "u":
                out.append(f" {value:>{digits}}")
            elif format_ == "d":
                out.append(f" {_signed_of(value, size):>{digits}}")
            else:
                out.append(" " + _printable(value))
        out.append("\n")
        address += chunk
        length -= chunk
    return "".join(out)


def _signed_of(value: int, size: int) -> int:
    """QEMU prints ``d`` of a 1/2/4-byte load as the unsigned load (ld*u_p), an
    8-byte one as signed (PRId64 of a uint64_t)."""
    return _signed(value) if size == 8 else value


def save(path: str, address: int, size: int, read: Callable[[int, int], bytes | None],
         *, virtual: bool) -> None:
    """QMP ``pmemsave``/``memsave``: ``size`` bytes from ``address`` into ``path``,
    1 KiB at a time.  Physical memory nobody backs reads as zeros (``pmemsave``);
    a virtual address the guest has not mapped fails ``memsave`` half-way.

    :raises QomError: QEMU's messages.
    """
    try:
        file = open(path, "wb")  # closed below, after a partial write too
    except OSError as err:
        raise QomError(f"Could not open '{path}': {err.strerror}") from None
    with file:
        at, left = address, size
        while left > 0:
            chunk = min(1024, left)
            data = read(at & U64, chunk)
            if data is None:
                if virtual:
                    raise QomError(f"Invalid addr 0x{address & U64:016x}/size {size} "
                                   "specified")
                data = bytes(chunk)
            try:
                file.write(data)
            except OSError:
                raise QomError("An IO error has occurred") from None
            at += chunk
            left -= chunk
