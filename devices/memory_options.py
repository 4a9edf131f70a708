"""``-m [size=]megs[,slots=n,maxmem=size]`` as QEMU 7.2 parses and checks it.

Three stages, each with QEMU's messages:

1. :func:`parse_memory_option` - QemuOpts: keys ``size``, ``slots``,
   ``maxmem`` (``size`` implied); each value validated as a QemuOpts size or
   number.  Repeated ``-m`` options merge, the later key winning.
2. :func:`fix_up_memory_options` - the legacy unit rule: a non-zero ``size``
   whose last character is a digit means MiB; ``size`` 0 means "default".
3. :func:`machine_set_mem` - round to 8 KiB, then the ``maxmem`` / ``slots``
   consistency checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs

from qom import QomError, parse_qemu_opts
from qom.errors import SIZE_SUFFIX_HINT, invalid_parameter, parameter_expects
from qom.numbers import U64_MAX, NumberFormatError, parse_size, parse_u64
from qom.reprs import FieldsValue

MEMORY_KEYS = ("size", "slots", "maxmem")
DEFAULT_RAM_SIZE = 128 << 20
RAM_SIZE_ALIGN = 8192

Warn = Callable[[str], None]


@attrs.frozen(repr=False, eq=False)
class MemoryConfig(FieldsValue):
    """The machine's memory after ``machine_set_mem``.

    :ivar ram_size: initial RAM in bytes.
    :ivar maxram_size: ``maxmem``, or ``ram_size`` when not given.
    :ivar ram_slots: hotplug slots (0 when not given).
    """

    ram_size: int
    maxram_size: int
    ram_slots: int

    def as_qom(self) -> dict[str, int]:
        """The ``memory`` machine property as ``qom-get`` shows it."""
        value = {"size": self.ram_size}
        if self.ram_slots:
            value.update({"slots": self.ram_slots, "max-size": self.maxram_size})
        return value


def _check_size(name: str, text: str, warn: Warn | None) -> int:
    try:
        return parse_size(text, warn=warn)
    except NumberFormatError as err:
        if err.out_of_range:
            raise QomError(f"Value '{text}' is out of range for parameter '{name}'") from None
        error = parameter_expects(name, "a non-negative number below 2^64")
        error.hint = SIZE_SUFFIX_HINT
        raise error from None


def _check_number(name: str, text: str) -> int:
    try:
        return parse_u64(text)
    except NumberFormatError as err:
        if err.out_of_range:
            raise QomError(f"Value '{text}' is too large for parameter '{name}'") from None
        raise parameter_expects(name, "a number") from None


def parse_memory_option(text: str, merged: Mapping[str, str] | None = None,
                        warn: Warn | None = None) -> dict[str, str]:
    """Validate one ``-m`` argument and merge it over ``merged`` (earlier ``-m``s).

    :returns: the raw strings by key; the caller keeps them for the next ``-m``.
    :raises QomError: QemuOpts' message (the CLI adds ``-m <text>: ``).
    """
    result = dict(merged or {})
    for opt in parse_qemu_opts(text, implied_key="size"):
        if opt.name not in MEMORY_KEYS:
            raise invalid_parameter(opt.name)
        if opt.name == "slots":
            _check_number(opt.name, opt.value)
        else:
            _check_size(opt.name, opt.value, warn)
        result[opt.name] = opt.value
    return result


@attrs.frozen(repr=False, eq=False)
class MemoryOptions(FieldsValue):
    """Typed ``-m`` values before ``machine_set_mem``; ``None`` means not given."""

    size: int | None = None
    slots: int | None = None
    maxmem: int | None = None


def _keyval_size(name: str, text: str, warn: Warn | None) -> int:
    """A size as the machine's keyval visitor reads it (the ``memory`` property)."""
    try:
        return parse_size(text, warn=warn)
    except NumberFormatError:
        raise parameter_expects(f"memory.{name}", "size") from None


def fix_up_memory_options(raw: Mapping[str, str], warn: Warn | None = None) -> MemoryOptions:
    """QEMU's ``parse_memory_options``: the MiB rule for ``size``, the rest passed through.

    The strings are then read again as the machine's ``memory`` property (a
    keyval visitor): a hex size with a suffix warns a second time, and a
    ``size`` that overflows once ``M`` is appended fails with
    ``Parameter 'memory.size' expects size`` (no ``-m`` prefix on the CLI).
    """
    size: int | None = None
    text = raw.get("size")
    if text is not None:
        value = parse_size(text)
        if value != 0:
            if text[-1:].isdigit():
                text += "M"
            size = _keyval_size("size", text, warn)
    maxmem = _keyval_size("max-size", raw["maxmem"], warn) if "maxmem" in raw else None
    slots = _check_number("slots", raw["slots"]) if "slots" in raw else None
    return MemoryOptions(size=size, slots=slots, maxmem=maxmem)


def machine_set_mem(options: MemoryOptions,
                    default_ram_size: int = DEFAULT_RAM_SIZE) -> MemoryConfig:
    """QEMU's ``machine_set_mem``: defaults, 8 KiB rounding and consistency checks."""
    size = options.size if options.size is not None else default_ram_size
    # C arithmetic: the round-up wraps for sizes within 8 KiB of 2^64.
    size = ((size + RAM_SIZE_ALIGN - 1) // RAM_SIZE_ALIGN * RAM_SIZE_ALIGN) & U64_MAX
    if options.maxmem is not None:
        if options.maxmem < size:
            raise QomError(
                "invalid value of maxmem: maximum memory size "
                f"(0x{options.maxmem:x}) must be at least the initial memory size (0x{size:x})")
        if options.slots and options.maxmem == size:
            raise QomError(
                "invalid value of maxmem: memory slots were specified but maximum memory size "
                f"(0x{options.maxmem:x}) is equal to the initial memory size (0x{size:x})")
        maxram = options.maxmem
    else:
        if options.slots is not None:
            raise QomError("slots specified but no max-size")
        maxram = size
    return MemoryConfig(ram_size=size, maxram_size=maxram, ram_slots=options.slots or 0)


def memory_config(memory: str | int | MemoryOptions | None = None, *, slots: int | None = None,
                  maxmem: int | str | None = None) -> MemoryConfig:
    """Convenience for the Python API: a ``-m`` string, or keyword values.

    ``memory_config("1G,slots=3,maxmem=4G")`` and
    ``memory_config("1G", slots=3, maxmem="4G")`` are the same machine.  An int
    ``memory`` or ``maxmem`` is bytes (a bare number in ``-m`` text is MiB, as
    in QEMU).

    :raises ValueError: ``slots`` or ``maxmem`` both in ``memory`` and as a keyword.
    :raises QomError: what QEMU says of the same ``-m`` option.
    """
    if isinstance(memory, MemoryOptions):
        return machine_set_mem(memory)
    if isinstance(memory, int):
        memory = f"{memory}B"
    raw: dict[str, str] = parse_memory_option(memory) if memory else {}
    for name, value in (("slots", slots), ("maxmem", maxmem)):
        if value is None:
            continue
        if name in raw:
            raise ValueError(f"{name} is given twice: {name}={raw[name]} in the memory "
                             f"option and {name}={value!r} as a keyword")
        raw = parse_memory_option(f"{name}={value}B" if isinstance(value, int)
                                  and name == "maxmem" else f"{name}={value}", raw)
    return machine_set_mem(fix_up_memory_options(raw))
