-- rotate.lua's end, after ended.lua (loaded only here: a closure per call
-- otherwise): reuse.
ended(log, {sid}, now, keep)
return 3
