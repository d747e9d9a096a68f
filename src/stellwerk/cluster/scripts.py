"""The Lua scripts the replicas run in Redis: each is one atomic round trip.

Rates are counted per second in one hash per account (``P w:<name>``: ``r<second>`` requests,
``t<second>`` tokens), with the sums over the last 60 seconds kept beside them (``R``, ``T``, as of the
head second ``h``), so an admission reads three fields instead of the whole minute. A hash expires 61 s
after its last write, so accounts nobody uses vanish by themselves. Seconds come from the replicas' wall
clocks (NTP keeps them within a fraction of a bucket). (The layout before the sums, ``P a:<name>``, is
not read: during a rolling upgrade old and new replicas count apart for a minute.)

ADMIT counts leases, not requests: an admission asks each account for ``want`` requests and ``want * need``
tokens and is granted at most a ``1 / (2 * replicas)`` share of what is left of the limit (at least the
request's own one request and ``need`` tokens), which the replica then spends without asking again
(:mod:`.leases`). Whatever is granted is counted at once, so the sum of all grants in a window never
passes the limit; what a replica does not spend comes back as a negative reconciliation to the second it
was counted in.
"""

from __future__ import annotations

import hashlib

from .resp import bulk

__all__ = ["ADMIT", "HEARTBEAT", "SCRIPTS", "Script"]


class Script:
    """A script and its SHA-1 (``EVALSHA``; ``EVAL`` the first time a server has not seen it), with both
    commands' encoded first two arguments (for callers that encode the rest themselves)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self.evalsha = bulk(b"EVALSHA") + bulk(self.sha.encode())
        self.eval = bulk(b"EVAL") + bulk(source.encode())


ADMIT = Script("""
-- One round of a replica: reconciliations, then admissions, each admission all or nothing.
-- KEYS: the accounts of the reconciliations, then those of the admissions, in order.
-- ARGV: now (s); the replicas alive (n); R, then R triples: a second, and the requests and tokens to add
-- there (negative: given back; dropped once the second has left the window); A, then per admission its
-- number of accounts c and, for each of them, rpm, tpm (0: none), the requests asked for (want >= 1) and
-- this request's tokens (need; want * need are asked for).
-- An admission is admitted when each of its accounts is below its limits (R < rpm, T < tpm); then each
-- account grants gr = min(want, max(1, floor((rpm - R) / 2n))) requests and gt = min(want * need,
-- max(need, floor((tpm - T) / 2n))) tokens (without a limit: what was asked), counted in the head second:
-- what is granted never takes R past rpm, nor T further past tpm than one request's need.
-- Returns 0 when every admission got what it asked for, else one answer per admission: 0 (what it asked
-- for), {0, gr, gt, ...} (admitted, the grants of its accounts in order), or {i, R, T} of its first full
-- account (its position from 1, its requests and tokens in the window; nothing is counted).
local now, replicas = tonumber(ARGV[1]), 2 * tonumber(ARGV[2])
local windows, touched = {}, {}
-- An account's window: its head second h (the latest it was moved to) and its sums R and T over the
-- seconds (h - 60, h]. Moving the head subtracts the seconds that leave; an account unused for a minute
-- starts over. A replica whose clock is behind counts in the head second.
local function window(key)
  local w = windows[key]
  if w then return w end
  local v = redis.call('HMGET', key, 'h', 'R', 'T')
  local h, r, t = tonumber(v[1]), tonumber(v[2]) or 0, tonumber(v[3]) or 0
  if h == nil or h <= now - 60 then
    if h ~= nil then redis.call('DEL', key) end
    h, r, t = now, 0, 0
  elseif h < now then
    local gone = {}
    for s = h - 59, now - 60 do
      gone[#gone + 1] = 'r' .. s
      gone[#gone + 1] = 't' .. s
    end
    if #gone > 0 then
      local old = redis.call('HMGET', key, unpack(gone))
      for j = 1, #gone, 2 do
        r = r - (tonumber(old[j]) or 0)
        t = t - (tonumber(old[j + 1]) or 0)
      end
      redis.call('HDEL', key, unpack(gone))
    end
    h = now
  end
  w = {h, r, t}
  windows[key] = w
  touched[#touched + 1] = key
  return w
end
local k, a = 1, 4
for _ = 1, tonumber(ARGV[3]) do
  local at, dr, dt = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local w = window(KEYS[k])
  if at > w[1] - 60 then
    if dr ~= 0 then
      redis.call('HINCRBY', KEYS[k], 'r' .. at, dr)
      w[2] = w[2] + dr
    end
    if dt ~= 0 then
      redis.call('HINCRBY', KEYS[k], 't' .. at, dt)
      w[3] = w[3] + dt
    end
  end
  k, a = k + 1, a + 3
end
local out, exact = {}, true
local admissions = tonumber(ARGV[a])
a = a + 1
for n = 1, admissions do
  local c = tonumber(ARGV[a])
  a = a + 1
  local grants, asked = {0}, true
  for i = 0, c - 1 do
    local b = a + 4 * i
    local rpm, tpm, want, need = tonumber(ARGV[b]), tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
    local w = window(KEYS[k + i])
    if (rpm > 0 and w[2] >= rpm) or (tpm > 0 and w[3] >= tpm) then
      grants = {i + 1, w[2], w[3]}
      break
    end
    local gr, gt = want, want * need
    if rpm > 0 then gr = math.min(gr, math.max(1, math.floor((rpm - w[2]) / replicas))) end
    if tpm > 0 then gt = math.min(gt, math.max(need, math.floor((tpm - w[3]) / replicas))) end
    if gr ~= want or gt ~= want * need then asked = false end
    grants[2 * i + 2], grants[2 * i + 3] = gr, gt
  end
  if grants[1] == 0 then
    for i = 0, c - 1 do
      local key, gr, gt = KEYS[k + i], grants[2 * i + 2], grants[2 * i + 3]
      local w = windows[key]
      redis.call('HINCRBY', key, 'r' .. w[1], gr)
      if gt ~= 0 then redis.call('HINCRBY', key, 't' .. w[1], gt) end
      w[2], w[3] = w[2] + gr, w[3] + gt
    end
    if asked then grants = 0 end
  end
  if grants ~= 0 then exact = false end
  out[n] = grants
  k, a = k + c, a + 4 * c
end
for _, key in ipairs(touched) do
  local w = windows[key]
  redis.call('HSET', key, 'h', w[1], 'R', w[2], 'T', w[3])
  redis.call('EXPIRE', key, 61)
end
if exact then return 0 end
return out
""")

HEARTBEAT = Script("""
-- KEYS: replicas' info (hash), replicas' last beats (sorted set), open breakers (hash).
-- ARGV: now (s, float), this replica's id, its info (JSON), seconds after which a replica is gone.
-- Returns {replicas alive, open breakers as a flat list of deployment, open-until (wall s)}.
local now, id, info, gone = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
redis.call('HSET', KEYS[1], id, info)
redis.call('ZADD', KEYS[2], now, id)
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - 60)
if #old > 0 then
  redis.call('ZREM', KEYS[2], unpack(old))
  redis.call('HDEL', KEYS[1], unpack(old))
end
local alive = redis.call('ZCOUNT', KEYS[2], now - gone, '+inf')
return {alive, redis.call('HGETALL', KEYS[3])}
""")

SCRIPTS = (ADMIT, HEARTBEAT)
