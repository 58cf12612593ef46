package redisstore

import "github.com/redis/go-redis/v9"

// Data model (P is "{prefix}", one hash tag so every key lives in one Cluster slot):
//
//	P:b:<budget key>  hash  spent, reserved, limit, hard, r:<reservation id> = amount
//	P:z:<budget key>  zset  reservation id -> expiry (unix ms): the live reservations
//	P:i:<scope>:<id>  set   budget hash keys of that owner (for Spend)
//	P:r:<res id>      string "live" | "settled" (tombstone against double commits)
//	P:l:<scope>:<id>  hash  rate window: ws (window start ms), pr, pt (previous minute
//	                        requests/tokens), cr, ct (current minute)
//
// Every script takes the clock from ARGV (the caller's Now), never Redis TIME, so a
// test clock works and replicas agree as well as their clocks do. Expiry of
// reservations is lazy: sweep() runs on a budget before every read or check of it.

// sweep drops the reservations of one budget that expired at or before now.
const luaSweep = `
local function sweep(bk, bz, now)
  local ids = redis.call('ZRANGEBYSCORE', bz, '-inf', now)
  if #ids == 0 then return end
  local total = 0
  for _, rid in ipairs(ids) do
    local f = 'r:' .. rid
    local a = redis.call('HGET', bk, f)
    if a then
      total = total + tonumber(a)
      redis.call('HDEL', bk, f)
    end
  end
  if total ~= 0 then redis.call('HINCRBY', bk, 'reserved', -total) end
  redis.call('ZREMRANGEBYSCORE', bz, '-inf', now)
end
local function extend(k, ttl)
  if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
end
`

// KEYS: res, then per budget bk, bz, idx.
// ARGV: now, expires, amount, id, resTTL, then per budget limit, hard, ttl.
// Returns {1, 0, spent1, reserved1, ...} (after reserving), or
// {0, i, spent, reserved} for the first hard budget i (1-based) that does not fit.
var reserveScript = redis.NewScript(luaSweep + `
if redis.call('EXISTS', KEYS[1]) == 1 then return {1, 0} end -- retried after success
local now = tonumber(ARGV[1])
local amount = tonumber(ARGV[3])
local id = ARGV[4]
local n = (#KEYS - 1) / 3
local out = {1, 0}
for i = 1, n do
  local bk, bz = KEYS[(i-1)*3+2], KEYS[(i-1)*3+3]
  local base = 5 + (i-1)*3
  sweep(bk, bz, now)
  local v = redis.call('HMGET', bk, 'spent', 'reserved')
  local spent = tonumber(v[1] or '0')
  local reserved = tonumber(v[2] or '0')
  if ARGV[base+2] == '1' and spent + reserved + amount > tonumber(ARGV[base+1]) then
    return {0, i, spent, reserved}
  end
  out[#out+1] = spent
  out[#out+1] = reserved + amount
end
for i = 1, n do
  local bk, bz, idx = KEYS[(i-1)*3+2], KEYS[(i-1)*3+3], KEYS[(i-1)*3+4]
  local base = 5 + (i-1)*3
  local ttl = tonumber(ARGV[base+3])
  redis.call('HINCRBY', bk, 'reserved', amount)
  redis.call('HSET', bk, 'r:' .. id, amount, 'limit', ARGV[base+1], 'hard', ARGV[base+2])
  redis.call('ZADD', bz, ARGV[2], id)
  extend(bk, ttl)
  extend(bz, ttl)
  redis.call('SADD', idx, bk)
  extend(idx, ttl)
end
redis.call('SET', KEYS[1], 'live', 'PX', ARGV[5])
return out
`)

// KEYS: res, then per budget bk, bz, idx.
// ARGV: id, actual, tombstoneTTL, mode ('commit' or 'release'), then per budget
// limit, hard, ttl.
// Returns {1}, or {0} if the reservation was already settled (nothing done).
var settleScript = redis.NewScript(luaSweep + `
if redis.call('GET', KEYS[1]) == 'settled' then return {0} end
local id = ARGV[1]
local actual = tonumber(ARGV[2])
local commit = ARGV[4] == 'commit'
local n = (#KEYS - 1) / 3
for i = 1, n do
  local bk, bz, idx = KEYS[(i-1)*3+2], KEYS[(i-1)*3+3], KEYS[(i-1)*3+4]
  local base = 4 + (i-1)*3
  local f = 'r:' .. id
  local a = redis.call('HGET', bk, f)
  if a then
    redis.call('HINCRBY', bk, 'reserved', -tonumber(a))
    redis.call('HDEL', bk, f)
  end
  redis.call('ZREM', bz, id)
  if commit then
    local ttl = tonumber(ARGV[base+3])
    redis.call('HINCRBY', bk, 'spent', actual)
    redis.call('HSET', bk, 'limit', ARGV[base+1], 'hard', ARGV[base+2])
    extend(bk, ttl)
    redis.call('SADD', idx, bk)
    extend(idx, ttl)
  end
end
redis.call('SET', KEYS[1], 'settled', 'PX', ARGV[3])
return {1}
`)

// KEYS: per budget bk, bz. ARGV: now.
// Returns per budget {exists, spent, reserved, limit (-1 if unknown), hard}.
var snapshotScript = redis.NewScript(luaSweep + `
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS / 2 do
  local bk, bz = KEYS[(i-1)*2+1], KEYS[(i-1)*2+2]
  sweep(bk, bz, now)
  local v = redis.call('HMGET', bk, 'spent', 'reserved', 'limit', 'hard')
  local exists = redis.call('EXISTS', bk)
  out[#out+1] = exists
  out[#out+1] = tonumber(v[1] or '0')
  out[#out+1] = tonumber(v[2] or '0')
  out[#out+1] = tonumber(v[3] or '-1')
  out[#out+1] = tonumber(v[4] or '0')
end
return out
`)

// roll mirrors ledger.Window.Roll; fits mirrors ledger's fits (integers, exact in
// doubles below 2^53).
const luaWindow = `
local W = 60000
local function roll(k, now)
  local v = redis.call('HMGET', k, 'ws', 'pr', 'pt', 'cr', 'ct')
  local ws, pr, pt, cr, ct = tonumber(v[1] or '0'), tonumber(v[2] or '0'), tonumber(v[3] or '0'), tonumber(v[4] or '0'), tonumber(v[5] or '0')
  local cur = now - (now % W)
  if ws >= cur then return ws, pr, pt, cr, ct end
  if ws == cur - W then return cur, cr, ct, 0, 0 end
  return cur, 0, 0, 0, 0
end
local function fits(prev, cur, need, limit, e)
  if limit <= 0 then return true end
  return prev * (W - e) + (cur + need) * W <= limit * W
end
`

// KEYS: per limit rl. ARGV: now, tokens, ttl, then per limit rpm, tpm.
// Returns {allowed, then per limit ws, pr, pt, cr, ct before consumption}.
var allowScript = redis.NewScript(luaWindow + `
local now = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local ok = 1
local st = {}
for i = 1, #KEYS do
  local ws, pr, pt, cr, ct = roll(KEYS[i], now)
  local e = now - ws
  if e < 0 then e = 0 end
  if e >= W then e = W - 1 end
  if not (fits(pr, cr, 1, tonumber(ARGV[3+(i-1)*2+1]), e) and fits(pt, ct, tokens, tonumber(ARGV[3+(i-1)*2+2]), e)) then
    ok = 0
  end
  st[i] = {ws, pr, pt, cr, ct}
end
local out = {ok}
for i = 1, #KEYS do
  local s = st[i]
  for j = 1, 5 do out[#out+1] = s[j] end
  if ok == 1 then
    redis.call('HSET', KEYS[i], 'ws', s[1], 'pr', s[2], 'pt', s[3], 'cr', s[4] + 1, 'ct', s[5] + tokens)
    redis.call('PEXPIRE', KEYS[i], ARGV[3])
  end
end
return out
`)

// KEYS: per limit rl. ARGV: now, n, ttl. Mirrors ledger.AddTokensTo.
var addTokensScript = redis.NewScript(luaWindow + `
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
for i = 1, #KEYS do
  local ws, pr, pt, cr, ct = roll(KEYS[i], now)
  ct = ct + n
  if ct < 0 then
    pt = math.max(0, pt + ct)
    ct = 0
  end
  redis.call('HSET', KEYS[i], 'ws', ws, 'pr', pr, 'pt', pt, 'cr', cr, 'ct', ct)
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
end
return {1}
`)
