"""``python -m pyqom``: the ``pyqom`` command (see :mod:`pyqom.launch`)."""

import sys

from pyqom.launch import main

sys.exit(main())
