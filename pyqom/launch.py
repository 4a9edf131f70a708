"""The ``pyqom`` console script and ``python -m pyqom``: :func:`pyqom.cli.main`,
with Python's cyclic garbage collector held off while pyqom starts.

Start-up creates tens of thousands of long-lived objects (classes, functions,
the type registry) and no garbage cycles; the collector would walk them again
and again, which costs about 5 ms of the time to the first QMP answer.  Once
start-up is over, :func:`pyqom.cli.serve` freezes what exists (the collector
then skips it for good) and turns collection back on.  Importing
:mod:`pyqom.cli` as a library changes nothing about the collector.
"""

from __future__ import annotations

import gc


def main() -> int:
    """Run ``pyqom`` with ``sys.argv``; returns the exit status."""
    gc.disable()
    try:
        from pyqom.cli import main as run

        return run()
    finally:
        gc.enable()
