"""Server-side Lua scripts.

Every key a script touches is passed in KEYS (but the child vector documents of a memory, named after
its key and so in its hash slot), and each call is atomic. On a cluster every call touches
the keys of ONE scope (one hash slot); on a standalone server, FETCH may take the hits of several scopes
in one call (one command instead of one per scope).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from agentmem_core.schema import CHILD_EXPIRES_AT

__all__ = [
    "ALIAS_CLAIM",
    "ALIAS_RELEASE",
    "DELETE",
    "DUPLICATE",
    "FETCH",
    "READ",
    "REFRESH",
    "PAGE",
    "SCOPE_STATS",
    "TERM_STATS",
    "UPDATE",
    "WRITE",
    "WRITE_MANY",
    "Script",
]


@dataclass(frozen=True)
class Script:
    """A Lua script and its SHA1 (EVALSHA; the executor loads it on NOSCRIPT).

    ``read_only``: it writes nothing, so running it again is harmless (after NOSCRIPT a read that ran
    before a failed write of its batch runs again, to see that write).
    """

    name: str
    body: str
    read_only: bool = False
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.body.encode()).hexdigest())


# The scope's term counts (t: term -> how many of its memories hold it in x_terms, the lexical channel's
# document frequencies, kept at write time so a recall reads them instead of counting postings; "#v"
# marks them complete: set when a write finds the scope empty, dropped when a memory's terms cannot be
# found) and xt: the x_terms of its expiring memories (id -> terms), so a memory the server reclaimed is
# still uncounted. A memory is counted while it is a member of z: every uncount goes with a ZREM of z.
_TERMS = """
local function add_terms(t, terms, by)
  for term in string.gmatch(terms, '[^|]+') do
    if redis.call('HINCRBY', t, term, by) <= 0 then redis.call('HDEL', t, term) end
  end
end
-- a counted memory leaves the counts: its terms from xt, else from its hash (held: its x_terms; exists:
-- whether the hash is still there), else they are unknown and the counts no longer complete
local function uncount(t, xt, id, held, exists)
  local terms = redis.call('HGET', xt, id)
  if terms then
    redis.call('HDEL', xt, id)
  elseif exists then
    terms = held or ''
  else
    redis.call('HDEL', t, '#v')
    return
  end
  add_terms(t, terms, -1)
end
local function count(t, xt, id, terms, expiring)
  if terms then add_terms(t, terms, 1) end
  if expiring then redis.call('HSET', xt, id, terms or '') end
end
"""

# Drop the scope's bookkeeping of memories whose TTL has passed (the keys themselves expire by PEXPIRE).
# x holds "<kind>|<id>" so the per-kind counts stay exact without reading the expired hash.
# i is the scope's ZSET of ids by importance: capacity eviction reads its low end, so choosing victims
# costs the same whatever the scope's size.
_PURGE = _TERMS + """
local function purge(z, x, c, i, t, xt, now)
  local gone = redis.call('ZRANGEBYSCORE', x, '-inf', now)
  for _, m in ipairs(gone) do
    local sep = string.find(m, '|', 1, true)
    local kind = string.sub(m, 1, sep - 1)
    local id = string.sub(m, sep + 1)
    if redis.call('ZREM', z, id) == 1 then
      redis.call('HINCRBY', c, kind, -1)
      uncount(t, xt, id, nil, false)
    else
      redis.call('HDEL', xt, id)
    end
    redis.call('ZREM', i, id)
  end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', x, '-inf', now) end
end
"""


# A memory's vectors after the first (remember(texts=...)) are indexed as child documents <mem>:<j>, j =
# 1..nv: a copy of every field of the memory but its content, its lexical postings and the expiry index
# field, plus one vector, and an expiry index field long past (schema.CHILD_EXPIRES_AT). KNN (filtered by
# the memory's own fields) finds them, and the client maps a child's row to its memory; a filter-only
# query carries "not expired", or subtracts its "expired" matches (_counts), so a child never counts.
# Every script that changes an indexed field of such a memory rewrites its children from it.
_CHILDREN = """
local CHILD_SKIP = {
  content = true, x_terms = true, x_expires_at = true, embedding = true, vx = true, nv = true,
}
local function drop_children(mem, n)
  for j = 1, n do redis.call('DEL', mem .. ':' .. j) end
end
local function write_children(mem, pttl)
  local all = redis.call('HGETALL', mem)
  local base, vx, n = {}, nil, 0
  for i = 1, #all, 2 do
    local name = all[i]
    if name == 'vx' then vx = all[i + 1]
    elseif name == 'nv' then n = tonumber(all[i + 1])
    elseif not CHILD_SKIP[name] then base[#base + 1] = name; base[#base + 1] = all[i + 1] end
  end
  if n == 0 or not vx then return end
  local w = #vx / n
  for j = 1, n do
    local child = mem .. ':' .. j
    redis.call('HSET', child, 'embedding', string.sub(vx, (j - 1) * w + 1, j * w),
      'x_expires_at', '@CHILD_EXPIRES_AT@', unpack(base))
    if pttl > 0 then redis.call('PEXPIRE', child, pttl) end
  end
end
local function rewrite_children(mem)
  local n = tonumber(redis.call('HGET', mem, 'nv') or '0')
  if n > 0 then
    drop_children(mem, n)
    write_children(mem, redis.call('PTTL', mem))
  end
end
""".replace("@CHILD_EXPIRES_AT@", str(CHILD_EXPIRES_AT))

# One memory's write (WRITE's body, and each memory of WRITE_MANY): A[o+1..o+10] are WRITE's ARGV[1..10]
# and its field pairs are A[o+11..last]; ``shared``: more field pairs (WRITE_MANY's, every memory of the
# call has them), or nil; ``size``: the scope's size (ZCARD z) when the caller knows it, or nil; ``acc``:
# WRITE_MANY's pending bookkeeping, or nil. With it, the scope's write sequence is counted here and its
# kind counts and importance ZADDs are summed, for flush_acc to send once per call instead of once per
# memory (a call to the server from Lua costs as much as a small command): nothing in between reads them.
_WRITE_ONE = """
local function next_seq(c, acc)
  if not acc then return redis.call('HINCRBY', c, '#seq', 1) end
  if not acc.seq then acc.seq = tonumber(redis.call('HGET', c, '#seq') or '0') end
  acc.seq = acc.seq + 1
  acc.seq_changed = true
  return acc.seq
end
local function flush_acc(c, i, acc)
  if acc.seq_changed then redis.call('HSET', c, '#seq', acc.seq) end
  for kind, n in pairs(acc.kinds) do redis.call('HINCRBY', c, kind, n) end
  if #acc.imp > 0 then redis.call('ZADD', i, unpack(acc.imp)) end
end
local function write_one(mem, stats, z, x, c, i, t, xt, A, o, last, shared, size, acc)
  local now, id, created, ttl = A[o + 1], A[o + 2], A[o + 3], tonumber(A[o + 4])
  local exp, kind = A[o + 5], A[o + 6]
  local nv = tonumber(A[o + 9])
  size = size or redis.call('ZCARD', z)  -- kept up to date below: each ZREM and ZADD of z says what it did
  if size == 0 then  -- an empty scope: its term counts start (again) complete
    redis.call('DEL', t, xt)
    redis.call('HSET', t, '#v', '1')
  end
  local old = redis.call('HMGET', mem, 'kind', 'created_at', 'opt', 'nv', 'x_terms')
  local old_kind = old[1]
  local is_new = 1
  local keep = created == ''
  if keep then created = old[2] or now end
  -- the scope's write sequence: listing breaks created_at ties by it (exact insertion order); a re-put
  -- key keeps its place
  local seq = (keep and old[3] and string.match(old[3], '^(%d+)|')) or next_seq(c, acc)
  if old_kind then
    is_new = 0
    if redis.call('ZREM', z, id) == 1 then
      size = size - 1
      redis.call('HINCRBY', c, old_kind, -1)
      uncount(t, xt, id, old[5], true)
    else
      redis.call('HDEL', xt, id)
    end
    redis.call('ZREM', x, old_kind .. '|' .. id)
    redis.call('DEL', mem)
  elseif redis.call('ZSCORE', z, id) then  -- reclaimed by the server before its expiry here
    uncount(t, xt, id, nil, false)
  end
  if old[4] then drop_children(mem, tonumber(old[4])) end
  -- ONE HSET: every write to an indexed hash re-indexes the whole document (the vector included), so
  -- the kept created_at and the sequence go into the same call.
  if shared then  -- one list of every field, the kept time in place of the sent one wherever it is
    local f = {'opt', seq .. '|' .. A[o + 8]}
    if nv > 0 then f[3] = 'nv'; f[4] = A[o + 9]; f[5] = 'vx'; f[6] = A[o + 10] end
    local n = #f
    for j = 1, #shared do f[n + j] = shared[j] end
    n = #f - o - 10
    for j = o + 11, last do f[n + j] = A[j] end
    if keep then
      for j = 3, #f - 1, 2 do
        if f[j] == 'created_at' or f[j] == 'x_created_at' then f[j + 1] = created end
      end
    end
    redis.call('HSET', mem, unpack(f))
  else
    -- WRITE: the client sends created_at and x_created_at as the first two field pairs
    -- (A[o+11..o+14]), so a kept time replaces them in place (unpack last in the call expands every
    -- remaining value, without copying A)
    if keep then A[o + 12] = created; A[o + 14] = created end
    if nv > 0 then
      redis.call('HSET', mem, 'opt', seq .. '|' .. A[o + 8], 'nv', A[o + 9], 'vx', A[o + 10],
        unpack(A, o + 11, last))
    else
      redis.call('HSET', mem, 'opt', seq .. '|' .. A[o + 8], unpack(A, o + 11, last))
    end
  end
  size = size + redis.call('ZADD', z, created, id)  -- 1 for a new member, 0 for one already there
  if acc then  -- ZADD of several members applies them in order: a memory written twice keeps its last
    acc.kinds[kind] = (acc.kinds[kind] or 0) + 1
    acc.imp[#acc.imp + 1] = A[o + 7]
    acc.imp[#acc.imp + 1] = id
  else
    redis.call('HINCRBY', c, kind, 1)
    redis.call('ZADD', i, A[o + 7], id)
  end
  local terms = nil
  for j = o + 11, last, 2 do
    if A[j] == 'x_terms' then terms = A[j + 1]; break end
  end
  if not terms and shared then
    for j = 1, #shared, 2 do
      if shared[j] == 'x_terms' then terms = shared[j + 1]; break end
    end
  end
  count(t, xt, id, terms, ttl > 0)
  if ttl > 0 then
    redis.call('PEXPIRE', mem, ttl)
    redis.call('ZADD', x, exp, kind .. '|' .. id)
  end
  if nv > 0 then write_children(mem, ttl) end
  -- counters live in their own (non-indexed) hash, created on first reinforcement; keep its lifetime
  if redis.call('EXISTS', stats) == 1 then
    if is_new == 1 then redis.call('DEL', stats)
    elseif ttl > 0 then redis.call('PEXPIRE', stats, ttl)
    else redis.call('PERSIST', stats) end
  end
  return {is_new, size}
end
"""

WRITE = Script(
    "write",
    _PURGE
    + _CHILDREN
    + _WRITE_ONE
    + """
-- KEYS: mem, stats, z, x, c, i, t, xt
-- ARGV: now, id, created_at ('' = keep a replaced memory's, else now), ttl_ms, expires_at, kind,
--       importance, opt without its sequence ("ttl|flags|caller id"), the number of vectors after the
--       first, those vectors (concatenated blobs), 'created_at', t, 'x_created_at', t, field, value, ...
purge(KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[1])
return write_one(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV, 0, #ARGV,
  nil, nil, nil)
""",
)

WRITE_MANY = Script(
    "write_many",
    _PURGE
    + _CHILDREN
    + _WRITE_ONE
    + """
-- Several memories of ONE scope, in order, each exactly as WRITE would write it (one call instead of one
-- per memory: a chat session's batch of small messages spends a share of its time on each call).
-- KEYS: z, x, c, i, t, xt, then mem, stats of each memory
-- ARGV: the number s of shared arguments, then those s (field, value pairs that every memory of the call
--       has: sent once), then per memory the number n of its arguments and its n arguments, as WRITE's
--       ARGV with only the field pairs that are its own
-- Returns WRITE's reply of each memory, in order.
local s = tonumber(ARGV[1])
local shared = {}
for j = 1, s do shared[j] = ARGV[1 + j] end
purge(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[s + 3])  -- the first memory's now
local out, o, j, size = {}, s + 1, 0, nil
local acc = {kinds = {}, imp = {}}
while o < #ARGV do
  local n = tonumber(ARGV[o + 1])
  j = j + 1
  out[j] = write_one(KEYS[5 + 2 * j], KEYS[6 + 2 * j], KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6],
    ARGV, o + 1, o + 1 + n, shared, size, acc)
  size = out[j][2]  -- the next memory's scope size, without asking the server again
  o = o + 1 + n
end
flush_acc(KEYS[3], KEYS[4], acc)
return out
""",
)

FETCH = Script(
    "fetch",
    """
-- Read recalled memories (their counters and stored fields) and, when ARGV[1] is '1', reinforce them.
-- KEYS: mem1, stats1, mem2, stats2, ...   ARGV: reinforce ('1' | '0'), now, field1, field2, ...
-- -> per memory: -1 when it is gone, else
--    {access_count, last_accessed_at, duplicate_count, {field values}} with the counters as they were
--    before this call (so a hit is scored from its previous access).
local reinforce, now = ARGV[1] == '1', ARGV[2]
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
local out = {}
for i = 1, #KEYS, 2 do
  local pttl = redis.call('PTTL', KEYS[i])
  if pttl == -2 then
    out[#out + 1] = -1
  else
    local c = redis.call('HMGET', KEYS[i + 1], 'access_count', 'last_accessed_at', 'duplicate_count')
    if reinforce then
      redis.call('HINCRBY', KEYS[i + 1], 'access_count', 1)
      redis.call('HSET', KEYS[i + 1], 'last_accessed_at', now)
      if pttl > 0 then redis.call('PEXPIRE', KEYS[i + 1], pttl) end
    end
    local values = {}
    if #fields > 0 then values = redis.call('HMGET', KEYS[i], unpack(fields)) end
    out[#out + 1] = {c[1], c[2], c[3], values}
  end
end
return out
""",
)

READ = Script(
    "read",
    """
-- Read stored fields of memories (and their counters): what one HMGET per hash would, as one command
-- (packing and parsing one command instead of two per memory is most of a page read's client time).
-- KEYS: mem1, [stats1,] mem2, [stats2,] ...   ARGV: counters ('1' | '0'), m, m counter names, fields...
-- -> per memory: {field values, counter values ({} without counters)}; values of a missing hash are nil.
local counters, m = ARGV[1] == '1', tonumber(ARGV[2])
local names, fields = {}, {}
for i = 3, 2 + m do names[#names + 1] = ARGV[i] end
for i = 3 + m, #ARGV do fields[#fields + 1] = ARGV[i] end
local step = counters and 2 or 1
local out = {}
for i = 1, #KEYS, step do
  local values = redis.call('HMGET', KEYS[i], unpack(fields))
  local c = {}
  if counters then c = redis.call('HMGET', KEYS[i + 1], unpack(names)) end
  out[#out + 1] = {values, c}
end
return out
""",
    read_only=True,
)

PAGE = Script(
    "page",
    """
-- A scope's memories by creation time and their stored fields (and counters): ZRANGEBYSCORE and READ in
-- one command, a page read in one round trip. The memory and counter hashes are named after the scope's
-- hash tag, so they live in the slot of KEYS[1] (like the child vector documents, they are not in KEYS).
-- KEYS: z   ARGV: newest ('1' | '0'), bound ('+inf' | '-inf' | number), limit, the scope's tag, the
--               key prefixes of its memory and counter hashes (up to the tag's closing brace),
--               counters ('1' | '0'), m, m counter names, fields...
-- -> per listed member: {id, created_at, field values, counter values ({} without counters)}
local newest, bound, limit, skip = ARGV[1] == '1', ARGV[2], ARGV[3], #ARGV[4]
local mp, sp, counters, m = ARGV[5], ARGV[6], ARGV[7] == '1', tonumber(ARGV[8])
local names, fields = {}, {}
for i = 9, 8 + m do names[#names + 1] = ARGV[i] end
for i = 9 + m, #ARGV do fields[#fields + 1] = ARGV[i] end
if #fields == 0 then return redis.error_reply("wrong number of arguments for 'hmget' command") end
local scored
if newest then
  scored = redis.call('ZREVRANGEBYSCORE', KEYS[1], bound, '-inf', 'WITHSCORES', 'LIMIT', 0, limit)
else
  scored = redis.call('ZRANGEBYSCORE', KEYS[1], bound, '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
end
local out = {}
for i = 1, #scored, 2 do
  local id = scored[i]
  local rest = string.sub(id, skip + 1)  -- an id is its scope's tag and then its own part
  local c = {}
  if counters then c = redis.call('HMGET', sp .. rest, unpack(names)) end
  out[#out + 1] = {id, scored[i + 1], redis.call('HMGET', mp .. rest, unpack(fields)), c}
end
return out
""",
    read_only=True,
)

UPDATE = Script(
    "update",
    _TERMS
    + _CHILDREN
    + """
-- Apply a partial change to one memory, atomically; nothing when it is gone or expired.
-- KEYS: mem, stats, z, x, c, i, t, xt
-- ARGV: now, id, kind ('' = keep), importance ('' = keep), ttl_ms ('' = keep the TTL), expires_at,
--       ttl in seconds ('' = keep), fact tokens ('' = keep, else '=' .. tokens joined by '|'), n,
--       n field/value pairs to set, then the fields to remove
-- -> 1, or -1 when the memory does not exist
local now, id, kind, importance, ttl, exp = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local old = redis.call('HMGET', KEYS[1], 'kind', 'expires_at', 'opt', 'x_meta', 'x_terms')
if not old[1] then return -1 end
if old[2] and tonumber(old[2]) <= tonumber(now) then return -1 end
local facts = ARGV[8]
local n = tonumber(ARGV[9])
local set = {}
local meta, meta_touched = nil, facts ~= ''
local terms, terms_touched = old[5], false
for j = 10, 9 + 2 * n, 2 do
  set[#set + 1] = ARGV[j]
  set[#set + 1] = ARGV[j + 1]
  if ARGV[j] == 'x_meta' then meta, meta_touched = ARGV[j + 1], true end
  if ARGV[j] == 'x_terms' then terms, terms_touched = ARGV[j + 1], true end
end
for j = 10 + 2 * n, #ARGV do
  if ARGV[j] == 'x_meta' then meta, meta_touched = '', true end
  if ARGV[j] == 'x_terms' then terms, terms_touched = nil, true end
end
if ARGV[7] ~= '' and old[3] then  -- a new lifetime: rewrite the ttl inside opt, in the same HSET
  local seq, rest = string.match(old[3], '^([^|]*)|[^|]*|(.*)$')
  if seq then
    set[#set + 1] = 'opt'
    set[#set + 1] = seq .. '|' .. ARGV[7] .. '|' .. rest
  end
end
redis.call('HSET', KEYS[1], unpack(set))
if #ARGV >= 10 + 2 * n then redis.call('HDEL', KEYS[1], unpack(ARGV, 10 + 2 * n)) end
if meta_touched then  -- x_meta: the metadata's tokens and a fact's ('f...') change apart
  local own, fact = {}, {}
  for t in string.gmatch(old[4] or '', '[^|]+') do
    if string.sub(t, 1, 1) == 'f' then fact[#fact + 1] = t else own[#own + 1] = t end
  end
  if meta then
    own = {}
    for t in string.gmatch(meta, '[^|]+') do own[#own + 1] = t end
  end
  if facts ~= '' then
    fact = {}
    for t in string.gmatch(string.sub(facts, 2), '[^|]+') do fact[#fact + 1] = t end
  end
  for _, t in ipairs(fact) do own[#own + 1] = t end
  if #own > 0 then
    redis.call('HSET', KEYS[1], 'x_meta', table.concat(own, '|'))
  else
    redis.call('HDEL', KEYS[1], 'x_meta')
  end
end
local current = old[1]
if kind ~= '' and kind ~= current then
  if redis.call('ZSCORE', KEYS[3], id) then
    redis.call('HINCRBY', KEYS[5], current, -1)
    redis.call('HINCRBY', KEYS[5], kind, 1)
  end
  local score = redis.call('ZSCORE', KEYS[4], current .. '|' .. id)
  if score then
    redis.call('ZREM', KEYS[4], current .. '|' .. id)
    redis.call('ZADD', KEYS[4], score, kind .. '|' .. id)
  end
  current = kind
end
if importance ~= '' then redis.call('ZADD', KEYS[6], importance, id) end
if ttl ~= '' then
  local ms = tonumber(ttl)
  redis.call('PEXPIRE', KEYS[1], ms)
  redis.call('ZADD', KEYS[4], exp, current .. '|' .. id)
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ms) end
end
if (terms_touched or ttl ~= '') and redis.call('ZSCORE', KEYS[3], id) then  -- its terms, counted again
  uncount(KEYS[7], KEYS[8], id, old[5], true)
  count(KEYS[7], KEYS[8], id, terms, redis.call('PTTL', KEYS[1]) > 0)
end
rewrite_children(KEYS[1])
return 1
""",
)

DUPLICATE = Script(
    "duplicate",
    _CHILDREN
    + """
-- A near-duplicate write: bump duplicate_count, refresh last access, merge tags.
-- KEYS: mem, stats   ARGV: now, n, then n pairs (json-encoded tag, encoded token)
local pttl = redis.call('PTTL', KEYS[1])
if pttl == -2 then return -1 end
local n = tonumber(ARGV[2])
if n > 0 then
  local tags = redis.call('HGET', KEYS[1], 'tags') or '[]'
  local tokens = redis.call('HGET', KEYS[1], 'x_tags') or ''
  local have = {}
  for t in string.gmatch(tokens, '[^|]+') do have[t] = true end
  local changed = false
  for i = 1, n do
    local json_tag, token = ARGV[1 + 2 * i], ARGV[2 + 2 * i]
    if not have[token] then
      have[token] = true
      changed = true
      if tags == '[]' then tags = '[' .. json_tag .. ']'
      else tags = string.sub(tags, 1, -2) .. ',' .. json_tag .. ']' end
      if tokens == '' then tokens = token else tokens = tokens .. '|' .. token end
    end
  end
  if changed then
    redis.call('HSET', KEYS[1], 'tags', tags, 'x_tags', tokens, 'updated_at', ARGV[1])
    rewrite_children(KEYS[1])
  end
end
local count = redis.call('HINCRBY', KEYS[2], 'duplicate_count', 1)
redis.call('HSET', KEYS[2], 'last_accessed_at', ARGV[1])
if pttl > 0 then redis.call('PEXPIRE', KEYS[2], pttl) end
return count
""",
)

DELETE = Script(
    "delete",
    _PURGE
    + _CHILDREN
    + """
-- Delete memories of one scope, in the given order, while more than `keep` remain (keep < 0: all),
-- and at most `limit` of them (limit < 0: no limit). Eviction passes limit = snapshot size - keep, so
-- a ranking taken before other writers inserted can never delete past its own low-priority tail.
-- KEYS: z, x, c, i, t, xt, mem1, stats1, mem2, stats2, ...   ARGV: now, keep, limit, id1, id2, ...
-- -> {memories left in the scope, {removed ids}, {the caller ids (ext_id) of the removed memories}}
purge(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[1])
local keep = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
local removed, external = {}, {}
for i = 4, #ARGV do
  if keep >= 0 and n <= keep then break end
  if limit >= 0 and #removed >= limit then break end
  local id = ARGV[i]
  local mem, stats = KEYS[2 * i - 1], KEYS[2 * i]
  local held = redis.call('HMGET', mem, 'kind', 'opt', 'nv', 'x_terms')
  if held[3] then drop_children(mem, tonumber(held[3])) end
  local kind = held[1]
  local caller = held[2] and string.match(held[2], '^[^|]*|[^|]*|[^|]*|(.+)$')
  local member = redis.call('ZREM', KEYS[1], id)
  if member == 1 then
    uncount(KEYS[5], KEYS[6], id, held[4], kind ~= false and kind ~= nil)
  else
    redis.call('HDEL', KEYS[6], id)
  end
  redis.call('ZREM', KEYS[4], id)
  if kind then
    if member == 1 then redis.call('HINCRBY', KEYS[3], kind, -1) end
    redis.call('ZREM', KEYS[2], kind .. '|' .. id)
  end
  local existed = redis.call('DEL', mem)
  redis.call('DEL', stats)
  if existed == 1 or member == 1 then
    n = n - member
    table.insert(removed, id)
    if caller then table.insert(external, caller) end
  end
end
return {n, removed, external}
""",
)

ALIAS_CLAIM = Script(
    "alias_claim",
    """
-- Claim a caller id for a memory of one scope. KEYS: aliases   ARGV: id, scope tag, stale tag ('' = none)
-- -> '' when claimed; else the tag of the scope whose memory holds the id (the caller checks whether that
--    memory still exists, and claims again naming that tag as stale when it does not)
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and cur ~= ARGV[2] and cur ~= ARGV[3] then return cur end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return ''
""",
)

ALIAS_RELEASE = Script(
    "alias_release",
    """
-- Release caller ids whose memories are gone, unless another scope claimed them since.
-- KEYS: aliases   ARGV: tag, id1, id2, ...
local n = 0
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then n = n + redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return n
""",
)

REFRESH = Script(
    "refresh",
    """
-- Restart the lifetime of memories of one scope that still exist (reads with refresh_ttl).
-- KEYS: x, xt, mem1, stats1, mem2, stats2, ...   ARGV: then per memory: id, kind, new expires_at, ttl_ms
-- -> how many were refreshed
local n = 0
for i = 3, #KEYS, 2 do
  local j = 2 * (i - 3) + 1
  local id, kind, exp, ms = ARGV[j], ARGV[j + 1], ARGV[j + 2], tonumber(ARGV[j + 3])
  if redis.call('PEXPIRE', KEYS[i], ms) == 1 then
    -- one HSET: a write to the indexed hash re-indexes it (x_expires_at keeps counts exact)
    redis.call('HSET', KEYS[i], 'expires_at', exp, 'x_expires_at', exp)
    local nv = tonumber(redis.call('HGET', KEYS[i], 'nv') or '0')
    for j = 1, nv do  -- its child vector documents (see _CHILDREN) live as long as it does
      redis.call('HSET', KEYS[i] .. ':' .. j, 'expires_at', exp)
      redis.call('PEXPIRE', KEYS[i] .. ':' .. j, ms)
    end
    if redis.call('EXISTS', KEYS[i + 1]) == 1 then redis.call('PEXPIRE', KEYS[i + 1], ms) end
    redis.call('ZADD', KEYS[1], exp, kind .. '|' .. id)
    -- an expiring memory's terms are kept apart (see _TERMS): the write that made it expire did
    if not redis.call('HGET', KEYS[2], id) then
      redis.call('HSET', KEYS[2], id, redis.call('HGET', KEYS[i], 'x_terms') or '')
    end
    n = n + 1
  end
end
return n
""",
)

SCOPE_STATS = Script(
    "scope_stats",
    _PURGE
    + """
-- KEYS: z, x, c, i, t, xt   ARGV: now   ->  {count, {kind, n, ...}}
purge(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[1])
return {redis.call('ZCARD', KEYS[1]), redis.call('HGETALL', KEYS[3])}
""",
)

TERM_STATS = Script(
    "term_stats",
    """
-- The lexical channel's statistics of scopes, from their term counts (see _TERMS): how many memories
-- are live at now, and how many of those hold each term. Memories past their time that no write purged
-- yet are subtracted (their terms are in xt).
-- KEYS: per scope z, x, t, xt   ARGV: now, limit, term1, term2, ...
-- -> {1, live memories, df1, df2, ...} summed over the scopes, or {0} when one scope's counts cannot
--    tell (not complete, more than limit memories to subtract, or one whose terms are unknown): count
--    with the index instead
local now, limit = ARGV[1], tonumber(ARGV[2])
local position, fields = {}, {'#v'}
for j = 3, #ARGV do
  position[ARGV[j]] = j - 2
  fields[j - 1] = ARGV[j]
end
local row = {1, 0}
for j = 3, #ARGV do row[j] = 0 end
for s = 1, #KEYS, 4 do
  local z, x, t, xt = KEYS[s], KEYS[s + 1], KEYS[s + 2], KEYS[s + 3]
  local size = redis.call('ZCARD', z)
  if size > 0 then
    local held = redis.call('HMGET', t, unpack(fields))  -- '#v', then each term's count
    if not held[1] then return {0} end
    local gone = redis.call('ZRANGEBYSCORE', x, '-inf', now, 'LIMIT', 0, limit + 1)
    if #gone > limit then return {0} end
    row[2] = row[2] + size
    for j = 2, #held do row[j + 1] = row[j + 1] + tonumber(held[j] or 0) end
    for _, m in ipairs(gone) do
      local id = string.sub(m, string.find(m, '|', 1, true) + 1)
      if redis.call('ZSCORE', z, id) then
        local terms = redis.call('HGET', xt, id)
        if not terms then return {0} end
        row[2] = row[2] - 1
        for term in string.gmatch(terms, '[^|]+') do
          local p = position[term]
          if p then row[p + 2] = row[p + 2] - 1 end
        end
      end
    end
  end
end
return row
""",
    read_only=True,
)

ALL_SCRIPTS = (
    WRITE, WRITE_MANY, UPDATE, FETCH, READ, PAGE, DUPLICATE, DELETE, SCOPE_STATS, ALIAS_CLAIM, ALIAS_RELEASE,
    REFRESH,
    TERM_STATS,
)  # fmt: skip
