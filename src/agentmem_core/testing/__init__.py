"""Test support shipped with the library (nothing here is needed at run time).

* :mod:`agentmem_core.testing.server`: start a throwaway ``valkey-server`` (with the search module).
* :mod:`agentmem_core.testing.model`: :class:`~agentmem_core.testing.model.ReferenceModel`, the store's
  documented semantics in plain Python: the oracle of the model-based property test, and of any backend
  or conformance suite that wants to compare itself with the contract.

Submodules are imported on demand (``from agentmem_core.testing.model import ReferenceModel``), so importing
one never pulls in the other.
"""
