"""Memory backends (``memory-backend-ram``, ``-file``, ``-memfd``), registered through plugins."""
