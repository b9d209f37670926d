-- after clock.lua: `us`, microseconds, orders sessions created in the same
-- millisecond (the list is oldest first, eviction takes the oldest).
local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
