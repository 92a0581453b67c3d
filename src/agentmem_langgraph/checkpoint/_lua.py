"""Server-side scripts: one per checkpointer operation, so that each runs in one round trip, atomically.

Every script receives the six keys of one thread (see :mod:`._keys`) as ``KEYS[1..6]`` and a TTL in
milliseconds as ``ARGV[1]`` (``0`` = leave expiry alone). Scripts that write, and reads when
``refresh_on_read`` is on, re-apply that TTL to all six keys, so a thread expires as a whole.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = [
    "DELETE_RUNS",
    "FETCH_MEMBERS",
    "FETCH_RANGE",
    "PRUNE_KEEP_LATEST",
    "PUT",
    "PUT_WRITES",
    "RESTORE_THREAD",
    "SCRIPTS",
    "Script",
]


@dataclass(frozen=True)
class Script:
    """A Lua script and its SHA1 (for EVALSHA)."""

    name: str
    body: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.body.encode()).hexdigest())


# Helpers shared by all scripts. Lua 5.1 patterns mishandle NUL, so only plain string.find is used.
_PRELUDE = r"""
local K_IDS, K_CP, K_BLOBS, K_REFS, K_WRITES, K_RUNS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local TTL = tonumber(ARGV[1])

local function touch()
  if TTL > 0 then for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], TTL) end end
end

-- split a \1-separated list; keep_empty keeps positional (possibly empty) parts
local function split(s, keep_empty)
  local out = {}
  if not s or s == '' then return out end
  local start = 1
  while true do
    local i = string.find(s, '\1', start, true)
    local part
    if i then part = string.sub(s, start, i - 1) else part = string.sub(s, start) end
    if keep_empty or part ~= '' then out[#out + 1] = part end
    if not i then return out end
    start = i + 1
  end
end

-- unpack() is limited by the Lua stack: send long argument lists in chunks
local function each_chunk(items, fn)
  for i = 1, #items, 500 do fn(unpack(items, i, math.min(i + 499, #items))) end
end

local function hmget_all(key, fields)
  local out = {}
  each_chunk(fields, function(...)
    local got = redis.call('HMGET', key, ...)
    for j = 1, #got do out[#out + 1] = got[j] end
  end)
  return out
end

local function release_blob(bf)
  if redis.call('HINCRBY', K_REFS, bf, -1) <= 0 then
    redis.call('HDEL', K_REFS, bf)
    redis.call('HDEL', K_BLOBS, bf)
  end
end

-- one checkpoint as {member, record, blob fields, blob values, write values}, or {member} if absent
local function fetch(m)
  local got = redis.call('HMGET', K_CP, m, m .. '\0v', m .. '\0w')
  if not got[1] then return {m} end
  return {m, got[1], got[2] or '', hmget_all(K_BLOBS, split(got[2])), hmget_all(K_WRITES, split(got[3]))}
end

-- remove one checkpoint with its writes and the blobs nobody else references; collect its run
local function drop(m, dead_runs)
  local got = redis.call('HMGET', K_CP, m .. '\0v', m .. '\0w', m .. '\0m')
  for _, bf in ipairs(split(got[1])) do release_blob(bf) end
  each_chunk(split(got[2]), function(...) redis.call('HDEL', K_WRITES, ...) end)
  if dead_runs and got[3] then
    local run = split(got[3], true)[2]
    if run and run ~= '' then
      dead_runs[run] = dead_runs[run] or {}
      dead_runs[run][m] = true
    end
  end
  redis.call('HDEL', K_CP, m, m .. '\0v', m .. '\0w', m .. '\0m')
  redis.call('ZREM', K_IDS, m)
end

-- take dropped members out of their runs' member lists
local function fix_runs(dead_runs)
  for run, gone in pairs(dead_runs) do
    local keep = {}
    for _, m in ipairs(split(redis.call('HGET', K_RUNS, run))) do
      if not gone[m] then keep[#keep + 1] = m end
    end
    if #keep == 0 then redis.call('HDEL', K_RUNS, run)
    else redis.call('HSET', K_RUNS, run, table.concat(keep, '\1')) end
  end
end

-- a thread without checkpoints keeps nothing (orphan writes of never-saved checkpoints included)
local function drop_if_empty()
  if redis.call('ZCARD', K_IDS) == 0 then
    redis.call('DEL', K_IDS, K_CP, K_BLOBS, K_REFS, K_WRITES, K_RUNS)
    return true
  end
  return false
end
"""


def _script(name: str, body: str) -> Script:
    return Script(name, _PRELUDE + body)


# ARGV: ttl, member, record, blob-field list, meta ("parent \1 run \1 delta"), run_id, (blob field, value)*
PUT = _script(
    "put",
    r"""
local m, run = ARGV[2], ARGV[6]
for i = 7, #ARGV, 2 do redis.call('HSET', K_BLOBS, ARGV[i], ARGV[i + 1]) end
for _, bf in ipairs(split(ARGV[4])) do redis.call('HINCRBY', K_REFS, bf, 1) end
local old = redis.call('HMGET', K_CP, m, m .. '\0v', m .. '\0m')
if old[1] then
  -- the same checkpoint saved again: release what the previous save referenced (after the new
  -- references were counted, so shared blobs survive)
  for _, bf in ipairs(split(old[2])) do release_blob(bf) end
  local old_run = split(old[3], true)[2] or ''
  if old_run == run then run = ''
  elseif old_run ~= '' then fix_runs({[old_run] = {[m] = true}}) end
end
redis.call('HSET', K_CP, m, ARGV[3], m .. '\0v', ARGV[4], m .. '\0m', ARGV[5])
redis.call('ZADD', K_IDS, 0, m)
if run ~= '' then
  local cur = redis.call('HGET', K_RUNS, run)
  if cur then redis.call('HSET', K_RUNS, run, cur .. '\1' .. m) else redis.call('HSET', K_RUNS, run, m) end
end
touch()
return 1
""",
)

# ARGV: ttl, member, (write field, value, mode)*; mode "n" = keep an existing write, "o" = overwrite
PUT_WRITES = _script(
    "put_writes",
    r"""
local wf = ARGV[2] .. '\0w'
local added = {}
for i = 3, #ARGV, 3 do
  local new
  if ARGV[i + 2] == 'n' then new = redis.call('HSETNX', K_WRITES, ARGV[i], ARGV[i + 1])
  else new = redis.call('HSET', K_WRITES, ARGV[i], ARGV[i + 1]) end
  if new == 1 then added[#added + 1] = ARGV[i] end
end
if #added > 0 then
  local cur = redis.call('HGET', K_CP, wf)
  local joined = table.concat(added, '\1')
  if cur then joined = cur .. '\1' .. joined end
  redis.call('HSET', K_CP, wf, joined)
end
touch()
return #added
""",
)

# ARGV: ttl, min, max, count -> newest-first checkpoints of one namespace between the lex bounds
FETCH_RANGE = _script(
    "fetch_range",
    r"""
local ms = redis.call('ZREVRANGEBYLEX', K_IDS, ARGV[3], ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for i, m in ipairs(ms) do out[i] = fetch(m) end
touch()
return out
""",
)

# ARGV: ttl, member* -> the named checkpoints ({member} for missing ones)
FETCH_MEMBERS = _script(
    "fetch_members",
    r"""
local out = {}
for i = 2, #ARGV do out[i - 1] = fetch(ARGV[i]) end
touch()
return out
""",
)

# ARGV: ttl, run_id* -> number of checkpoints deleted
DELETE_RUNS = _script(
    "delete_runs",
    r"""
local n = 0
for i = 2, #ARGV do
  for _, m in ipairs(split(redis.call('HGET', K_RUNS, ARGV[i]))) do drop(m, nil); n = n + 1 end
  redis.call('HDEL', K_RUNS, ARGV[i])
end
if n > 0 and not drop_if_empty() then touch() end
return n
""",
)

# ARGV: ttl -> keep the newest checkpoint of each namespace, plus the ancestors a DeltaChannel still
# needs (walk parents while the checkpoint's meta flags pending delta writes), drop the rest
PRUNE_KEEP_LATEST = _script(
    "prune_keep_latest",
    r"""
local members = redis.call('ZRANGE', K_IDS, 0, -1)
local head = {}
for _, m in ipairs(members) do head[string.sub(m, 1, string.find(m, '\0', 1, true) - 1)] = m end
local keep = {}
for ns, m in pairs(head) do
  local cur = m
  while cur and not keep[cur] do
    keep[cur] = true
    local meta = split(redis.call('HGET', K_CP, cur .. '\0m'), true)
    if meta[3] == '1' and meta[1] and meta[1] ~= '' then cur = ns .. '\0' .. meta[1] else cur = nil end
  end
end
local dead, n = {}, 0
for _, m in ipairs(members) do
  if not keep[m] then drop(m, dead); n = n + 1 end
end
fix_runs(dead)
if n > 0 then touch() end
return n
""",
)

# ARGV: ttl, DUMP payload of each of the six source keys ('' = absent) -> 1, or 0 if the target has data
RESTORE_THREAD = _script(
    "restore_thread",
    r"""
for i = 1, 6 do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
for i = 1, 6 do
  if ARGV[i + 1] ~= '' then redis.call('RESTORE', KEYS[i], TTL, ARGV[i + 1]) end
end
return 1
""",
)

SCRIPTS = (PUT, PUT_WRITES, FETCH_RANGE, FETCH_MEMBERS, DELETE_RUNS, PRUNE_KEEP_LATEST, RESTORE_THREAD)
