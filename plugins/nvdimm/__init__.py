"""The built-in NVDIMM plugin (:mod:`plugins.nvdimm.plugin`), built on the contract only."""
