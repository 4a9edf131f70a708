"""The shared ``__repr__`` prints what attrs' generated one prints."""

import attrs

from qom.reprs import FieldsRepr


@attrs.frozen
class Generated:
    name: str
    size: int = 0
    hidden: object = attrs.field(default=None, repr=False)
    _private: int = 1


@attrs.frozen(repr=False)
class Shared(FieldsRepr):
    name: str
    size: int = 0
    hidden: object = attrs.field(default=None, repr=False)
    _private: int = 1


def test_same_text_as_attrs() -> None:
    generated = repr(Generated("m1", 4, object(), 2))
    assert repr(Shared("m1", 4, object(), 2)) == generated.replace("Generated", "Shared")
