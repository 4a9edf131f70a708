"""Example devices for pyqom, built on the plugin contract alone."""
