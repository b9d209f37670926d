-- KEYS: the proof's key (in the user's bucket). ARGV: how long to remember
-- it, ms. Returns 1 when it was new (now remembered), 0 when it was seen.
if redis.call('SET', KEYS[1], '', 'NX', 'PX', ARGV[1]) then return 1 end
return 0
