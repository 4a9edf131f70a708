"""Errors raised by the object model.

Every error's ``str()`` is exactly the message QEMU 7.2 gives for the same
situation, so monitors can pass it through unchanged.  Extra context lives in
attributes, never in the message.  The tree::

    QomError                                  (Exception)
    +-- TypeRegistrationError                 (ValueError)   programmer errors in TypeInfo
    +-- UnknownTypeError                      (LookupError)
    +-- AbstractTypeError                     (TypeError)
    +-- ParameterError                        (ValueError)   QAPI-level argument errors
    +-- PropertyNotFoundError                 (LookupError)
    +-- PropertyAccessError                   (AttributeError)
    +-- DuplicatePropertyError                (ValueError)
    +-- InvalidPropertyValue                  (ValueError)   a setter refused a value
    +-- DeviceNotFoundError                   (LookupError)  QMP class DeviceNotFound
    +-- AmbiguousPathError                    (LookupError)
    +-- ObjectInUseError                      (RuntimeError)
    +-- RealizeError                                         realize / plug failed

``error_class`` is the QMP error class a monitor reports; ``hint`` is the extra
text QEMU prints on the command line and HMP (never over QMP).
"""

from __future__ import annotations

from typing import ClassVar

IDENTIFIER_HINT = "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter."
SIZE_SUFFIX_HINT = (
    "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
    "and exabytes, respectively."
)


class QomError(Exception):
    """Root of every pyqom error; ``str(err)`` is QEMU's message."""

    error_class: ClassVar[str] = "GenericError"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class TypeRegistrationError(QomError, ValueError):
    """A TypeInfo is malformed, duplicated, or the type graph is broken."""


class UnknownTypeError(QomError, LookupError):
    """A type name that no plugin registered."""


class AbstractTypeError(QomError, TypeError):
    """An attempt to instantiate an abstract type."""


class ParameterError(QomError, ValueError):
    """An argument failed QAPI-style validation (wrong type, missing, unexpected)."""


class PropertyNotFoundError(QomError, LookupError):
    """``Property 'T.name' not found``."""


class PropertyAccessError(QomError, AttributeError):
    """A property exists but cannot be read or written."""


class DuplicatePropertyError(QomError, ValueError):
    """A property (or child) name is already taken on an object."""


class InvalidPropertyValue(QomError, ValueError):
    """A property setter, ``complete()`` or ``realize()`` refused a value."""


class DeviceNotFoundError(QomError, LookupError):
    """A path or id that names no object."""

    error_class: ClassVar[str] = "DeviceNotFound"


class AmbiguousPathError(QomError, LookupError):
    """A partial path matches more than one object."""


class ObjectInUseError(QomError, RuntimeError):
    """An object cannot be deleted while something uses it."""


class RealizeError(QomError):
    """Realizing or plugging a device failed."""


def parameter_expects(name: str, expected: str) -> ParameterError:
    """QEMU's ``QERR_INVALID_PARAMETER_VALUE``: ``Parameter 'x' expects <what>``."""
    return ParameterError(f"Parameter '{name}' expects {expected}")


def invalid_parameter_type(name: str, expected: str) -> ParameterError:
    """QEMU's ``QERR_INVALID_PARAMETER_TYPE``."""
    return ParameterError(f"Invalid parameter type for '{name}', expected: {expected}")


def parameter_missing(name: str) -> ParameterError:
    """QEMU's ``QERR_MISSING_PARAMETER``."""
    return ParameterError(f"Parameter '{name}' is missing")


def parameter_unexpected(name: str) -> ParameterError:
    """The QAPI input visitors' message for a member the schema does not know."""
    return ParameterError(f"Parameter '{name}' is unexpected")


def invalid_parameter(name: str) -> ParameterError:
    """QEMU's ``QERR_INVALID_PARAMETER`` (QemuOpts and the opts visitor)."""
    return ParameterError(f"Invalid parameter '{name}'")


def enum_rejects(name: str, value: str) -> ParameterError:
    """An enum (or union tag) value that is not one of the allowed names."""
    return ParameterError(f"Parameter '{name}' does not accept value '{value}'")


def bad_identifier(name: str = "id") -> ParameterError:
    """An id that is not a QEMU identifier, with the hint HMP and the CLI print."""
    err = parameter_expects(name, "an identifier")
    err.hint = IDENTIFIER_HINT
    return err


def device_not_found(path: str) -> DeviceNotFoundError:
    """``Device '<path>' not found``, class DeviceNotFound."""
    return DeviceNotFoundError(f"Device '{path}' not found")
