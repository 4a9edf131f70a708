"""Loggers that import :mod:`logging` on first use.

pyqom logs only when something goes wrong (a failed undo step, a monitor
command that raised, a backend warning) or when asked to (prealloc progress),
while importing :mod:`logging` costs about 4 ms of every start-up before the
first QMP answer.  A :class:`LazyLogger` stands for ``logging.getLogger(name)``
and imports :mod:`logging` only when a message is logged.
"""

from __future__ import annotations

from typing import Any


class LazyLogger:
    """``logging.getLogger(name)``'s ``debug``/``info``/``warning``/``error``/``exception``,
    without importing :mod:`logging` until one of them is called."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def _log(self, level: str, msg: str, args: tuple[Any, ...], exc_info: bool = False) -> None:
        import logging

        logger = logging.getLogger(self.name)
        # stacklevel 3: the record names the caller of debug()/warning()/..., not this module
        getattr(logger, level)(msg, *args, exc_info=exc_info, stacklevel=3)

    def debug(self, msg: str, *args: Any) -> None:
        self._log("debug", msg, args)

    def info(self, msg: str, *args: Any) -> None:
        self._log("info", msg, args)

    def warning(self, msg: str, *args: Any) -> None:
        self._log("warning", msg, args)

    def error(self, msg: str, *args: Any) -> None:
        self._log("error", msg, args)

    def exception(self, msg: str, *args: Any) -> None:
        """An error with the traceback of the exception being handled."""
        self._log("error", msg, args, exc_info=True)
