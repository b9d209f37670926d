//! The Lua scripts of the Redis store, in `lua/`: one file per script, and
//! the pieces several share (the clock, the revocation log, the session
//! records' layout). Each script touches the keys of one hash slot only,
//! those it is given in KEYS, which carry the same hash tag `{b<bucket>}`.
//! Each declares itself with a `#!lua` shebang, so that Redis Cluster refuses
//! a key of another slot ("Script attempted to access keys that do not hash
//! to the same slot") instead of letting it through, which the cluster tests
//! prove.

use fred::types::scripts::Script;

const SHEBANG: &str = "#!lua\n";
const CLOCK: &str = include_str!("lua/clock.lua");
const CLOCK_US: &str = include_str!("lua/clock_us.lua");
const ENDED: &str = include_str!("lua/ended.lua");
const RECORDS: &str = include_str!("lua/records.lua");

/// The store's scripts, loaded by SHA and reloaded where a node lacks them
/// (a promoted replica's script cache starts empty).
pub(super) struct Scripts {
    pub(super) create: Script,
    pub(super) rotate: Script,
    pub(super) revoke: Script,
    pub(super) revoke_all: Script,
    pub(super) list: Script,
    pub(super) begin_login: Script,
    pub(super) end_login: Script,
    pub(super) catch_up: Script,
    pub(super) first_use: Script,
    pub(super) lease: Script,
    pub(super) holders: Script,
    pub(super) ack: Script,
    pub(super) acked: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        // `#!lua` (no flags): Redis then checks that a script touches the
        // keys of one slot only, declared or not (without it, Redis 7 lets
        // an undeclared key of another slot through if the node has it).
        let script = |parts: &[&str]| Script::from_lua(format!("{SHEBANG}{}", parts.concat()));
        let sessions = |body: &str| script(&[CLOCK, ENDED, RECORDS, body]);
        Self {
            create: script(&[
                CLOCK,
                CLOCK_US,
                ENDED,
                RECORDS,
                include_str!("lua/create.lua"),
            ]),
            // ENDED only where a session ends: a closure per call otherwise
            rotate: script(&[
                CLOCK,
                include_str!("lua/rotate.lua"),
                ENDED,
                include_str!("lua/rotate_reused.lua"),
            ]),
            revoke: sessions(include_str!("lua/revoke.lua")),
            revoke_all: sessions(include_str!("lua/revoke_all.lua")),
            list: sessions(include_str!("lua/list.lua")),
            begin_login: script(&[include_str!("lua/begin_login.lua")]),
            end_login: script(&[include_str!("lua/end_login.lua")]),
            catch_up: script(&[CLOCK, include_str!("lua/catch_up.lua")]),
            first_use: script(&[include_str!("lua/first_use.lua")]),
            lease: script(&[CLOCK, include_str!("lua/lease.lua")]),
            holders: script(&[CLOCK, include_str!("lua/holders.lua")]),
            ack: script(&[include_str!("lua/ack.lua")]),
            acked: script(&[include_str!("lua/acked.lua")]),
        }
    }
}
