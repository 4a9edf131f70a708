"""Path resolution in the composition tree, with QEMU's rules.

* An absolute path (leading ``/``) walks ``child<>`` and ``link<>``
  properties from the root; empty components (``//``, a trailing ``/``) are
  skipped; ``..`` is just a name that does not exist.
* A partial path (no leading ``/``) matches every object in the tree from
  which the path resolves as an absolute path would; the search descends
  through ``child<>`` properties only.  More than one match is *ambiguous*.

Both take a QOM type name: a match must be castable to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qom.typeinfo import TYPE_OBJECT

if TYPE_CHECKING:
    from qom.object import Object


def resolve_component(parent: Object, name: str) -> Object | None:
    """The object the ``child<>`` or ``link<>`` property ``name`` of ``parent`` points to."""
    prop = parent.find_property(name)
    if prop is None or prop.resolve is None:
        return None
    return prop.resolve(parent)


def _resolve_abs(parent: Object, parts: list[str], type_name: str) -> Object | None:
    current = parent
    for part in parts:
        if part == "":
            continue
        found = resolve_component(current, part)
        if found is None:
            return None
        current = found
    return current if current.is_a(type_name) else None


Resolution = tuple["Object | None", bool]


def _resolve_partial(parent: Object, parts: list[str], type_name: str) -> Resolution:
    found = _resolve_abs(parent, parts, type_name)
    for _, child in list(parent.children()):
        match, ambiguous = _resolve_partial(child, parts, type_name)
        if ambiguous:
            return None, True
        if match is not None:
            if found is not None:
                return None, True
            found = match
    return found, False


def resolve_path(root: Object, path: str, type_name: str = TYPE_OBJECT) -> Resolution:
    """QEMU's ``object_resolve_path_type``: (object or None, ambiguous)."""
    parts = path.split("/")
    if path.startswith("/"):
        return _resolve_abs(root, parts[1:], type_name), False
    return _resolve_partial(root, parts if path else [], type_name)


def resolve_path_at(parent: Object, root: Object, path: str) -> Object | None:
    """QEMU's ``object_resolve_path_at``: absolute from ``root``, else relative to ``parent``."""
    if path.startswith("/"):
        return _resolve_abs(root, path.split("/")[1:], TYPE_OBJECT)
    return _resolve_abs(parent, path.split("/"), TYPE_OBJECT)
