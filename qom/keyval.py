"""Option strings: ``key=value,key=value`` as QEMU's command line and HMP write them.

Two syntaxes, as in QEMU 7.2:

* :func:`parse_keyval` - ``util/keyval.c``, used by HMP ``object_add``:
  dotted keys build nested objects (``host-nodes.0=0`` is a list), the first
  element may omit its key (the *implied* key), ``,,`` is a literal comma.
* :func:`parse_qemu_opts` - QemuOpts, used by ``-m``, ``-object``,
  ``-device`` and HMP ``device_add``: flat keys, repeated keys kept in order,
  and a bare ``name`` meaning ``name=on`` (``noname`` meaning ``name=off``),
  with QEMU's deprecation warning.

Both return strings; the :mod:`qom.inputs` readers turn them into typed
values with the messages of their path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from qom import errors
from qom.qdict import qdict_order
from qom.reprs import FieldsValue

# A key fragment is a QAPI name (a letter, then letters, digits, '-', '_');
# fragments after the first may also be list indexes (decimal digits).
_QAPI_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_INDEX = re.compile(r"[0-9]+")


def _scan_value(text: str, pos: int) -> tuple[str, int]:
    """A value up to the next lone ``,``; ``,,`` stands for ``,``."""
    out: list[str] = []
    while pos < len(text):
        if text[pos] == ",":
            if text[pos + 1 : pos + 2] == ",":
                out.append(",")
                pos += 2
                continue
            break
        out.append(text[pos])
        pos += 1
    return "".join(out), pos


def parse_keyval(text: str, implied_key: str | None = None) -> dict[str, Any]:
    """Parse a keyval string into nested dicts and lists of strings.

    A repeated key keeps its last value.

    :param implied_key: the key of a first element written without ``key=``.
    :raises ParameterError: with keyval's messages.
    """
    root: dict[str, Any] = {}
    pos = 0
    first = True
    while pos < len(text):
        key_end = pos
        while key_end < len(text) and text[key_end] not in "=,":
            key_end += 1
        if key_end < len(text) and text[key_end] == "=":
            key = text[pos:key_end]
            value, pos = _scan_value(text, key_end + 1)
        elif first and implied_key is not None:
            key = implied_key
            value, pos = _scan_value(text, pos)
        else:
            raise errors.QomError(f"Expected '=' after parameter '{text[pos:key_end]}'")
        _store(root, key, value)
        first = False
        pos += 1  # the separating comma; a trailing one is allowed
    return _listify(root, "")


def _store(root: dict[str, Any], key: str, value: str) -> None:
    fragments = key.split(".")
    for depth, fragment in enumerate(fragments):
        if not (_QAPI_NAME.fullmatch(fragment) or (depth and _INDEX.fullmatch(fragment))):
            raise errors.invalid_parameter(key)
    node = root
    for depth, fragment in enumerate(fragments[:-1]):
        child = node.setdefault(fragment, {})
        if not isinstance(child, dict):
            raise errors.QomError(
                f"Parameter '{'.'.join(fragments[: depth + 1])}' used inconsistently")
        node = child
    last = fragments[-1]
    if isinstance(node.get(last), dict):
        raise errors.QomError(f"Parameter '{key}' used inconsistently")
    node[last] = value


def _listify(root: dict[str, Any], prefix: str) -> Any:
    """Turn objects whose keys are exactly 0..n-1 into lists, as keyval does.

    Depth first, children before their parent, in key order (so the first
    error is keyval's); iterative, so a key of thousands of dotted fragments
    needs no Python recursion.
    """
    frames: list[tuple[dict[str, Any], str, Iterator[tuple[str, Any]], str]] = [
        (root, prefix, iter(list(root.items())), "")]
    while True:
        node, node_prefix, items, key_in_parent = frames[-1]
        for key, value in items:
            if isinstance(value, dict):
                frames.append((value, f"{node_prefix}{key}.", iter(list(value.items())), key))
                break
        else:
            frames.pop()
            result = _as_list(node, node_prefix)
            if not frames:
                return result
            frames[-1][0][key_in_parent] = result


def _as_list(node: dict[str, Any], prefix: str) -> Any:
    """An object whose keys are all indexes, as keyval's ``keyval_listify`` lists it.

    The index of a key is its decimal value (``00`` is 0).  Of ``n`` keys, only
    indexes below ``n`` are kept (a later one in QDict order replaces an earlier
    one with the same index); every index from 0 up to the highest seen, but at
    most ``n``, must be there, else ``Parameter 'a.I' missing`` for the first gap.
    """
    keys = list(node)
    if not keys or not all(k.isdigit() and k.isascii() for k in keys):
        return node
    count, highest = len(keys), -1
    elements: dict[int, Any] = {}
    for key in qdict_order(keys):
        index = int(key)
        highest = max(highest, index)
        if index < count:
            elements[index] = node[key]
    listed = []
    for index in range(min(count + 1, highest + 1)):
        if index not in elements:
            raise errors.QomError(f"Parameter '{prefix}{index}' missing")
        listed.append(elements[index])
    return listed


@attrs.frozen(repr=False, eq=False)
class QemuOpt(FieldsValue):
    """One ``name=value`` of a QemuOpts string."""

    name: str
    value: str


def parse_qemu_opts(text: str, implied_key: str | None = None,
                    warn: Callable[[str], None] | None = None) -> list[QemuOpt]:
    """Split a QemuOpts string into its options, in order (repeats kept).

    :param implied_key: the name of a first option written without ``name=``.
    :param warn: receives QEMU's warning for a short-form boolean (``name``
        or ``noname``), which 7.2 still accepts.
    """
    opts: list[QemuOpt] = []
    pos = 0
    first = True
    while pos < len(text):
        name_end = pos
        while name_end < len(text) and text[name_end] not in "=,":
            name_end += 1
        if name_end < len(text) and text[name_end] == "=":
            name = text[pos:name_end]
            value, pos = _scan_value(text, name_end + 1)
        elif first and implied_key is not None:
            name = implied_key
            value, pos = _scan_value(text, pos)
        else:
            flag = text[pos:name_end]
            pos = name_end
            if flag.startswith("no"):
                name, value, prefix = flag[2:], "off", "no"
            else:
                name, value, prefix = flag, "on", ""
            if warn is not None and name != "help":
                warn(f"short-form boolean option '{prefix}{name}' deprecated\n"
                     f"Please use {name}={value} instead")
        opts.append(QemuOpt(name, value))
        first = False
        pos += 1  # skip the separating comma
    return opts


def qemu_opts_dict(text: str, implied_key: str | None = None,
                   warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """A QemuOpts string as a dict, as the opts visitor sees it.

    Repeated keys become lists of strings (``host-nodes=0,host-nodes=1``),
    except ``id`` and the implied key, where the last one wins.
    """
    result: dict[str, Any] = {}
    for opt in parse_qemu_opts(text, implied_key=implied_key, warn=warn):
        previous = result.get(opt.name)
        if previous is None or opt.name in ("id", implied_key):
            result[opt.name] = opt.value
        elif isinstance(previous, list):
            previous.append(opt.value)
        else:
            result[opt.name] = [previous, opt.value]
    return result
