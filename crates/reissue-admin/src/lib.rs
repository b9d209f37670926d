//! # reissue-admin
//!
//! The admin CLI of reissue, `reissue-admin`, and the settings it shares
//! with the apps.
//!
//! The CLI works on the apps' Redis and user database from outside: it
//! lists a user's sessions, ends one or all of them (through the store's
//! revocation path, so apps in instant mode refuse the ended sessions'
//! access tokens at once), creates users, vouches for users who signed
//! themselves up, sets roles, and checks the store's health. Only vouched
//! accounts (created here, or marked by `users vouch`) get what the example
//! apps grant by email (`REISSUE_ADMIN_EMAILS`): a sign-up proves nothing
//! about whose the address is. It reads the apps' own environment variables, each also
//! a flag; `reissue-admin --help` lists them.
//!
//! ```text
//! $ export DATABASE_URL=postgres://postgres@127.0.0.1:5432/app REDIS_URL=redis://127.0.0.1:6379
//! $ reissue-admin users create ada@example.com --role admin < password.txt
//! created user 1 (ada@example.com) with roles [admin]
//! $ reissue-admin sessions list ada@example.com
//! 2 live sessions of user 1 (ada@example.com)
//! SID                     CREATED               LAST USED             IP         COUNTRY  USER AGENT
//! 6hXcZ0z0Zk1wQm3qVJ8Y2A  2025-05-01 09:12:40Z  2025-05-01 09:40:02Z  192.0.2.7  GB       Firefox/138.0
//! mK2cR9bT4nE1uW7yH5sQ0g  2025-05-01 09:30:11Z  2025-05-01 09:30:11Z  192.0.2.9  GB       curl/8.5.0
//! $ reissue-admin sessions end ada@example.com mK2cR9bT4nE1uW7yH5sQ0g
//! ended session mK2cR9bT4nE1uW7yH5sQ0g of user 1 (ada@example.com)
//! $ reissue-admin --json sessions end-all 1
//! {"ended":["6hXcZ0z0Zk1wQm3qVJ8Y2A"],"user":{"email":"ada@example.com","id":"1","roles":["admin"]}}
//! $ reissue-admin health
//! store     redis (single), reachable, PING 0.21 ms
//! eviction  noeviction
//! replicas  127.0.0.1:6379: 1 online, 0 B behind
//! keys      3 under `reissue:`
//! database  reachable, 0.85 ms
//! ok
//! $ reissue-admin sessions list nobody@example.com; echo $?
//! no user with id or email `nobody@example.com`
//! 1
//! ```
//!
//! A password is never taken from the command line (where `ps` shows it):
//! `users create` reads one line from standard input, or asks twice without
//! echo on a terminal. Exit status: 0 done, 1 failed (one line on stderr
//! saying why: an unknown user or session, a store or database that does
//! not answer, a bad setting; `health` also when Redis may evict keys, or when a
//! primary of a Cluster or Sentinel deployment has no online replica to
//! confirm revocations), 2 a
//! usage error.
//!
//! ## The shared settings
//!
//! [`StoreArgs`] holds the settings the CLI and the apps share:
//! `DATABASE_URL`, `REDIS_URL` (every form of CONTRACT.md's "Redis
//! deployments"), `REISSUE_REDIS_PREFIX`, `REISSUE_ACCESS_TTL` and
//! `REISSUE_SESSION_MAX_AGE`. An app flattens it into its own `clap`
//! arguments and connects with [`StoreArgs::connect_redis`] and
//! [`StoreArgs::connect_users`], as the CLI does. The two lifetimes matter
//! to the CLI because the store must keep an ended session in its
//! revocation log as long as the apps' access tokens live: the CLI tells the
//! store the same [`retention`](StoreArgs::retention) the apps do.
//!
//! Each setting's value goes through one small parser of [`value`], which
//! holds the rules every setting follows (a blank value counts as unset; a
//! refusal is one line naming the variable).
//!
//! With `REDIS_URL` unset the apps keep sessions in their own memory, which
//! nothing outside them can reach: the `sessions` commands then refuse,
//! saying so, and `users` works on the database alone.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod args;
mod cli;
mod error;
pub mod value;

pub use args::{DEFAULT_DATABASE_URL, StoreArgs};
pub use cli::Cli;
pub use error::Error;
