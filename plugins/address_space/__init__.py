"""Built-in plugin package: the guest's CPU and physical address space (Unicorn).

:mod:`.engine` is the only module of pyqom that imports :mod:`unicorn`;
:mod:`.plugin` offers it to the machine as services.
"""
