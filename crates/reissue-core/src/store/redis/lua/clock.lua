-- Every script takes its time from the store (TIME), never from the caller:
-- instances whose clocks differ then apply the same rotation rules. `now` is
-- in milliseconds.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
