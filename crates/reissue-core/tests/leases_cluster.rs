//! Strict revocation by leases on a Redis Cluster (3 primaries + 3
//! replicas; the holders in one slot, the acknowledgements beside each
//! bucket's log) and behind Sentinel (renewals confirmed by the replica). Every way a session ends is refused by every instance the
//! moment the call returns; a primary killed while logouts go on (the one
//! holding the leases) lengthens logouts, and never lets a returned logout's
//! session through.
//!
//! Its own binary: it starts a cluster of its own and kills a node of it.

mod support;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reissue_core::store::{ClientMeta, RedisStore, dangerous};
use reissue_core::{
    Access, Admission, Config, Error, HttpRequest, Reissue, RevocationMode, TokenRejection,
};
use support::{AnyUser, deploy, hs256_keys};

struct Request(Vec<u8>);

impl HttpRequest for Request {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        (name == "authorization")
            .then_some(self.0.as_slice())
            .into_iter()
    }
    fn peer_addr(&self) -> Option<IpAddr> {
        Some([203, 0, 113, 7].into())
    }
}

fn bearer(token: &str) -> Request {
    Request(format!("Bearer {token}").into_bytes())
}

async fn store(url: &str, prefix: &str) -> Arc<RedisStore> {
    Arc::new(
        RedisStore::builder(url)
            .key_prefix(prefix)
            .command_timeout(Duration::from_millis(1000))
            .connect()
            .await
            .expect("connect to the cluster"),
    )
}

async fn instance(url: &str, prefix: &str) -> Reissue<AnyUser> {
    let config = Config::new("leases", "leases")
        .revocation(RevocationMode::Strict)
        .reuse_grace(Duration::ZERO)
        .max_sessions_per_user(2);
    Reissue::builder(config, hs256_keys(), store(url, prefix).await, AnyUser)
        .build()
        .unwrap()
}

async fn wait_leased(instances: &[&Reissue<AnyUser>], within: Duration) {
    let started = Instant::now();
    while !instances
        .iter()
        .all(|r| r.verifier().revocations().unwrap().holds_lease())
    {
        assert!(started.elapsed() < within, "leases not granted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn local(r: &Reissue<AnyUser>, access: &str) -> Option<Result<(), Error>> {
    match r.verifier().gate(Access::required()).admit(&bearer(access)) {
        Admission::Ready(decided) => Some(decided.map(drop)),
        Admission::Pending(_) => None,
    }
}

fn revoked(result: &Result<(), Error>) -> bool {
    matches!(
        result,
        Err(Error::InvalidToken(TokenRejection::SessionRevoked))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_every_ending_is_refused_everywhere_when_it_returns() {
    let cluster = deploy::Cluster::shared();
    let (url, prefix) = (cluster.url(), "lease-cluster:");
    let a = instance(&url, prefix).await;
    let b = instance(&url, prefix).await;
    let c = instance(&url, prefix).await;
    wait_leased(&[&a, &b, &c], Duration::from_secs(15)).await;
    let client = ClientMeta::default();
    let probe = store(&url, prefix).await;
    let mut primaries = HashSet::new();
    for round in 0..12 {
        let user = format!("cl{round}");
        primaries.insert(cluster.primary_of(&dangerous::revocation_log_key(&probe, &user)));
        let p = a.login(user.clone(), &client).await.unwrap();
        let q = a.login(user.clone(), &client).await.unwrap();
        let id = a.tokens().verify_refresh(&p.refresh_token).unwrap();
        let ended: Vec<&str> = match round % 4 {
            0 => {
                a.logout(&user, &id.sid).await.unwrap();
                vec![&p.access_token]
            }
            1 => {
                a.logout_all(&user).await.unwrap();
                vec![&p.access_token, &q.access_token]
            }
            2 => {
                a.reissue(&p.refresh_token, &client).await.unwrap();
                a.reissue(&p.refresh_token, &client).await.unwrap_err();
                vec![&p.access_token]
            }
            _ => {
                a.login(user.clone(), &client).await.unwrap();
                vec![&p.access_token]
            }
        };
        for r in [&a, &b, &c] {
            for access in &ended {
                let decided = local(r, access);
                assert!(
                    matches!(decided, Some(ref d) if revoked(d)),
                    "round {round}: refused from local state at once, got {decided:?}"
                );
            }
        }
    }
    assert!(primaries.len() > 1, "the users span several primaries");
}

/// Behind Sentinel, where grants and renewals wait for the replica: every
/// ending refused from local state on every instance when it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_sentinel_every_ending_is_refused_everywhere_when_it_returns() {
    let set = deploy::Sentinel::shared();
    let (url, prefix) = (set.url(), "lease-sentinel:");
    let a = instance(&url, prefix).await;
    let b = instance(&url, prefix).await;
    let c = instance(&url, prefix).await;
    wait_leased(&[&a, &b, &c], Duration::from_secs(15)).await;
    let client = ClientMeta::default();
    for round in 0..8 {
        let user = format!("se{round}");
        let p = a.login(user.clone(), &client).await.unwrap();
        let q = a.login(user.clone(), &client).await.unwrap();
        let id = a.tokens().verify_refresh(&p.refresh_token).unwrap();
        let ended: Vec<&str> = match round % 4 {
            0 => {
                a.logout(&user, &id.sid).await.unwrap();
                vec![&p.access_token]
            }
            1 => {
                a.force_logout(&user, "stolen").await.unwrap();
                vec![&p.access_token, &q.access_token]
            }
            2 => {
                a.reissue(&p.refresh_token, &client).await.unwrap();
                a.reissue(&p.refresh_token, &client).await.unwrap_err();
                vec![&p.access_token]
            }
            _ => {
                a.login(user.clone(), &client).await.unwrap();
                vec![&p.access_token]
            }
        };
        for r in [&a, &b, &c] {
            for access in &ended {
                let decided = local(r, access);
                assert!(
                    matches!(decided, Some(ref d) if revoked(d)),
                    "round {round}: refused from local state at once, got {decided:?}"
                );
            }
        }
    }
}

/// Logouts on `a` while the primary holding the leases is killed: each logout
/// is retried while it answers 503, as a client would; from the moment one
/// returned, `b` and `c` never accept its session (503 is allowed while they
/// cannot be sure and cannot reach the store). Once the cluster has failed
/// over, every instance holds its lease again and refuses every ended
/// session from its own state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_during_logouts_never_lets_a_returned_logout_through() {
    let mut cluster = deploy::Cluster::start();
    let (url, prefix) = (cluster.url(), "lease-failover:");
    let a = instance(&url, prefix).await;
    let b = instance(&url, prefix).await;
    let c = instance(&url, prefix).await;
    wait_leased(&[&a, &b, &c], Duration::from_secs(15)).await;
    let probe = store(&url, prefix).await;
    let victim = cluster.primary_of(&dangerous::lease_key(&probe));
    let client = ClientMeta::default();
    let mut sessions = Vec::new();
    for i in 0..30 {
        let user = format!("fo{i}");
        let p = a.login(user.clone(), &client).await.unwrap();
        let id = a.tokens().verify_refresh(&p.refresh_token).unwrap();
        sessions.push((user, id.sid, p.access_token));
    }
    let ended: Arc<Mutex<Vec<String>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let checkers: Vec<_> = [b.clone(), c.clone()]
        .into_iter()
        .map(|r| {
            let (ended, done) = (ended.clone(), done.clone());
            tokio::spawn(async move {
                let (mut checks, mut unavailable) = (0u32, 0u32);
                while !done.load(Ordering::SeqCst) {
                    let tokens = ended.lock().unwrap().clone();
                    for access in &tokens {
                        let result = r
                            .verifier()
                            .gate(Access::required())
                            .decide(&bearer(access))
                            .await
                            .map(drop);
                        checks += 1;
                        match result {
                            Ok(()) => panic!("a returned logout's session was accepted"),
                            Err(Error::Unavailable(_)) => unavailable += 1,
                            Err(ref e) => assert!(revoked(&result), "{e:?}"),
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (checks, unavailable)
            })
        })
        .collect();
    let mut took = Vec::new();
    for (i, (user, sid, access)) in sessions.iter().enumerate() {
        if i == 10 {
            cluster.node(victim).kill();
        }
        let started = Instant::now();
        loop {
            match a.logout(user, sid).await {
                Ok(()) => break,
                Err(Error::Unavailable(_)) => {
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "the logout never succeeded"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("logout {i}: {e:?}"),
            }
        }
        took.push(started.elapsed());
        ended.lock().unwrap().push(access.clone());
    }
    done.store(true, Ordering::SeqCst);
    for checker in checkers {
        let (checks, unavailable) = checker.await.unwrap();
        println!("checker: {checks} checks of ended sessions, {unavailable} answered 503");
    }
    println!(
        "logouts across the failover: max {:?}, before the kill max {:?}",
        took.iter().max().unwrap(),
        took[..10].iter().max().unwrap()
    );
    cluster.node(victim).restart();
    cluster.wait_healthy(Duration::from_secs(60));
    wait_leased(&[&a, &b, &c], Duration::from_secs(30)).await;
    for r in [&a, &b, &c] {
        for (_, _, access) in &sessions {
            let decided = local(r, access);
            assert!(
                matches!(decided, Some(ref d) if revoked(d)),
                "after the failover: {decided:?}"
            );
        }
    }
}
