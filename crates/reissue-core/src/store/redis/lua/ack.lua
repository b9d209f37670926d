-- KEYS: acknowledgement sets of ended sessions (`<log>:ak:<sid>`, one
-- bucket's). ARGV: instance id, how long to keep them (ms). The instance has
-- the sessions in its revocation set.
for _, k in ipairs(KEYS) do
  redis.call('SADD', k, ARGV[1])
  redis.call('PEXPIRE', k, tonumber(ARGV[2]))
end
return 0
