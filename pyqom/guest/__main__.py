"""``python -m pyqom.guest``: print the path of the shipped guest kernel."""

from pyqom.guest import kernel_path

print(kernel_path())
