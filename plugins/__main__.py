"""``python -m plugins``: the ``pyqom`` command (see :mod:`plugins.cli`)."""

import sys

from plugins.cli import main

sys.exit(main())
