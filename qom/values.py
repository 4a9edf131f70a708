"""Property value kinds: how a property's value is read from an input and shown as JSON.

A kind is what QEMU's ``visit_type_*`` call is for a property: it decides
which reader of an :class:`~qom.inputs.Input` converts the raw argument, and
how the stored value is reported by ``qom-get``.  The QOM *type string* a
property reports (``"int"``, ``"uint64"``, ``"link<memory-backend>"``) is kept
apart on the property, because QEMU often reports one and visits another (a
backend's ``size`` reports ``int`` but is visited as a size).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import attrs

from qom.reprs import FieldsValue

if TYPE_CHECKING:
    from qom.inputs import Input


class Kind(Protocol):
    """The protocol every value kind implements."""

    def read(self, source: Input, name: str, raw: object) -> Any:
        """Convert ``raw`` from ``source`` for the member ``name`` or raise ParameterError."""
        ...

    def to_json(self, value: Any) -> Any:
        """The JSON value ``qom-get`` returns for a stored ``value``."""
        ...


@attrs.frozen(repr=False, eq=False)
class BoolKind(FieldsValue):
    """``visit_type_bool``."""

    def read(self, source: Input, name: str, raw: object) -> bool:
        return source.read_bool(name, raw)

    def to_json(self, value: Any) -> bool:
        return bool(value)


@attrs.frozen(repr=False, eq=False)
class StrKind(FieldsValue):
    """``visit_type_str``."""

    def read(self, source: Input, name: str, raw: object) -> str:
        return source.read_str(name, raw)

    def to_json(self, value: Any) -> str:
        return str(value)


@attrs.frozen(repr=False, eq=False)
class IntKind(FieldsValue):
    """``visit_type_intN`` / ``visit_type_uintN`` for N in 8, 16, 32, 64."""

    bits: int = attrs.field(validator=attrs.validators.in_((8, 16, 32, 64)))
    signed: bool

    @property
    def minimum(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def maximum(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def c_name(self) -> str:
        """The C type QEMU names in range errors (``uint32_t``)."""
        return f"{'' if self.signed else 'u'}int{self.bits}_t"

    def read(self, source: Input, name: str, raw: object) -> int:
        return source.read_int(name, raw, self)

    def to_json(self, value: Any) -> int:
        return int(value)


@attrs.frozen(repr=False, eq=False)
class SizeKind(FieldsValue):
    """``visit_type_size``: a byte count, suffixes allowed where the input parses strings."""

    def read(self, source: Input, name: str, raw: object) -> int:
        return source.read_size(name, raw)

    def to_json(self, value: Any) -> int:
        return int(value)


@attrs.frozen(repr=False, eq=False)
class EnumKind(FieldsValue):
    """A QAPI enum: one of ``values``, reported under the enum's ``name``."""

    name: str
    values: tuple[str, ...]

    def read(self, source: Input, name: str, raw: object) -> str:
        return source.read_enum(name, raw, self)

    def to_json(self, value: Any) -> str:
        return str(value)


@attrs.frozen(repr=False, eq=False)
class ListKind(FieldsValue):
    """A QAPI list of ``element`` values."""

    element: IntKind

    def read(self, source: Input, name: str, raw: object) -> list[int]:
        return source.read_list(name, raw, self)

    def to_json(self, value: Any) -> list[Any]:
        return [self.element.to_json(item) for item in value]


@attrs.frozen(repr=False, eq=False)
class LinkKind(FieldsValue):
    """``link<target>``: read as a path string; the link setter resolves it."""

    target: str

    def read(self, source: Input, name: str, raw: object) -> str:
        return source.read_str(name, raw)

    def to_json(self, value: Any) -> str:
        return str(value)


BOOL = BoolKind()
STR = StrKind()
SIZE = SizeKind()
INT8 = IntKind(8, True)
INT16 = IntKind(16, True)
INT32 = IntKind(32, True)
INT64 = IntKind(64, True)
UINT8 = IntKind(8, False)
UINT16 = IntKind(16, False)
UINT32 = IntKind(32, False)
UINT64 = IntKind(64, False)
