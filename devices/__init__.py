"""Device and machine types (the ``pc`` machine, ``pc-dimm``), registered through plugins."""
