"""The Lua scripts of leases: :class:`~agentmem_core.ops.AcquireLease` and ``ReleaseLease`` on Valkey.

A lease is one string key ``P lease:<name>`` (``P`` = the store's key prefix, see
:mod:`agentmem_core._encoding`) holding the holder's id, with a PX expiry: the server's clock ends it, so
a holder that dies loses it for every process at once. Each script touches that one key (cluster-safe).
They are not in ``_scripts.ALL_SCRIPTS``: leases are rare, and the backend loads a script on its first
NOSCRIPT (``backends/valkey_client.py``), so setup need not preload them.
"""

from __future__ import annotations

from agentmem_core._scripts import Script

__all__ = ["LEASE_ACQUIRE", "LEASE_RELEASE"]

LEASE_ACQUIRE = Script(
    "lease_acquire",
    """
-- KEYS: lease   ARGV: holder, ttl_ms   -> 1 when holder holds it now, 0 when another holder does
-- SET NX answers nil (false in Lua) when the key exists: then only its own holder may extend it.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
""",
)

LEASE_RELEASE = Script(
    "lease_release",
    """
-- KEYS: lease   ARGV: holder   -> 1 when holder held it and it is deleted, else 0
-- Compare-and-delete in one script: a GET then DEL from the client could delete the lease another
-- process took between the two after this holder's had expired.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""",
)
