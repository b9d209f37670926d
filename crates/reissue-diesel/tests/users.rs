//! One suite, written once, run against SQLite (a temporary file) and a real
//! PostgreSQL (`DATABASE_URL` when it is a postgres URL, else
//! `postgres://postgres@127.0.0.1:5432/test`; each test gets its own schema).

use std::time::{Duration, Instant};

use diesel::prelude::*;
use reissue_core::{Authenticator, Error};
use reissue_diesel::{Argon2Params, EmailPassword, UserError, UserStore};

mod schema {
    #![allow(missing_docs)]
    diesel::table! {
        users (id) {
            id -> BigInt,
            email -> Text,
            password_hash -> Text,
            roles -> Text,
            created_at -> BigInt,
            updated_at -> BigInt,
        }
    }
}
use schema::users;

/// argon2 at its minimum, so the suite runs fast.
fn cheap() -> Argon2Params {
    Argon2Params::new(8, 1, 1).unwrap()
}

fn postgres_base_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh, empty database for one test; removed when dropped.
enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        base: String,
        schema: String,
        url: String,
    },
}

impl TestDb {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("users.db").display());
        Self::Sqlite { _dir: dir, url }
    }

    fn postgres() -> Self {
        let base = postgres_base_url();
        let schema = format!("reissue_t_{:016x}", rand::random::<u64>());
        let mut conn = PgConnection::establish(&base)
            .unwrap_or_else(|e| panic!("PostgreSQL at {base} is needed by these tests: {e}"));
        diesel::sql_query(format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
        Self::Postgres { base, schema, url }
    }

    fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } => url,
        }
    }

    /// A migrated store on this database.
    async fn store(&self, params: Argon2Params) -> UserStore {
        let store = UserStore::builder(self.url())
            .argon2_params(params)
            .connect()
            .unwrap();
        store.run_migrations().await.unwrap();
        store
    }

    /// The PHC string stored for `email`, read behind the store's back.
    fn stored_hash(&self, email: &str) -> String {
        let query = users::table
            .filter(users::email.eq(email))
            .select(users::password_hash);
        match self {
            Self::Sqlite { url, .. } => {
                let path = url.strip_prefix("sqlite://").unwrap();
                query
                    .first(&mut SqliteConnection::establish(path).unwrap())
                    .unwrap()
            }
            Self::Postgres { url, .. } => query
                .first(&mut PgConnection::establish(url).unwrap())
                .unwrap(),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Self::Postgres { base, schema, .. } = self {
            // Best effort: a leftover schema is harmless.
            if let Ok(mut conn) = PgConnection::establish(base) {
                let _ = diesel::sql_query(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&mut conn);
            }
        }
    }
}

/// Emits one `#[tokio::test]` per scenario and backend, so a failure names both.
macro_rules! suite {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::TestDb::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::TestDb::postgres()).await;
                }
            )*
        }
    };
}

suite!(
    create_and_find,
    duplicate_email_is_case_insensitive,
    invalid_input_is_rejected,
    authenticate_succeeds,
    wrong_password_and_unknown_email_look_the_same,
    set_password_replaces_the_old_one,
    set_roles_reaches_the_claims,
    outdated_hash_is_upgraded_on_login,
    sql_metacharacters_stay_data,
    concurrent_logins_all_succeed,
    migrations_are_idempotent,
);

fn login(email: &str, password: &str) -> EmailPassword {
    EmailPassword::new(email, password)
}

async fn create_and_find(db: TestDb) {
    let store = db.store(cheap()).await;
    let alice = store
        .create_user("  Alice@Example.COM ", "correct horse", &["admin", "ops"])
        .await
        .unwrap();
    assert_eq!(alice.email, "alice@example.com");
    assert_eq!(alice.roles, ["admin", "ops"]);
    assert!(alice.created_at > 1_600_000_000, "{}", alice.created_at);
    assert_eq!(alice.created_at, alice.updated_at);

    let bob = store
        .create_user("bob@example.com", "battery staple", &[])
        .await
        .unwrap();
    assert_ne!(alice.id, bob.id);
    assert!(bob.roles.is_empty());

    assert_eq!(
        store.find_by_id(alice.id).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.find_by_email("ALICE@example.com ").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.find_by_email("bob@example.com").await.unwrap(),
        Some(bob.clone())
    );
    assert_eq!(
        store.find_by_email("carol@example.com").await.unwrap(),
        None
    );
    assert_eq!(store.find_by_email("not an email").await.unwrap(), None);
    assert_eq!(
        store.find_by_id(alice.id.max(bob.id) + 1000).await.unwrap(),
        None
    );

    // Non-ASCII is fine and lower-cased too.
    let u = store
        .create_user("Ünï@Exämple.COM", "correct horse", &[])
        .await
        .unwrap();
    assert_eq!(u.email, "ünï@exämple.com");
}

async fn duplicate_email_is_case_insensitive(db: TestDb) {
    let store = db.store(cheap()).await;
    let first = store
        .create_user("A@X.io", "password one", &["admin"])
        .await
        .unwrap();
    for dup in ["a@x.io", " A@x.IO ", "A@X.io"] {
        let err = store
            .create_user(dup, "password two", &[])
            .await
            .unwrap_err();
        assert!(matches!(err, UserError::EmailTaken), "{dup:?}: {err:?}");
    }
    // The first account is untouched: its password and roles still hold.
    assert_eq!(store.find_by_email("a@x.io").await.unwrap(), Some(first));
    let who = store
        .authenticate(login("a@x.io", "password one"))
        .await
        .unwrap();
    assert_eq!(who.claims.roles, ["admin"]);
    assert!(
        store
            .authenticate(login("a@x.io", "password two"))
            .await
            .is_err()
    );
}

async fn invalid_input_is_rejected(db: TestDb) {
    let store = db.store(cheap()).await;
    let bad_emails = [
        String::new(),
        "   ".into(),
        "plain".into(),
        "@x.io".into(),
        "a@".into(),
        "a@b@x.io".into(),
        "a@localhost".into(),
        "a@x..io".into(),
        "a b@x.io".into(),
        "a\0@x.io".into(),
        "a@x.io\0".into(),
        "a\u{1b}[31m@x.io".into(),
        format!("{}@x.io", "a".repeat(65)),
        format!("a@{}.io", "b".repeat(250)),
        "a".repeat(100_000),
    ];
    for email in &bad_emails {
        let err = store
            .create_user(email, "correct horse", &[])
            .await
            .unwrap_err();
        assert!(
            matches!(err, UserError::InvalidEmail),
            "{:?}: {err:?}",
            &email[..email.len().min(40)]
        );
    }

    let bad_passwords = [
        "".to_owned(),
        "7 chars".into(),
        "a".repeat(1025),
        "é".repeat(100_000),
        "pass\0word".into(),
        "pass\u{7}word".into(),
    ];
    for (i, password) in bad_passwords.iter().enumerate() {
        let email = format!("p{i}@x.io");
        let err = store.create_user(&email, password, &[]).await.unwrap_err();
        assert!(
            matches!(err, UserError::InvalidPassword(_)),
            "password #{i}: {err:?}"
        );
        assert_eq!(store.find_by_email(&email).await.unwrap(), None);
    }

    for roles in [
        &[""][..],
        &["a,b"],
        &["two words"],
        &["nul\0"],
        &[&*"r".repeat(65)],
    ] {
        let err = store
            .create_user("r@x.io", "correct horse", roles)
            .await
            .unwrap_err();
        assert!(
            matches!(err, UserError::InvalidRole(_)),
            "{roles:?}: {err:?}"
        );
    }
    assert_eq!(store.find_by_email("r@x.io").await.unwrap(), None);

    // The boundaries themselves are accepted.
    let longest = format!("{}@{}.io", "a".repeat(64), "b".repeat(254 - 64 - 4));
    assert_eq!(longest.len(), 254);
    store.create_user(&longest, "8 chars!", &[]).await.unwrap();
    store
        .create_user("max@x.io", &"é".repeat(1024), &[])
        .await
        .unwrap();
    store
        .authenticate(login("max@x.io", &"é".repeat(1024)))
        .await
        .unwrap();

    // Each maps to a 400 with a sentence that says what is wrong.
    let err: Error =
        UserError::InvalidPassword("the password must be at least 8 characters long").into();
    assert_eq!((err.status(), err.code()), (400, "invalid_request"));
    assert!(err.description().contains("at least 8"));
    let err: Error = UserError::InvalidEmail.into();
    assert_eq!(
        (err.status(), &*err.description()),
        (400, "the email address is not valid")
    );
}

async fn authenticate_succeeds(db: TestDb) {
    let store = db.store(cheap()).await;
    let user = store
        .create_user("Eve@X.io", "correct horse", &["admin"])
        .await
        .unwrap();
    let creds = login("  EVE@x.io", "correct horse");
    assert_eq!(store.account_key(&creds).unwrap(), "eve@x.io");
    let malformed = store.account_key(&login("not an email", "x")).unwrap_err();
    assert_eq!(
        (malformed.status(), malformed.code()),
        (400, "invalid_request")
    );
    let huge = store
        .account_key(&login(&format!("{}@x.io", "a".repeat(16 * 1024)), "x"))
        .unwrap_err();
    assert_eq!(huge.status(), 400, "an oversized email names no account");
    let who = store.authenticate(creds).await.unwrap();
    assert_eq!(who.user_id, user.id.to_string());
    assert_eq!(who.claims.email, "eve@x.io");
    assert_eq!(who.claims.roles, ["admin"]);
}

async fn wrong_password_and_unknown_email_look_the_same(db: TestDb) {
    let store = db.store(cheap()).await;
    store
        .create_user("known@x.io", "correct horse", &[])
        .await
        .unwrap();
    let attempts = [
        login("known@x.io", "wrong horse"),
        login("unknown@x.io", "correct horse"),
        login("unknown@x.io", "wrong horse"),
        login("known@x.io", "Correct horse"),
        login("known@x.io", "short"),
        login("not an email", "correct horse"),
        login("known@x.io", &"a".repeat(1_000_000)),
    ];
    let mut bodies = Vec::new();
    for creds in attempts {
        let err = store.authenticate(creds.clone()).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidCredentials),
            "{creds:?}: {err:?}"
        );
        bodies.push((err.status(), err.body()));
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
    assert_eq!(bodies[0].0, 401);
}

async fn set_password_replaces_the_old_one(db: TestDb) {
    let store = db.store(cheap()).await;
    let user = store
        .create_user("pw@x.io", "old password", &[])
        .await
        .unwrap();
    store.set_password(user.id, "new password").await.unwrap();
    let err = store
        .authenticate(login("pw@x.io", "old password"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCredentials), "{err:?}");
    store
        .authenticate(login("pw@x.io", "new password"))
        .await
        .unwrap();

    let err = store.set_password(user.id, "short").await.unwrap_err();
    assert!(matches!(err, UserError::InvalidPassword(_)), "{err:?}");
    store
        .authenticate(login("pw@x.io", "new password"))
        .await
        .unwrap();

    let err = store
        .set_password(user.id + 1000, "another password")
        .await
        .unwrap_err();
    assert!(matches!(err, UserError::NotFound), "{err:?}");
}

async fn set_roles_reaches_the_claims(db: TestDb) {
    let store = db.store(cheap()).await;
    let user = store
        .create_user("roles@x.io", "correct horse", &["user"])
        .await
        .unwrap();
    store
        .set_roles(user.id, &["editor", "admin", "editor"])
        .await
        .unwrap();
    let found = store.find_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(found.roles, ["editor", "admin"]);
    let who = store
        .authenticate(login("roles@x.io", "correct horse"))
        .await
        .unwrap();
    assert_eq!(who.claims.roles, ["editor", "admin"]);

    store.set_roles(user.id, &[]).await.unwrap();
    let who = store
        .authenticate(login("roles@x.io", "correct horse"))
        .await
        .unwrap();
    assert!(who.claims.roles.is_empty(), "{:?}", who.claims.roles);

    let err = store.set_roles(user.id, &["bad,role"]).await.unwrap_err();
    assert!(matches!(err, UserError::InvalidRole(_)), "{err:?}");
    let err = store
        .set_roles(user.id + 1000, &["admin"])
        .await
        .unwrap_err();
    assert!(matches!(err, UserError::NotFound), "{err:?}");
}

async fn outdated_hash_is_upgraded_on_login(db: TestDb) {
    let old_store = db.store(cheap()).await;
    old_store
        .create_user("old@x.io", "correct horse", &[])
        .await
        .unwrap();
    old_store
        .create_user("other@x.io", "correct horse", &[])
        .await
        .unwrap();
    let old_hash = db.stored_hash("old@x.io");
    assert!(
        old_hash.starts_with("$argon2id$v=19$m=8,t=1,p=1$"),
        "{old_hash}"
    );

    let store = db.store(Argon2Params::default()).await;
    store
        .authenticate(login("old@x.io", "correct horse"))
        .await
        .unwrap();
    let new_hash = db.stored_hash("old@x.io");
    assert!(
        new_hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{new_hash}"
    );

    // The new hash verifies, and is current: no further rewrite.
    store
        .authenticate(login("old@x.io", "correct horse"))
        .await
        .unwrap();
    assert_eq!(db.stored_hash("old@x.io"), new_hash);
    // The cheap store still verifies the upgraded hash (it reads the hash's params).
    old_store
        .authenticate(login("old@x.io", "correct horse"))
        .await
        .unwrap();

    // A failed login upgrades nothing.
    let other = db.stored_hash("other@x.io");
    assert!(
        store
            .authenticate(login("other@x.io", "wrong horse"))
            .await
            .is_err()
    );
    assert_eq!(db.stored_hash("other@x.io"), other);
}

async fn sql_metacharacters_stay_data(db: TestDb) {
    let store = db.store(cheap()).await;
    let first = store
        .create_user("first@x.io", "correct horse", &[])
        .await
        .unwrap();

    // With spaces it is not an email at all.
    let err = store
        .create_user("a'; DROP TABLE users;--@x.io", "correct horse", &[])
        .await
        .unwrap_err();
    assert!(matches!(err, UserError::InvalidEmail), "{err:?}");

    // Without, it is stored and found verbatim.
    let email = "o'brien\";drop_table--users@x.io";
    let password = "'; DROP TABLE users;--";
    let roles = ["x');DELETE", "admin'--"];
    let user = store.create_user(email, password, &roles).await.unwrap();
    assert_eq!(user.email, email);
    assert_eq!(user.roles, roles);
    assert_eq!(
        store.find_by_email(email).await.unwrap(),
        Some(user.clone())
    );
    let who = store.authenticate(login(email, password)).await.unwrap();
    assert_eq!(who.claims.roles, roles);

    // A classic injection finds no one, and everything is still there.
    assert_eq!(store.find_by_email("'or'1'='1@x.io").await.unwrap(), None);
    assert!(
        store
            .authenticate(login("'or'1'='1@x.io", "' OR '1'='1"))
            .await
            .is_err()
    );
    assert_eq!(store.find_by_id(first.id).await.unwrap(), Some(first));
}

async fn concurrent_logins_all_succeed(db: TestDb) {
    let store = UserStore::builder(db.url())
        .argon2_params(cheap())
        .hash_concurrency(1)
        .connect()
        .unwrap();
    store.run_migrations().await.unwrap();
    store
        .create_user("burst@x.io", "correct horse", &[])
        .await
        .unwrap();
    // 24 logins for one permit: the right password, a wrong one, an unknown
    // email. All queue and all get their own answer; none is refused.
    // tokio::spawn also proves the futures are Send + 'static.
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let store = store.clone();
            let (email, password) = match i % 3 {
                0 => ("burst@x.io", "correct horse"),
                1 => ("burst@x.io", "wrong horse"),
                _ => ("nobody@x.io", "correct horse"),
            };
            tokio::spawn(async move { store.authenticate(login(email, password)).await })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(who) => {
                assert_eq!(who.claims.email, "burst@x.io");
                ok += 1;
            }
            Err(e) => assert!(matches!(e, Error::InvalidCredentials), "{e:?}"),
        }
    }
    assert_eq!(ok, 8);
}

async fn migrations_are_idempotent(db: TestDb) {
    let store = db.store(cheap()).await;
    let user = store
        .create_user("m@x.io", "correct horse", &[])
        .await
        .unwrap();
    store.run_migrations().await.unwrap();
    let again = db.store(cheap()).await;
    assert_eq!(again.find_by_id(user.id).await.unwrap(), Some(user));
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable_quickly() {
    let started = Instant::now();
    let err = UserStore::connect("postgres://postgres@127.0.0.1:1/x").unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, UserError::Unavailable(_)), "{err:?}");
    let err: Error = err.into();
    assert_eq!((err.status(), err.code()), (503, "temporarily_unavailable"));
}

#[tokio::test]
async fn sqlite_in_a_missing_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/users.db");
    let err = UserStore::connect(&format!("sqlite://{}", path.display())).unwrap_err();
    match &err {
        UserError::Config(why) => assert!(why.contains("does not exist"), "{why}"),
        other => panic!("expected Config, got {other:?}"),
    }
    assert!(!path.exists());
}

#[tokio::test]
async fn unusable_urls_are_config_errors() {
    for url in ["", "mysql://u@h/db", "sqlite://"] {
        let err = UserStore::connect(url).unwrap_err();
        assert!(matches!(err, UserError::Config(_)), "{url:?}: {err:?}");
    }
    assert!(matches!(Argon2Params::new(1, 1, 1), Err(Error::Config(_))));
}

#[tokio::test]
async fn in_memory_sqlite_works() {
    let store = UserStore::builder(":memory:")
        .argon2_params(cheap())
        .connect()
        .unwrap();
    store.run_migrations().await.unwrap();
    let user = store
        .create_user("mem@x.io", "correct horse", &[])
        .await
        .unwrap();
    // A clone shares the one in-memory database.
    let clone = store.clone();
    assert_eq!(clone.find_by_email("mem@x.io").await.unwrap(), Some(user));
    assert!(format!("{store:?}").contains("sqlite"));
}

#[test]
fn errors_map_onto_reissue_errors() {
    let cases: [(UserError, u16, &str); 5] = [
        (UserError::EmailTaken, 400, "invalid_request"),
        (
            UserError::Overloaded { retry_after: 1 },
            503,
            "temporarily_unavailable",
        ),
        (UserError::NotFound, 400, "invalid_request"),
        (
            UserError::Unavailable(Box::new(std::io::Error::other("down"))),
            503,
            "temporarily_unavailable",
        ),
        (UserError::Config("x".into()), 500, "server_error"),
    ];
    for (user_error, status, code) in cases {
        let err: Error = user_error.into();
        assert_eq!((err.status(), err.code()), (status, code));
    }
}

#[test]
fn credentials_deserialize_and_hide_the_password() {
    let creds: EmailPassword =
        serde_json::from_str(r#"{"email":"a@x.io","password":"hunter22","remember":true}"#)
            .unwrap();
    assert_eq!(
        (creds.email.as_str(), creds.password.as_str()),
        ("a@x.io", "hunter22")
    );
    assert!(!format!("{creds:?}").contains("hunter22"));
    assert!(serde_json::from_str::<EmailPassword>(r#"{"email":"a@x.io"}"#).is_err());
}
