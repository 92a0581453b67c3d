"""Storage backends: each executes the typed operations of :mod:`agentmem_core.ops`.

``valkey``: Valkey or Redis with a search module (valkey-search or RediSearch).
"""
