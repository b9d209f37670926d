//! # reissue-diesel
//!
//! The user database behind reissue's login: a `users` table on PostgreSQL or
//! SQLite (diesel, with embedded migrations), argon2id password hashes, and an
//! implementation of [`reissue_core::Authenticator`] for email and password.
//!
//! ```no_run
//! use reissue_core::Authenticator;
//! use reissue_diesel::{EmailPassword, UserError, UserStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // `postgres://...`, `sqlite://users.db`, a file path, or `:memory:`.
//! let store = UserStore::connect("sqlite://users.db")?;
//! store.run_migrations().await?;
//!
//! match store.create_user("Alice@Example.com", "correct horse battery", &["admin"]).await {
//!     Ok(user) => assert_eq!(user.email, "alice@example.com"),
//!     Err(UserError::EmailTaken) => { /* answer 409 */ }
//!     Err(e) => return Err(e.into()),
//! }
//!
//! // What the login endpoint does with the request body.
//! let login = EmailPassword::new("alice@example.com", "correct horse battery");
//! let who = store.authenticate(login).await?;
//! assert_eq!(who.claims.roles, ["admin"]);
//! # Ok(())
//! # }
//! ```
//!
//! ## Backends
//!
//! The `postgres` and `sqlite` features (both default) pick the backends
//! compiled in; the URL picks the one used. Each backend has its own embedded
//! migrations, applied by [`UserStore::run_migrations`]; the queries are
//! written once. Emails are stored trimmed and lower-cased under a unique
//! constraint, roles as comma-separated text, times as Unix seconds.
//!
//! ## Blocking work
//!
//! diesel is synchronous, and diesel-async has no SQLite backend, so every
//! database call runs on tokio's blocking pool with an r2d2 connection pool:
//! one code path for both backends, and no async worker thread ever waits on
//! the database. The pool's checkout timeout is short (2 s by default), so an
//! unreachable database becomes [`UserError::Unavailable`] quickly.
//!
//! Passwords are hashed and checked by reissue-core's
//! [`PasswordHasher`](reissue_core::password::PasswordHasher), the same one
//! any other user store can use. argon2 is deliberately slow (about 15 ms of
//! one core per hash with the default parameters on a 2-core test machine).
//! It too runs on the blocking pool, never on an async worker, and by default
//! at most one hash fewer than there are CPUs runs at once (at least one): a
//! burst of logins queues for its own cores and leaves one to every other
//! request, so protected routes keep their latency while users log in. The
//! bound is [`UserStoreBuilder::hash_concurrency`]; logins beyond it wait
//! their turn, first come first served, in a queue of at most
//! [`UserStoreBuilder::hash_queue`] (64 by default). Past that a login is
//! refused at once with [`reissue_core::Error::Overloaded`] (503 with
//! `Retry-After`), so a flood of logins for random emails cannot make
//! everyone's wait without end. Each concurrent hash keeps its argon2 work
//! area (19 MiB with the defaults) for reuse, so no login pays for fresh
//! pages.
//!
//! The futures are plain tokio futures and `Send`: use the store from
//! actix-web or axum handlers alike.
//!
//! ## Login timing
//!
//! An unknown email costs the same argon2 work as a wrong password (a verify
//! against a dummy hash made with the same parameters, queued behind the same
//! bound), and both give [`reissue_core::Error::InvalidCredentials`]. A hash
//! stored with older, cheaper parameters is verified with its own and then
//! padded to the current parameters' work, so its account cannot be told
//! from an unknown one either; it is replaced on the user's next successful
//! login ([reissue-core's `password` module](reissue_core::password) has the
//! details).
//!
//! ## Features
//!
//! The list comes from the crate's `Cargo.toml`.
#![doc = document_features::document_features!()]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

// The README's examples compile and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod authenticator;
mod backend;
mod error;
mod schema;
mod store;
mod validate;

pub use authenticator::EmailPassword;
pub use error::UserError;
pub use reissue_core::password::Argon2Params;
pub use store::{User, UserStore, UserStoreBuilder};
