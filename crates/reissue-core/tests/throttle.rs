//! Login throttling through `Reissue`, on the memory store and a real Redis,
//! as attackers try it: guesses from 300 networks against a user who has a
//! device token, password spraying from one network, and a refused country
//! that must cost no password check.

mod support;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reissue_core::policy::CidrRules;
use reissue_core::store::{ClientMeta, MemoryStore, RedisStore, RefreshStore};
use reissue_core::{Authenticated, Authenticator, Config, Error, Reissue, UserClaims};
use support::{RedisServer, hs256_keys};

/// `(email, password)`; only `pw` is right. Counts the password checks.
#[derive(Clone, Default)]
struct Users(Arc<AtomicUsize>);

impl Authenticator for Users {
    type Credentials = (String, String);
    type Claims = UserClaims;
    fn account_key(&self, (email, _): &(String, String)) -> reissue_core::Result<String> {
        Ok(email.clone())
    }
    async fn authenticate(
        &self,
        (email, password): (String, String),
    ) -> reissue_core::Result<Authenticated<UserClaims>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        if password == "pw" {
            Ok(Authenticated::new(
                email.clone(),
                UserClaims::new(email, vec![]),
            ))
        } else {
            Err(Error::InvalidCredentials)
        }
    }
}

fn from(ip: [u8; 4]) -> ClientMeta {
    ClientMeta::new(Some(IpAddr::from(ip)), None, None)
}

fn login(email: &str, password: &str) -> (String, String) {
    (email.to_owned(), password.to_owned())
}

async fn stores(prefix: &str) -> Vec<(&'static str, Arc<dyn RefreshStore>)> {
    let redis = RedisStore::builder(RedisServer::shared().url())
        .key_prefix(prefix)
        .connect()
        .await
        .unwrap();
    vec![
        ("memory", Arc::new(MemoryStore::new())),
        ("redis", Arc::new(redis)),
    ]
}

fn instance(store: Arc<dyn RefreshStore>, users: Users) -> Reissue<Users> {
    let config = Config::new("throttle", "throttle").login_lockout(5, Duration::from_secs(300));
    Reissue::builder(config, hs256_keys(), store, users)
        .build()
        .unwrap()
}

/// DESIGN.md's promise: guesses from any number of networks can lock a
/// new network out of an account (the account-wide ceiling, 50 here), but
/// not a device that logged in to it before and sends its device token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attacker_from_300_networks_cannot_keep_a_known_device_out() {
    for (name, store) in stores("devices:").await {
        let r = instance(store, Users::default());
        let phone = r
            .login(login("ada@x.io", "pw"), &from([203, 0, 113, 7]))
            .await
            .unwrap();
        let device = phone
            .device_token
            .clone()
            .expect("a login answers a device token");
        for n in 0..300u32 {
            let ip = [10, (n / 256) as u8, (n % 256) as u8, 1];
            let err = r
                .login(login("ada@x.io", "guess"), &from(ip))
                .await
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidCredentials | Error::TooManyAttempts { .. }
                ),
                "{name}: {err:?}"
            );
        }
        let err = r
            .login(login("ada@x.io", "pw"), &from([192, 0, 2, 1]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::TooManyAttempts { .. }),
            "{name}: a new network meets the ceiling: {err:?}"
        );
        let again = r
            .login_with_device(
                login("ada@x.io", "pw"),
                &from([192, 0, 2, 1]),
                Some(&device),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: the known device is kept out: {e:?}"));
        assert!(again.device_token.is_some());
        // Another account's device token, a forged one, an access token:
        // none of them is a device of this account.
        let bob = r
            .login(login("bob@x.io", "pw"), &from([198, 51, 100, 1]))
            .await
            .unwrap();
        for wrong in [
            bob.device_token.clone().unwrap(),
            format!("{device}x"),
            phone.access_token.clone(),
            phone.refresh_token.clone(),
        ] {
            let err = r
                .login_with_device(login("ada@x.io", "pw"), &from([192, 0, 2, 1]), Some(&wrong))
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::TooManyAttempts { .. }),
                "{name}: {err:?}"
            );
        }
    }
}

/// Password spraying from one network: past its ceiling across accounts
/// (20 × 5 = 100 by default) it gets 429 for every account, without a
/// password check; another network is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spraying_from_one_network_is_capped_across_accounts() {
    for (name, store) in stores("spraying:").await {
        let users = Users::default();
        let r = instance(store, users.clone());
        let mut throttled = 0;
        for i in 0..130 {
            match r
                .login(
                    login(&format!("u{i}@x.io"), "guess"),
                    &from([198, 51, 100, 9]),
                )
                .await
            {
                Err(Error::InvalidCredentials) => {}
                Err(Error::TooManyAttempts { .. }) => throttled += 1,
                other => panic!("{name}: {other:?}"),
            }
        }
        assert_eq!(throttled, 30, "{name}");
        assert_eq!(
            users.0.load(Ordering::SeqCst),
            100,
            "{name}: password checks"
        );
        r.login(login("u1@x.io", "pw"), &from([203, 0, 113, 9]))
            .await
            .unwrap();
    }
}

/// The address and country policy runs before the password: a refused
/// client costs no password check, and a right and a wrong password get the
/// same answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_client_costs_no_password_check() {
    for (name, store) in stores("policy-first:").await {
        let users = Users::default();
        let config = Config::new("throttle", "throttle");
        let r = Reissue::builder(config, hs256_keys(), store, users.clone())
            .policy(CidrRules::parse("", "198.51.100.0/24").unwrap())
            .build()
            .unwrap();
        for password in ["pw", "guess"] {
            let err = r
                .login(login("ada@x.io", password), &from([198, 51, 100, 9]))
                .await
                .unwrap_err();
            assert!(matches!(err, Error::AccessDenied), "{name}: {err:?}");
        }
        assert_eq!(users.0.load(Ordering::SeqCst), 0, "{name}: password checks");
    }
}
