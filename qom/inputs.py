"""Inputs: where property values come from, each with QEMU 7.2's own wording.

QEMU converts arguments with a different *visitor* on each path, and the error
messages differ between them:

* :data:`JSON` - the strict QObject input visitor: QMP ``object-add`` and
  ``qom-set``.  ``"1G"`` for a size is an error (``Parameter 'size' expects
  uint64``); negative numbers wrap for unsigned members, as in QEMU.
* :data:`KEYVAL` - the QObject input visitor in keyval mode: every value is a
  string (HMP ``object_add``, and ``-device``/``device_add``, which 7.2 routes
  through QemuOpts).  ``Parameter 'size' expects size``.
* :data:`OPTS` - the opts visitor behind the command line's ``-object``:
  ``Parameter 'size' expects a size value``, ``Invalid parameter 'foo'``.

Inputs are immutable and stateless; the three instances are module constants.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

import attrs

from qom import errors
from qom.numbers import (
    I64_MIN,
    U64_MAX,
    NumberFormatError,
    parse_i64,
    parse_size,
    parse_u64,
    scan_u64,
)
from qom.reprs import FieldsValue

if TYPE_CHECKING:
    from qom.errors import ParameterError
    from qom.values import EnumKind, IntKind, ListKind

_TRUE_WORDS = frozenset({"on", "yes", "true", "y"})
_FALSE_WORDS = frozenset({"off", "no", "false", "n"})


def parse_bool(name: str, text: str) -> bool:
    """``qapi_bool_parse``: on/yes/true/y and off/no/false/n, exactly."""
    if text in _TRUE_WORDS:
        return True
    if text in _FALSE_WORDS:
        return False
    raise errors.parameter_expects(name, "'on' or 'off'")


def _check_range(name: str, value: int, kind: IntKind) -> int:
    """``visit_type_intN``/``uintN``: the range error names the member as given,
    which for a list element is nothing at all, printed ``null`` (sic)."""
    if not kind.minimum <= value <= kind.maximum:
        raise errors.parameter_expects(name, kind.c_name)
    return value


#: What QEMU's range check calls a list element: its name is NULL.
LIST_ELEMENT_RANGE_NAME = "null"


def _is_json_int(raw: object) -> bool:
    return isinstance(raw, int) and not isinstance(raw, bool)


@attrs.frozen(repr=False, eq=False)
class Input(FieldsValue, abc.ABC):
    """Shared behaviour; subclasses override the readers whose wording differs."""

    name: str

    #: True where QemuOpts checks the ``id`` before any value is converted
    #: (the command line's ``-object``); the QAPI visitors check it after.
    id_checked_first = False

    def unexpected(self, member: str) -> ParameterError:
        """The error for an argument the target does not know."""
        return errors.parameter_unexpected(member)

    def missing(self, member: str) -> ParameterError:
        """The error for a mandatory argument that was not given."""
        return errors.parameter_missing(member)

    def read_str(self, name: str, raw: object) -> str:
        if not isinstance(raw, str):
            raise errors.invalid_parameter_type(name, "string")
        return raw

    def read_enum(self, name: str, raw: object, kind: EnumKind) -> str:
        text = self.read_str(name, raw)
        if text not in kind.values:
            raise errors.enum_rejects(name, text)
        return text

    @abc.abstractmethod
    def read_bool(self, name: str, raw: object) -> bool:
        """Convert ``raw`` for the member ``name``."""

    @abc.abstractmethod
    def read_int(self, name: str, raw: object, kind: IntKind,
                 range_name: str | None = None) -> int:
        """Convert ``raw`` for the member ``name``.

        :param range_name: the name the range error uses, if not ``name``
            (list elements: ``null``).
        """

    @abc.abstractmethod
    def read_size(self, name: str, raw: object) -> int:
        """Convert ``raw`` for the member ``name``."""

    def read_list(self, name: str, raw: object, kind: ListKind) -> list[int]:
        if not isinstance(raw, list):
            raise errors.invalid_parameter_type(name, "array")
        return [self.read_int(self.element_name(name, i), item, kind.element,
                              LIST_ELEMENT_RANGE_NAME)
                for i, item in enumerate(raw)]

    def element_name(self, name: str, index: int) -> str:
        """The name conversion errors give a list element (``full_name_nth``)."""
        return f"{name}[{index}]"


@attrs.frozen(repr=False, eq=False)
class JsonInput(Input):
    """The strict QObject input visitor (QMP)."""

    def read_bool(self, name: str, raw: object) -> bool:
        if not isinstance(raw, bool):
            raise errors.invalid_parameter_type(name, "boolean")
        return raw

    def read_int(self, name: str, raw: object, kind: IntKind,
                 range_name: str | None = None) -> int:
        if kind.signed:
            if not _is_json_int(raw) or not I64_MIN <= raw <= U64_MAX // 2:  # type: ignore[operator]
                raise errors.invalid_parameter_type(name, "integer")
            return _check_range(range_name or name, raw, kind)  # type: ignore[arg-type]
        return _check_range(range_name or name, self._read_u64(name, raw), kind)

    def read_size(self, name: str, raw: object) -> int:
        return self._read_u64(name, raw)

    @staticmethod
    def _read_u64(name: str, raw: object) -> int:
        # QEMU accepts negative integers for uint64 "for backward compatibility"
        # and wraps them; anything else that is not an integer is refused.
        if _is_json_int(raw) and I64_MIN <= raw <= U64_MAX:  # type: ignore[operator]
            return raw % (1 << 64)  # type: ignore[operator]
        raise errors.parameter_expects(name, "uint64")


@attrs.frozen(repr=False, eq=False)
class KeyvalInput(Input):
    """The QObject input visitor in keyval mode: every scalar is a string."""

    def read_bool(self, name: str, raw: object) -> bool:
        return parse_bool(name, self.read_str(name, raw))

    def read_int(self, name: str, raw: object, kind: IntKind,
                 range_name: str | None = None) -> int:
        text = self.read_str(name, raw)
        try:
            value = parse_i64(text) if kind.signed else parse_u64(text)
        except NumberFormatError:
            raise errors.parameter_expects(name, "integer") from None
        return _check_range(range_name or name, value, kind)

    def read_size(self, name: str, raw: object) -> int:
        text = self.read_str(name, raw)
        try:
            return parse_size(text)
        except NumberFormatError:
            raise errors.parameter_expects(name, "size") from None


@attrs.frozen(repr=False, eq=False)
class OptsInput(Input):
    """QemuOpts and the opts visitor (the command line's ``-object``)."""

    id_checked_first = True

    def unexpected(self, member: str) -> ParameterError:
        return errors.invalid_parameter(member)

    def read_bool(self, name: str, raw: object) -> bool:
        return parse_bool(name, self.read_str(name, raw))

    def read_int(self, name: str, raw: object, kind: IntKind,
                 range_name: str | None = None) -> int:
        text = self.read_str(name, raw)
        try:
            if kind.signed:
                value = parse_i64(text)
            else:
                if text.lstrip().startswith("-"):
                    raise NumberFormatError(text)  # parse_uint() refuses a sign
                value = parse_u64(text)
        except NumberFormatError:
            expected = "an int64 value" if kind.signed else "a uint64 value"
            raise errors.parameter_expects(name, expected) from None
        return _check_range(range_name or name, value, kind)

    def read_size(self, name: str, raw: object) -> int:
        text = self.read_str(name, raw)
        try:
            return parse_size(text)
        except NumberFormatError:
            raise errors.parameter_expects(name, "a size value") from None

    def read_list(self, name: str, raw: object, kind: ListKind) -> list[int]:
        # The opts visitor takes repeated keys and "lo-hi" ranges of integers
        # (fewer than OPTS_VISITOR_RANGE_MAX values); an element it cannot
        # parse is "a uint64 value or range", one out of the element type's
        # range is a range error on the element.
        texts = raw if isinstance(raw, list) else [raw]
        values: list[int] = []
        for text in texts:
            bounds = _opts_uint_or_range(self.read_str(name, text))
            if bounds is None:
                raise errors.parameter_expects(name, "a uint64 value or range")
            values.extend(_check_range(LIST_ELEMENT_RANGE_NAME, value, kind.element)
                          for value in range(bounds[0], bounds[1] + 1))
        return values


#: QEMU's OPTS_VISITOR_RANGE_MAX: a range has fewer values than this.
OPTS_RANGE_MAX = 65536


def _scan_uint(text: str) -> tuple[int, int] | None:
    """QEMU's ``parse_uint``: (value, end index), or ``None``; no sign allowed."""
    if text.lstrip().startswith("-"):
        return None
    try:
        return scan_u64(text)
    except NumberFormatError:
        return None


def _opts_uint_or_range(text: str) -> tuple[int, int] | None:
    """The opts visitor's unsigned list element: ``N`` or ``LO-HI`` as (first, last)."""
    first = _scan_uint(text)
    if first is None:
        return None
    low, end = first
    if end == len(text):
        return low, low
    if text[end] != "-":
        return None
    second = _scan_uint(text[end + 1:])
    if second is None or second[1] != len(text) - end - 1:
        return None
    high = second[0]
    if not low <= high or high - low >= OPTS_RANGE_MAX:
        return None
    return low, high


JSON = JsonInput("json")
KEYVAL = KeyvalInput("keyval")
OPTS = OptsInput("opts")
