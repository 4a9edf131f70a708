"""One ``__repr__`` for the attrs value classes, shared instead of generated.

attrs compiles a ``__repr__`` for every class it builds; with some forty value
classes imported at start-up that is about 4 ms of the time to the first QMP
answer.  Classes declared ``@attrs.frozen(repr=False)`` (or ``define``) inherit
:class:`FieldsRepr` instead: the same text attrs would print, built from
``attrs.fields`` when asked for.
"""

from __future__ import annotations

from typing import Any

import attrs


class FieldsRepr:
    """``ClassName(field=value, ...)``, as attrs prints it, for attrs classes."""

    __slots__ = ()

    def __repr__(self) -> str:
        cls: Any = type(self)  # an attrs class (the mixin is only for those)
        shown = ", ".join(f"{field.name}={getattr(self, field.name)!r}"
                          for field in attrs.fields(cls) if field.repr)
        return f"{type(self).__qualname__}({shown})"


class FieldsValue(FieldsRepr):
    """Value equality and hashing from the attrs fields, as ``attrs.frozen``
    generates them (same class, equal fields), shared instead of compiled per
    class.  For classes declared ``@attrs.frozen(repr=False, eq=False)``."""

    __slots__ = ()

    def _values(self) -> tuple[object, ...]:
        cls: Any = type(self)
        return tuple(getattr(self, field.name) for field in attrs.fields(cls) if field.eq)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, FieldsValue)
        return self._values() == other._values()

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash((type(self), self._values()))
