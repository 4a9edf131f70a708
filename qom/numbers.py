"""Number and size parsing with the semantics of QEMU 7.2's ``util/cutils.c``.

QEMU parses integers with C's ``strtoll``/``strtoull`` (base 0 for property
values: decimal, ``0x`` hex and leading-``0`` octal) and sizes with
``qemu_strtosz`` (decimal with an optional fraction and one binary suffix, or
hex).  These functions reproduce that grammar exactly and raise
:class:`NumberFormatError`; callers turn it into the message of their input
path, which differs between QMP, HMP and the command line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

U64_MAX = (1 << 64) - 1
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1

# C's isspace() in the "C" locale: what strtol() skips before the number.
_C_SPACE = " \t\n\v\f\r"
_SUFFIX_POWER = {"B": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}


class NumberFormatError(ValueError):
    """The text is not a number of the requested kind.

    ``out_of_range`` distinguishes ERANGE (a well-formed number that does not
    fit) from EINVAL (not a number at all); some QEMU messages differ.
    """

    def __init__(self, text: str, *, out_of_range: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.out_of_range = out_of_range


def _digit_value(char: str) -> int:
    if "0" <= char <= "9":
        return ord(char) - ord("0")
    if "a" <= char.lower() <= "z":
        return ord(char.lower()) - ord("a") + 10
    return 99


def _strtox(text: str, base: int) -> tuple[int, int, int]:
    """Scan like C's strtoull/strtoll: (magnitude with sign, end index, digits seen).

    Returns the signed mathematical value (not yet clamped), the index just past
    the last character consumed (0 when nothing was converted) and the number of
    digits consumed.
    """
    pos = 0
    while pos < len(text) and text[pos] in _C_SPACE:
        pos += 1
    sign = 1
    if pos < len(text) and text[pos] in "+-":
        sign = -1 if text[pos] == "-" else 1
        pos += 1
    if base in (0, 16) and text[pos : pos + 2].lower() == "0x" and pos + 2 < len(text) \
            and _digit_value(text[pos + 2]) < 16:
        base = 16
        pos += 2
    elif base == 0:
        base = 8 if text[pos : pos + 1] == "0" else 10
    match = _digit_run(base).match(text, pos)
    assert match is not None
    run = match.group()
    if not run:
        return 0, 0, 0
    significant = run.lstrip("0")
    if len(significant) > _MAX_U64_DIGITS[base]:
        # Too big for any caller's range: no conversion (which would be
        # quadratic in the digits), just a magnitude beyond 2**64.
        return sign * (U64_MAX + 1), match.end(), len(run)
    return sign * int(significant or "0", base), match.end(), len(run)


@functools.cache
def _digit_run(base: int) -> re.Pattern[str]:
    """The digits of ``base`` (2..36), as C's strtoull reads them."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"[:base]
    letters = digits[10:]
    return re.compile(f"[{digits[:10]}{letters}{letters.upper()}]*")


def _digit_count(value: int, base: int) -> int:
    count = 0
    while value:
        value //= base
        count += 1
    return count


#: digits of 2**64-1 in each base: a longer run (leading zeros aside) is out of range
_MAX_U64_DIGITS = {base: _digit_count(U64_MAX, base) for base in range(2, 37)}


def scan_u64(text: str, base: int = 0) -> tuple[int, int]:
    """``qemu_strtou64`` with an end pointer: (value, end index).

    A leading ``-`` is accepted and wraps, as in C (``-1`` is 2**64-1).
    """
    value, end, digits = _strtox(text, base)
    if digits == 0:
        raise NumberFormatError(text)
    if abs(value) > U64_MAX:
        raise NumberFormatError(text, out_of_range=True)
    return value % (1 << 64), end


def parse_u64(text: str, base: int = 0) -> int:
    """``qemu_strtou64(text, NULL, base)``: the whole text must be consumed."""
    value, end = scan_u64(text, base)
    if end != len(text):
        raise NumberFormatError(text)
    return value


def parse_i64(text: str, base: int = 0) -> int:
    """``qemu_strtoi64(text, NULL, base)``: the whole text must be consumed."""
    value, end, digits = _strtox(text, base)
    if digits == 0 or end != len(text):
        raise NumberFormatError(text)
    if not I64_MIN <= value <= I64_MAX:
        raise NumberFormatError(text, out_of_range=True)
    return value


def _scan_fraction(text: str, pos: int) -> tuple[float | None, int]:
    """strtod() on ``text[pos:]`` where ``text[pos] == '.'``: (value, end).

    Returns ``(None, pos)`` when strtod converts nothing ("." alone).  An
    exponent makes the whole size invalid in QEMU, so it is reported as
    ``-1.0``.
    """
    end = pos + 1
    while end < len(text) and text[end].isdigit() and text[end].isascii():
        end += 1
    if end == pos + 1:
        return None, pos
    if end < len(text) and text[end] in "eE":
        exp_end = end + 1
        if exp_end < len(text) and text[exp_end] in "+-":
            exp_end += 1
        if exp_end < len(text) and text[exp_end].isdigit():
            return -1.0, end
    # strtod: the nearest double (no big-number conversion of a long fraction).
    return float(text[pos:end]), end


def parse_size(text: str, *, default_suffix: str = "B",
               warn: Callable[[str], None] | None = None) -> int:
    """``qemu_strtosz`` (``default_suffix`` B) or ``qemu_strtosz_MiB`` (M).

    Grammar: decimal integer, optional ``.fraction``, optional one suffix of
    ``BKMGTPE`` (case-insensitive, powers of 1024); or ``0x`` hex, whose
    suffix 7.2 still accepts with a deprecation warning passed to ``warn``.
    A fraction needs a scaling suffix; the result rounds .5 up.
    """
    integral, end, digits = _strtox(text, 10)
    if digits == 0:
        raise NumberFormatError(text)
    if "-" in text[:end]:
        raise NumberFormatError(text)
    if integral > U64_MAX:
        raise NumberFormatError(text, out_of_range=True)
    is_hex = False
    # The fraction in 64-bit fixed point (QEMU's), as an integer: fraction / 2**64.
    fraction = 0
    if integral == 0 and text[end : end + 1] in ("x", "X"):
        integral, end, digits = _strtox(text, 16)
        if digits == 0:
            raise NumberFormatError(text)
        if integral > U64_MAX:
            raise NumberFormatError(text, out_of_range=True)
        if text[end : end + 1] == ".":
            raise NumberFormatError(text)
        is_hex = True
    elif text[end : end + 1] == ".":
        scanned, frac_end = _scan_fraction(text, end)
        if scanned is None:
            end += 1  # QEMU steps over a lone '.', so "1.k" means 1 KiB
        elif scanned < 0:
            raise NumberFormatError(text)
        else:
            # QEMU computes (uint64_t)(strtod(...) * 0x1p64): the fraction is the
            # nearest C double, truncated to 64-bit fixed point.  A fraction that
            # rounds to 1.0 overflows the cast, which gives 0 on x86-64.
            fixed = int(scanned * 2.0**64)
            fraction = fixed if fixed < 1 << 64 else 0
            end = frac_end
    suffix = text[end : end + 1].upper()
    if suffix and suffix in _SUFFIX_POWER:
        if is_hex and warn is not None:
            warn(f"Using a multiplier suffix on hex numbers is deprecated: {text}")
        end += 1
        multiplier = 1024 ** _SUFFIX_POWER[suffix]
    else:
        multiplier = 1024 ** _SUFFIX_POWER[default_suffix]
    if end != len(text):
        raise NumberFormatError(text)
    if multiplier == 1:
        if fraction:
            raise NumberFormatError(text)
        return integral
    # integral + fraction / 2**64, times the multiplier, rounded half up (exactly).
    whole, rest = divmod(fraction * multiplier, 1 << 64)
    result = integral * multiplier + whole + (1 if 2 * rest >= 1 << 64 else 0)
    if result > U64_MAX:
        raise NumberFormatError(text, out_of_range=True)
    return result


def size_has_suffix(text: str) -> bool:
    """True when the last character is not a digit (the ``-m`` MiB fix-up test)."""
    return not text[-1:].isdigit()
