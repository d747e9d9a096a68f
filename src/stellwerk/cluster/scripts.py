"""The Lua scripts the replicas run in Redis: each is one atomic round trip.

Rates are counted per second in one hash per account (``P a:<name>``: ``r<second>`` requests,
``t<second>`` tokens); a window is the sum of the last 60 seconds' fields. A hash expires 61 s after its
last write, so accounts nobody uses vanish by themselves. Seconds come from the replicas' wall clocks
(NTP keeps them within a fraction of a bucket).
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
-- ARGV: now (s); R, then R pairs: the second of a reservation and the tokens to add there (negative:
-- give back; dropped once the second has left the window); A, then per admission its number of
-- accounts c and, for each of them, rpm, tpm (0: none) and the tokens to reserve.
-- An admission is admitted when each of its accounts is below its limits (tpm: used + reserved); then
-- the request is counted and its tokens reserved on all of them. Returns three integers per admission:
-- 0, 0, 0 when admitted, else i, r, t of its first full account (its position among the admission's
-- accounts, its requests and tokens in the window); nothing is counted for a refused admission.
local now = tonumber(ARGV[1])
local oldest = now - 60
local k, a = 1, 3
for _ = 1, tonumber(ARGV[2]) do
  local at, delta = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  if at > oldest and delta ~= 0 then
    redis.call('HINCRBY', KEYS[k], 't' .. at, delta)
    redis.call('EXPIRE', KEYS[k], 61)
  end
  k, a = k + 1, a + 2
end
local windows = {}
local function window(key)
  local w = windows[key]
  if w then return w end
  local flat = redis.call('HGETALL', key)
  local r, t, stale = 0, 0, {}
  for j = 1, #flat, 2 do
    local field = flat[j]
    if tonumber(string.sub(field, 2)) <= oldest then
      stale[#stale + 1] = field
    elseif string.byte(field, 1) == 114 then
      r = r + tonumber(flat[j + 1])
    else
      t = t + tonumber(flat[j + 1])
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  w = {r, t}
  windows[key] = w
  return w
end
local rf, tf, out = 'r' .. now, 't' .. now, {}
local admissions = tonumber(ARGV[a])
a = a + 1
for n = 1, admissions do
  local c = tonumber(ARGV[a])
  a = a + 1
  local full = 0
  for i = 0, c - 1 do
    local rpm, tpm = tonumber(ARGV[a + 3 * i]), tonumber(ARGV[a + 3 * i + 1])
    if rpm > 0 or tpm > 0 then
      local w = window(KEYS[k + i])
      if (rpm > 0 and w[1] >= rpm) or (tpm > 0 and w[2] >= tpm) then
        full = i + 1
        out[3 * n - 2], out[3 * n - 1], out[3 * n] = full, w[1], w[2]
        break
      end
    end
  end
  if full == 0 then
    for i = 0, c - 1 do
      local key, tokens = KEYS[k + i], tonumber(ARGV[a + 3 * i + 2])
      redis.call('HINCRBY', key, rf, 1)
      if tokens ~= 0 then redis.call('HINCRBY', key, tf, tokens) end
      redis.call('EXPIRE', key, 61)
      local w = windows[key]
      if w then w[1], w[2] = w[1] + 1, w[2] + tokens end
    end
    out[3 * n - 2], out[3 * n - 1], out[3 * n] = 0, 0, 0
  end
  k, a = k + c, a + 3 * c
end
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
