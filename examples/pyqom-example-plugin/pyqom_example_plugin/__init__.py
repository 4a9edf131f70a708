"""An example pyqom plugin: see :mod:`pyqom_example_plugin.plugin`."""
