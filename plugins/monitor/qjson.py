"""QEMU 7.2's JSON, byte for byte: the streaming parser QMP reads with, and the writer.

Reading (``qobject/json-lexer.c``, ``json-streamer.c``, ``json-parser.c``):

* :class:`JsonStream` takes bytes as they arrive and yields one
  :class:`Parsed` per top-level value or error.  A value ends when its
  brackets balance, so values may span lines or share one; there is no line
  length limit, only QEMU's 64 MiB token-size, 2M token-count and 1024
  nesting limits.
* After a lexical error the lexer skips to the next structural character or
  control byte (QEMU's recovery state), which is why one bad line can produce
  two errors, exactly as QEMU does.
* QEMU extensions are kept: single-quoted strings, ``\\'`` escapes.  Integers
  that fit int64 or uint64 are ints, everything else is a float.

Writing (``qobject/json-writer.c``): :func:`to_json` gives QEMU's compact
form (``", "`` and ``": "``), or its pretty form (4-space indents) as HMP's
``qom-get`` prints it.  Non-ASCII and control characters become ``\\uXXXX``
(upper-case hex, surrogate pairs beyond the BMP); floats use ``%.17g``.
Key order is the caller's: pass dicts through :func:`qom.qdict.qdict_ordered_deep`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import attrs

from qom.reprs import FieldsValue

#: QEMU's limits on one top-level value (json-streamer.c).
MAX_TOKEN_SIZE = 64 << 20
MAX_TOKEN_COUNT = 2 << 20
MAX_NESTING = 1 << 10

# Token types (json-lexer.h); values only need to be distinct.
T_ERROR = "error"
T_LCURLY = "{"
T_RCURLY = "}"
T_LSQUARE = "["
T_RSQUARE = "]"
T_COMMA = ","
T_COLON = ":"
T_INTEGER = "integer"
T_FLOAT = "float"
T_KEYWORD = "keyword"
T_STRING = "string"
T_PARTIAL = "partial"   # a token cut at QEMU's size limit

_STRUCTURAL = {ord("{"): T_LCURLY, ord("}"): T_RCURLY, ord("["): T_LSQUARE,
               ord("]"): T_RSQUARE, ord(","): T_COMMA, ord(":"): T_COLON}
_WHITESPACE = frozenset(b" \t\r\n")
# Bytes that end error recovery (json-lexer.c IN_RECOVERY): structural
# brackets, control characters other than tab, and the impossible 0xFE/0xFF.
_RECOVERY_SKIP = re.compile(rb"[\t\x20-\x5a\x5c\x5e-\x7a\x7c\x7e-\xfd]*")
_DIGITS = re.compile(rb"[0-9]*")
_LETTERS = re.compile(rb"[a-z]*")
_DQ_BODY = re.compile(rb'[\x20-\x21\x23-\x5b\x5d-\xfd]*')
_SQ_BODY = re.compile(rb"[\x20-\x26\x28-\x5b\x5d-\xfd]*")

_ESCAPES = {"\"": "\"", "'": "'", "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n",
            "r": "\r", "t": "\t"}


@attrs.frozen(repr=False, eq=False)
class Parsed(FieldsValue):
    """One top-level JSON value read from the stream, or QEMU's error for it.

    :ivar value: the value (dicts, lists, str, int, float, bool, None).
    :ivar error: QEMU's message when the input was not valid JSON.
    """

    value: Any = None
    error: str | None = None


class JsonParseError(Exception):
    """A JSON syntax error; ``str()`` is QEMU's ``desc``."""


class _Lexer:
    """QEMU's JSON lexer as a state machine over bytes.

    Runs of bytes that keep the lexer in one state (string bodies, digits,
    keywords, skipped bytes while recovering) are consumed with a regular
    expression; every state change follows QEMU's table.
    """

    def __init__(self) -> None:
        self.state = "start"
        self.token = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[str, bytes]]:
        pos, end = 0, len(data)
        while pos < end:
            state = self.state
            byte = data[pos]
            if state == "start":
                if byte in _STRUCTURAL:
                    yield _STRUCTURAL[byte], bytes((byte,))
                    pos += 1
                elif byte in _WHITESPACE:
                    pos += 1
                elif byte == 0x22:
                    self._begin(byte, "dq")
                    pos += 1
                elif byte == 0x27:
                    self._begin(byte, "sq")
                    pos += 1
                elif byte == 0x30:
                    self._begin(byte, "zero")
                    pos += 1
                elif 0x31 <= byte <= 0x39:
                    self._begin(byte, "nonzero")
                    pos += 1
                elif byte == 0x2D:
                    self._begin(byte, "neg")
                    pos += 1
                elif 0x61 <= byte <= 0x7A:
                    self._begin(byte, "keyword")
                    pos += 1
                else:
                    self.token = bytearray((byte,))
                    yield self._error()
                    pos += 1
            elif state == "recovery":
                match = _RECOVERY_SKIP.match(data, pos)
                assert match is not None
                pos = match.end()
                if pos < end:
                    self.state = "start"  # look ahead: the byte is read again
            elif state in ("dq", "sq"):
                body = _DQ_BODY if state == "dq" else _SQ_BODY
                match = body.match(data, pos, pos + self._room())
                assert match is not None
                self.token += data[pos:match.end()]
                pos = match.end()
                if len(self.token) > MAX_TOKEN_SIZE:
                    yield self._flush()
                    continue
                if pos >= end:
                    break
                byte = data[pos]
                self.token.append(byte)
                pos += 1
                if byte == 0x5C:
                    self.state = state + "_escape"
                elif byte == (0x22 if state == "dq" else 0x27):
                    yield self._emit(T_STRING)
                else:
                    yield self._error()
            elif state in ("dq_escape", "sq_escape"):
                # The lexer takes any printable byte after a backslash; the
                # parser decides whether the escape is valid.
                self.token.append(byte)
                pos += 1
                if 0x20 <= byte <= 0xFD:
                    self.state = state[:2]
                else:
                    yield self._error()
            elif state in ("nonzero", "mantissa_digits", "digits", "keyword"):
                pattern = _LETTERS if state == "keyword" else _DIGITS
                match = pattern.match(data, pos, pos + self._room())
                assert match is not None
                self.token += data[pos:match.end()]
                pos = match.end()
                if len(self.token) > MAX_TOKEN_SIZE:
                    yield self._flush()
                    continue
                if pos >= end:
                    break
                byte = data[pos]
                if state == "keyword":
                    result = self._terminal(byte, T_KEYWORD)
                elif state == "nonzero" and byte in b"eE":
                    result = self._shift(byte, "exp_e")
                elif state == "nonzero" and byte == 0x2E:
                    result = self._shift(byte, "mantissa")
                elif state == "mantissa_digits" and byte in b"eE":
                    result = self._shift(byte, "exp_e")
                else:
                    result = self._terminal(byte, T_INTEGER if state == "nonzero" else T_FLOAT)
                if result is not None:
                    yield result
                if self.state != "start" or result is None or result[0] == T_ERROR:
                    pos += 1
            elif state == "zero":
                if byte == 0x2E:
                    self._shift(byte, "mantissa")
                    pos += 1
                elif 0x30 <= byte <= 0x39:
                    self.token.append(byte)
                    yield self._error()
                    pos += 1
                else:
                    result = self._terminal(byte, T_INTEGER)
                    assert result is not None
                    yield result
                    if result[0] == T_ERROR:
                        pos += 1
            else:
                pos += 1
                self.token.append(byte)
                nxt = self._single_step(state, byte)
                if nxt is None:
                    yield self._error()
                else:
                    self.state = nxt

    @staticmethod
    def _single_step(state: str, byte: int) -> str | None:
        """The states that take exactly one byte before moving on."""
        digit = 0x30 <= byte <= 0x39
        if state == "neg":
            return "zero" if byte == 0x30 else "nonzero" if digit else None
        if state == "mantissa":
            return "mantissa_digits" if digit else None
        if state == "exp_e":
            return "exp_digits" if byte in b"+-" else "digits" if digit else None
        if state == "exp_digits":
            return "digits" if digit else None
        return None

    def _room(self) -> int:
        """Bytes a growing token may still take before QEMU's lexer flushes it."""
        return MAX_TOKEN_SIZE + 1 - len(self.token)

    def _flush(self) -> tuple[str, bytes]:
        """QEMU's lexer hands a token over once it passes 64 MiB, unfinished, and
        starts afresh: the streamer then refuses it (token size limit), so one
        huge string costs a bounded amount of memory."""
        token = bytes(self.token)
        self.token = bytearray()
        self.state = "start"
        return T_PARTIAL, token

    def _begin(self, byte: int, state: str) -> None:
        self.token = bytearray((byte,))
        self.state = state

    def _shift(self, byte: int, state: str) -> tuple[str, bytes] | None:
        """Take ``byte`` into the token and move to ``state``; no token ends here."""
        self.token.append(byte)
        self.state = state
        return None

    def _terminal(self, byte: int, kind: str) -> tuple[str, bytes] | None:
        """A token ends at an ASCII byte (looked at again); any other byte is an error."""
        if byte <= 0x7F:
            return self._emit(kind)
        self.token.append(byte)
        return self._error()

    def _emit(self, kind: str) -> tuple[str, bytes]:
        token = bytes(self.token)
        self.token = bytearray()
        self.state = "start"
        return kind, token

    def _error(self) -> tuple[str, bytes]:
        token = bytes(self.token)
        self.token = bytearray()
        self.state = "recovery"
        return T_ERROR, token


class JsonStream:
    """QEMU's JSON message parser: feed bytes, get complete values (or errors)."""

    def __init__(self) -> None:
        self._lexer = _Lexer()
        self._reset()

    def _reset(self) -> None:
        self._tokens: list[tuple[str, bytes]] = []
        self._braces = 0
        self._brackets = 0
        self._size = 0

    def feed(self, data: bytes) -> list[Parsed]:
        """Every value (or error) completed by ``data``, in input order."""
        out: list[Parsed] = []
        for kind, text in self._lexer.feed(data):
            parsed = self._token(kind, text)
            if parsed is not None:
                out.append(parsed)
        return out

    def _token(self, kind: str, text: bytes) -> Parsed | None:
        if kind == T_LCURLY:
            self._braces += 1
        elif kind == T_RCURLY:
            self._braces -= 1
        elif kind == T_LSQUARE:
            self._brackets += 1
        elif kind == T_RSQUARE:
            self._brackets -= 1
        elif kind == T_ERROR:
            return self._finish(Parsed(error="JSON parse error, stray '"
                                       + text.decode("utf-8", "surrogateescape") + "'"))
        if self._size + len(text) + 1 > MAX_TOKEN_SIZE:
            return self._finish(Parsed(error="JSON token size limit exceeded"))
        if len(self._tokens) + 1 > MAX_TOKEN_COUNT:
            return self._finish(Parsed(error="JSON token count limit exceeded"))
        if self._braces + self._brackets > MAX_NESTING:
            return self._finish(Parsed(error="JSON nesting depth limit exceeded"))
        self._tokens.append((kind, text))
        self._size += len(text)
        if (self._braces > 0 or self._brackets > 0) and self._braces >= 0 \
                and self._brackets >= 0:
            return None
        try:
            return self._finish(Parsed(value=_Parser(self._tokens).parse()))
        except JsonParseError as err:
            return self._finish(Parsed(error=str(err)))

    def _finish(self, parsed: Parsed) -> Parsed:
        self._reset()
        return parsed


def _utf8_error_message(message: str) -> str:
    # parse_error formats into a 1024-byte buffer.
    raw = message.encode("utf-8", "surrogateescape")[:1023]
    return "JSON parse error, " + raw.decode("utf-8", "surrogateescape")


class _Frame:
    """An array or object being filled by :class:`_Parser`."""

    __slots__ = ("container", "key", "want")

    def __init__(self, container: dict[str, Any] | list[Any], want: str) -> None:
        self.container = container
        self.want = want          # "item" (arrays), "key" or "value" (objects)
        self.key = ""


class _Parser:
    """json-parser.c over one balanced token list; the first error wins.

    Iterative (an explicit stack of open containers), so QEMU's full nesting
    depth of 1,024 needs no Python recursion; the errors and their order are
    those of QEMU's recursive descent.
    """

    def __init__(self, tokens: list[tuple[str, bytes]]) -> None:
        self._tokens = tokens
        self._pos = 0

    def _peek(self) -> tuple[str, bytes] | None:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else None

    @staticmethod
    def _fail(message: str) -> JsonParseError:
        return JsonParseError(_utf8_error_message(message))

    def _pop_kind(self) -> str:
        token = self._peek()
        if token is None:
            raise self._fail("premature EOI")
        self._pos += 1
        return token[0]

    def parse(self) -> Any:
        stack: list[_Frame] = []
        while True:
            value, opened = self._value_start()
            if opened is not None:
                stack.append(opened)
                continue
            # A complete value: hand it to the containers it completes.
            while stack:
                frame = stack[-1]
                if frame.want == "item":
                    assert isinstance(frame.container, list)
                    frame.container.append(value)
                    kind = self._pop_kind()
                    if kind == T_RSQUARE:
                        value = stack.pop().container
                        continue
                    if kind != T_COMMA:
                        raise self._fail("expected separator in list")
                    break
                assert isinstance(frame.container, dict)
                if frame.want == "key":
                    if not isinstance(value, str):
                        raise self._fail("key is not a string in object")
                    if self._pop_kind() != T_COLON:
                        raise self._fail("missing : in object pair")
                    frame.key, frame.want = value, "value"
                    break
                if frame.key in frame.container:
                    raise self._fail("duplicate key")
                frame.container[frame.key] = value
                kind = self._pop_kind()
                if kind == T_RCURLY:
                    value = stack.pop().container
                    continue
                if kind != T_COMMA:
                    raise self._fail("expected separator in dict")
                frame.want = "key"
                break
            else:
                return value

    def _value_start(self) -> tuple[Any, _Frame | None]:
        """A scalar or an empty container (and ``None``), or a container opened."""
        token = self._peek()
        if token is None:
            raise self._fail("premature EOI")
        kind, text = token
        if kind in (T_LCURLY, T_LSQUARE):
            self._pos += 1
            following = self._peek()
            if following is None:
                raise self._fail("premature EOI")
            if following[0] == (T_RCURLY if kind == T_LCURLY else T_RSQUARE):
                self._pos += 1
                return ({} if kind == T_LCURLY else []), None
            return None, (_Frame({}, "key") if kind == T_LCURLY else _Frame([], "item"))
        if kind in (T_INTEGER, T_FLOAT, T_STRING):
            self._pos += 1
            return _literal(kind, text), None
        if kind == T_KEYWORD:
            self._pos += 1
            keywords = {b"true": True, b"false": False, b"null": None}
            if text in keywords:
                return keywords[text], None
            raise self._fail(f"invalid keyword '{text.decode('ascii')}'")
        raise self._fail("expecting value")


def _literal(kind: str, text: bytes) -> Any:
    if kind == T_STRING:
        return _parse_string(text)
    # More than 20 digits can fit neither int64 nor uint64: no big-int conversion
    # (Python refuses past 4,300 digits), strtod's double directly, as QEMU does.
    if kind == T_INTEGER and len(text.lstrip(b"-")) <= 20:
        value = int(text)
        if -(1 << 63) <= value < (1 << 63) or (0 <= value < (1 << 64)):
            return value
    return float(text)  # strtod: overflow gives inf, as in QEMU


def _hex4(text: bytes, pos: int) -> int:
    chunk = text[pos:pos + 4]
    if len(chunk) < 4 or not all(c in b"0123456789abcdefABCDEF" for c in chunk):
        return -1
    return int(chunk, 16)


def _valid_codepoint(cp: int) -> bool:
    """QEMU's ``is_valid_codepoint``: no surrogates, no noncharacters."""
    if cp < 0 or cp > 0x10FFFF:
        return False
    if 0xD800 <= cp <= 0xDFFF:
        return False
    if 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE:
        return False
    return True


def _parse_string(text: bytes) -> str:
    """json-parser.c ``parse_string``: escapes and UTF-8 checked as QEMU does."""
    quote = text[0]
    out: list[str] = []
    pos = 1
    while text[pos] != quote:
        byte = text[pos]
        if byte == 0x5C:
            begin = pos
            pos += 1
            char = chr(text[pos])
            pos += 1
            if char in _ESCAPES:
                out.append(_ESCAPES[char])
                continue
            if char != "u":
                raise _Parser._fail("invalid escape sequence in string")
            cp = _hex4(text, pos)
            pos += 4
            if 0xD800 <= cp <= 0xDBFF and text[pos:pos + 2] == b"\\u":
                trailing = _hex4(text, pos + 2)
                if 0xDC00 <= trailing <= 0xDFFF:
                    cp = 0x10000 + ((cp & 0x3FF) << 10) | (trailing & 0x3FF)
                    pos += 6
                else:
                    cp = -1
            if not _valid_codepoint(cp) and cp != 0:
                shown = text[begin:pos].split(b"\0")[0].decode("utf-8", "surrogateescape")
                raise _Parser._fail(f"{shown} is not a valid Unicode character")
            out.append(chr(cp))
            continue
        cp, pos = _utf8_codepoint(text, pos)
        if cp < 0:
            raise _Parser._fail("invalid UTF-8 sequence in string")
        out.append(chr(cp))
    return "".join(out)


def _utf8_codepoint(text: bytes, pos: int) -> tuple[int, int]:
    """QEMU's ``mod_utf8_codepoint``: one code point, or -1 for invalid UTF-8.

    Modified UTF-8: ``C0 80`` is U+0000; overlong forms, surrogates and
    noncharacters are invalid.
    """
    byte = text[pos]
    if byte < 0x80:
        return byte, pos + 1
    if byte & 0xE0 == 0xC0:
        length, cp, minimum = 2, byte & 0x1F, 0x80
    elif byte & 0xF0 == 0xE0:
        length, cp, minimum = 3, byte & 0x0F, 0x800
    elif byte & 0xF8 == 0xF0:
        length, cp, minimum = 4, byte & 0x07, 0x10000
    else:
        return -1, pos + 1
    for index in range(1, length):
        nxt = text[pos + index] if pos + index < len(text) else 0
        if nxt & 0xC0 != 0x80:
            return -1, pos + index
        cp = (cp << 6) | (nxt & 0x3F)
    end = pos + length
    if cp == 0 and length == 2:
        return 0, end  # modified UTF-8 NUL
    if cp < minimum or not _valid_codepoint(cp):
        return -1, end
    return cp, end


def parse_one(data: bytes | str) -> Any:
    """The single JSON value in ``data``, parsed as QEMU would.

    :raises JsonParseError: with QEMU's message.
    """
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    stream = JsonStream()
    # A trailing space ends a bare number or keyword, as end of input does in QEMU.
    parsed = stream.feed(raw + b" ")
    if not parsed:
        raise JsonParseError("JSON parse error, premature EOI")
    if parsed[0].error is not None:
        raise JsonParseError(parsed[0].error)
    return parsed[0].value


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

_SIMPLE_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                   "\r": "\\r", "\t": "\\t"}
_NEEDS_ESCAPE = re.compile(r'[^\x20-\x21\x23-\x5b\x5d-\x7e]')


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[char]
    cp = ord(char)
    if cp and not _valid_codepoint(cp):
        # QEMU's writer prints what is not a valid code point (surrogates, so
        # undecodable input bytes, and noncharacters such as U+FDD0) as U+FFFD.
        cp = 0xFFFD
    if cp > 0xFFFF:
        cp -= 0x10000
        return f"\\u{0xD800 + (cp >> 10):04X}\\u{0xDC00 + (cp & 0x3FF):04X}"
    return f"\\u{cp:04X}"


def quote_str(text: str) -> str:
    """A JSON string as QEMU's writer quotes it."""
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, text) + '"'


def format_number(value: int | float) -> str:
    """Integers in decimal, floats with C's ``%.17g`` (``inf``, ``nan`` too)."""
    if isinstance(value, int):
        return str(value)
    if value != value:
        return "nan"
    return format(value, ".17g")


def to_json(value: Any, *, pretty: bool = False) -> str:
    """``value`` as QEMU prints it: compact, or pretty with 4-space indents.

    Iterative (a stack of what is left to write), so values nested as deep as
    QEMU's parser allows are written without Python recursion.
    """
    out: list[str] = []
    # Entries are text to copy, or (value, depth) to write.
    todo: list[str | tuple[Any, int]] = [(value, 0)]
    while todo:
        entry = todo.pop()
        if isinstance(entry, str):
            out.append(entry)
            continue
        item, depth = entry
        if item is None:
            out.append("null")
        elif item is True:
            out.append("true")
        elif item is False:
            out.append("false")
        elif isinstance(item, (int, float)):
            out.append(format_number(item))
        elif isinstance(item, str):
            out.append(quote_str(item))
        elif isinstance(item, (dict, list, tuple)):
            if isinstance(item, dict):
                open_, close = "{", "}"
                members = [(quote_str(str(key)) + ": ", child) for key, child in item.items()]
            else:
                open_, close = "[", "]"
                members = [("", child) for child in item]
            inner = "\n" + " " * (4 * (depth + 1))
            pieces: list[str | tuple[Any, int]] = [open_]
            for index, (prefix, child) in enumerate(members):
                if index:
                    pieces.append(("," + inner if pretty else ", ") + prefix)
                else:
                    pieces.append((inner if pretty else "") + prefix)
                pieces.append((child, depth + 1))
            pieces.append(("\n" + " " * (4 * depth) if pretty else "") + close)
            todo.extend(reversed(pieces))
        else:
            raise TypeError(f"cannot write {type(item).__name__} as JSON")
    return "".join(out)
