"""The Lua scripts the replicas run in Redis: each is one atomic round trip.

Rates are counted per second in one hash per account (``P a:<name>``: ``r<second>`` requests,
``t<second>`` tokens); a window is the sum of the last 60 seconds' fields. A hash expires 61 s after its
last write, so accounts nobody uses vanish by themselves. Seconds come from the replicas' wall clocks
(NTP keeps them within a fraction of a bucket).
"""

from __future__ import annotations

import hashlib

__all__ = ["ADMIT", "HEARTBEAT", "RECONCILE", "SCRIPTS", "Script"]


class Script:
    """A script and its SHA-1 (``EVALSHA``; ``EVAL`` the first time a server has not seen it)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


ADMIT = Script("""
-- KEYS: accounts. ARGV: now (s), then rpm, tpm (0: none) and tokens to reserve of each account.
-- Admits when every account's used count is below its limit (used + reserved tokens for tpm); then
-- counts the request and reserves its tokens everywhere. Returns {0} or {i, r, t} for the first
-- account i that is full (its requests and tokens in the window).
local now = tonumber(ARGV[1])
local oldest = now - 60
for i = 1, #KEYS do
  local rpm, tpm = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  if rpm > 0 or tpm > 0 then
    local flat = redis.call('HGETALL', KEYS[i])
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
    if #stale > 0 then redis.call('HDEL', KEYS[i], unpack(stale)) end
    if (rpm > 0 and r >= rpm) or (tpm > 0 and t >= tpm) then return {i, r, t} end
  end
end
for i = 1, #KEYS do
  local tokens = tonumber(ARGV[3 * i + 1])
  redis.call('HINCRBY', KEYS[i], 'r' .. now, 1)
  if tokens ~= 0 then redis.call('HINCRBY', KEYS[i], 't' .. now, tokens) end
  redis.call('EXPIRE', KEYS[i], 61)
end
return {0}
""")

RECONCILE = Script("""
-- KEYS: accounts. ARGV: the second of the reservation, now (s), tokens to add (negative: give back).
-- The correction lands in the reservation's own second while that is still in the window.
local at, now, delta = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if at <= now - 60 or delta == 0 then return 0 end
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], 't' .. at, delta)
  redis.call('EXPIRE', KEYS[i], 61)
end
return 1
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

SCRIPTS = (ADMIT, RECONCILE, HEARTBEAT)
