"""The shared ``__repr__`` prints what attrs' generated one prints."""

import attrs

from qom.reprs import FieldsRepr, FieldsValue


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


@attrs.frozen(repr=False, eq=False)
class Value(FieldsValue):
    name: str
    size: int = 0
    note: str = attrs.field(default="", eq=False)


def test_value_equality_and_hash_as_attrs_frozen() -> None:
    assert Value("a", 1, "x") == Value("a", 1, "y")      # eq=False fields do not count
    assert Value("a", 1) != Value("a", 2)
    assert hash(Value("a", 1)) == hash(Value("a", 1))
    assert Value("a") != Shared("a") and {Value("a"): 1}[Value("a")] == 1
