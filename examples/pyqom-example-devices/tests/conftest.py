pytest_plugins = ["pyqom.testing"]
