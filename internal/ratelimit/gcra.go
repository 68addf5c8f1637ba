package ratelimit

import "github.com/redis/go-redis/v9"

// gcraSource is redis_rate v10.0.1's allowN script, unchanged but for its
// comments. redis_rate runs one script call per key and reads the answer
// at once, so it cannot pipeline two keys; we run its script ourselves,
// two keys in one round trip, and the tests check both agree.
//
// Copyright (c) 2017 Pavel Pravosud
// https://github.com/rwz/redis-gcra/blob/master/vendor/perform_gcra_ratelimit.lua
// (redis_rate: Copyright (c) 2013 The github.com/go-redis/redis_rate
// Authors, BSD-2-Clause.)
const gcraSource = `
redis.replicate_commands()

local rate_limit_key = KEYS[1]
local burst = ARGV[1]
local rate = ARGV[2]
local period = ARGV[3]
local cost = tonumber(ARGV[4])

local emission_interval = period / rate
local increment = emission_interval * cost
local burst_offset = emission_interval * burst

local jan_1_2017 = 1483228800
local now = redis.call("TIME")
now = (now[1] - jan_1_2017) + (now[2] / 1000000)

local tat = redis.call("GET", rate_limit_key)

if not tat then
  tat = now
else
  tat = tonumber(tat)
end

tat = math.max(tat, now)

local new_tat = tat + increment
local allow_at = new_tat - burst_offset

local diff = now - allow_at
local remaining = diff / emission_interval

if remaining < 0 then
  local reset_after = tat - now
  local retry_after = diff * -1
  return {
    0, -- allowed
    0, -- remaining
    tostring(retry_after),
    tostring(reset_after),
  }
end

local reset_after = new_tat - now
if reset_after > 0 then
  redis.call("SET", rate_limit_key, new_tat, "EX", math.ceil(reset_after))
end
local retry_after = -1
return {cost, remaining, tostring(retry_after), tostring(reset_after)}
`

var gcra = redis.NewScript(gcraSource)

// refundSource gives back one unit that gcraSource took (cost 1) from
// KEYS[1]: it moves the key's theoretical arrival time back by one
// emission interval (ARGV: rate, period in seconds). GCRA is additive, so
// this is exact even when other calls took units since. A time at or
// before now means a full bucket, the same as no key.
const refundSource = `
redis.replicate_commands()

local key = KEYS[1]
local emission_interval = tonumber(ARGV[2]) / tonumber(ARGV[1])

local tat = redis.call("GET", key)
if not tat then
  return 0
end

local jan_1_2017 = 1483228800
local now = redis.call("TIME")
now = (now[1] - jan_1_2017) + (now[2] / 1000000)

local new_tat = tonumber(tat) - emission_interval
if new_tat <= now then
  redis.call("DEL", key)
else
  redis.call("SET", key, new_tat, "EX", math.ceil(new_tat - now))
end
return 1
`

var refund = redis.NewScript(refundSource)
