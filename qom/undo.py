"""An undo stack: how a multi-step plug leaves nothing behind when a step fails.

Each step that changes state pushes the callable that reverses it, right after
it succeeded.  On failure the stack runs in reverse order and the error goes
on; on success it is simply dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import attrs

from qom.logs import LazyLogger
from qom.reprs import FieldsRepr

log = LazyLogger(__name__)


@attrs.define(repr=False)
class UndoStack(FieldsRepr):
    """Reverse actions, run last-in first-out on :meth:`rollback`.

    Use it as a context manager: an exception inside the ``with`` block rolls
    back, a normal exit commits.
    """

    _actions: list[tuple[str, Callable[[], object]]] = attrs.field(factory=list)

    def push(self, undo: Callable[[], object], label: str = "") -> None:
        """Remember how to undo a step that has just succeeded."""
        self._actions.append((label or getattr(undo, "__qualname__", repr(undo)), undo))

    def __len__(self) -> int:
        return len(self._actions)

    @property
    def labels(self) -> list[str]:
        """What would be undone, oldest first (for tests and debugging)."""
        return [label for label, _ in self._actions]

    def rollback(self) -> None:
        """Run every undo action, newest first.

        An undo action that fails is logged and the others still run: the
        goal is to give back as much as possible, and the original error is
        the one the caller reports.
        """
        while self._actions:
            label, undo = self._actions.pop()
            try:
                undo()
            except Exception:
                log.exception("undo step %s failed", label)

    def commit(self) -> None:
        """Forget the undo actions: the operation succeeded."""
        self._actions.clear()

    def __enter__(self) -> UndoStack:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.rollback()
        else:
            self.commit()
