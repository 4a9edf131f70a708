"""Shared test set-up: pyqom's own pytest plugin provides the fixtures."""

pytest_plugins = ["plugins.testing"]
