"""``python -m pyqom``: the ``pyqom`` command (see :mod:`pyqom.cli`)."""

import sys

from pyqom.cli import main

sys.exit(main())
