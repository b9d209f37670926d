//! Strict revocation by leases (DESIGN.md, "Strict revocation by leases"):
//! three `Reissue` instances in one process, each with its own store
//! connections and feed, on a real Redis. Every way a session ends is
//! refused by every instance the moment the ending call returns, from the
//! instance's own state (no store round trip, no polling, no sleep); an
//! instance cut off from Redis delays a logout by at most its lease and,
//! back, refuses the ended session's tokens from its first request; a new
//! instance joining while logouts happen misses none.
//!
//! Its own binary: it runs long-lived feeds and a proxy of its own.

mod support;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reissue_core::store::{ClientMeta, RedisStore};
use reissue_core::{
    Access, Admission, Config, Error, HttpRequest, Identity, Reissue, RevocationMode,
    TokenRejection, UserClaims,
};
use support::{AnyUser, RedisServer, hs256_keys};

struct Request(Vec<u8>);

impl Request {
    fn bearer(token: &str) -> Self {
        Self(format!("Bearer {token}").into_bytes())
    }
}

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

async fn store(url: &str, prefix: &str) -> Arc<RedisStore> {
    Arc::new(
        RedisStore::builder(url)
            .key_prefix(prefix)
            .command_timeout(Duration::from_millis(500))
            .connect()
            .await
            .expect("connect to the test redis"),
    )
}

fn strict() -> Config {
    Config::new("leases", "leases")
        .revocation(RevocationMode::Strict)
        .reuse_grace(Duration::ZERO)
        .max_sessions_per_user(2)
}

async fn instance(url: &str, prefix: &str) -> Reissue<AnyUser> {
    Reissue::builder(strict(), hs256_keys(), store(url, prefix).await, AnyUser)
        .build()
        .unwrap()
}

/// Waits (set-up only, never an assertion's timing) until every instance
/// holds its lease.
async fn wait_leased(instances: &[&Reissue<AnyUser>]) {
    let started = Instant::now();
    while !instances
        .iter()
        .all(|r| r.verifier().revocations().unwrap().holds_lease())
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "leases not granted"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What the instance decides without waiting: `Some` from its own state,
/// `None` if it would ask the store.
fn local(r: &Reissue<AnyUser>, access: &str) -> Option<Result<(), Error>> {
    match r
        .verifier()
        .gate(Access::required())
        .admit(&Request::bearer(access))
    {
        Admission::Ready(decided) => Some(decided.map(drop)),
        Admission::Pending(_) => None,
    }
}

async fn admitted(r: &Reissue<AnyUser>, access: &str) -> Result<Arc<Identity<UserClaims>>, Error> {
    r.verifier()
        .gate(Access::required())
        .decide(&Request::bearer(access))
        .await
        .map(|id| id.expect("a token was presented"))
}

fn revoked(result: Result<(), Error>) -> bool {
    matches!(
        result,
        Err(Error::InvalidToken(TokenRejection::SessionRevoked))
    )
}

/// Every way a session ends, on instance `a`: the moment the call returns,
/// `b` and `c` refuse its access tokens from their own state, holding their
/// leases; the user's other sessions and a bystander stay accepted, also
/// without a store round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_a_session_ends_is_refused_everywhere_when_it_returns() {
    let server = RedisServer::shared();
    let (url, prefix) = (server.url(), "lease-every:");
    let a = instance(&url, prefix).await;
    let b = instance(&url, prefix).await;
    let c = instance(&url, prefix).await;
    wait_leased(&[&a, &b, &c]).await;
    let client = ClientMeta::new(Some([203, 0, 113, 7].into()), None, None);
    let bystander = a.login("bystander".into(), &client).await.unwrap();
    let mut took = Vec::new();
    for round in 0..24 {
        let user = format!("u{round}");
        let p = a.login(user.clone(), &client).await.unwrap();
        let q = a.login(user.clone(), &client).await.unwrap();
        let id = a.tokens().verify_refresh(&p.refresh_token).unwrap();
        let qid = a.tokens().verify_refresh(&q.refresh_token).unwrap();
        for r in [&b, &c] {
            admitted(r, &p.access_token).await.unwrap();
        }
        let started = Instant::now();
        let (ended, other_kept): (Vec<&str>, bool) = match round % 8 {
            0 => {
                a.logout(&user, &id.sid).await.unwrap();
                (vec![&p.access_token], true)
            }
            1 => {
                assert!(a.revoke_session(&user, &id.sid).await.unwrap());
                (vec![&p.access_token], true)
            }
            2 => {
                assert_eq!(a.logout_all(&user).await.unwrap(), 2);
                (vec![&p.access_token, &q.access_token], false)
            }
            3 => {
                a.force_logout(&user, "stolen").await.unwrap();
                (vec![&p.access_token, &q.access_token], false)
            }
            4 => {
                a.reissue(&p.refresh_token, &client).await.unwrap();
                let err = a.reissue(&p.refresh_token, &client).await.unwrap_err();
                assert!(matches!(
                    err,
                    Error::InvalidToken(TokenRejection::ReuseDetected)
                ));
                (vec![&p.access_token], true)
            }
            5 => {
                // A third login over the limit of two evicts the oldest.
                a.login(user.clone(), &client).await.unwrap();
                (vec![&p.access_token], true)
            }
            6 => {
                // A password change from session q ends the others.
                assert_eq!(
                    a.credentials_changed(&user, Some(&qid.sid)).await.unwrap(),
                    1
                );
                (vec![&p.access_token], true)
            }
            _ => {
                // A role change ends them all.
                assert_eq!(a.credentials_changed(&user, None).await.unwrap(), 2);
                (vec![&p.access_token, &q.access_token], false)
            }
        };
        took.push(started.elapsed());
        for r in [&a, &b, &c] {
            for access in &ended {
                let decided = local(r, access);
                assert!(
                    matches!(
                        decided,
                        Some(Err(Error::InvalidToken(TokenRejection::SessionRevoked)))
                    ),
                    "round {round}: an ended session must be refused from local state at once, got {decided:?}"
                );
            }
        }
        for r in [&b, &c] {
            assert!(r.verifier().revocations().unwrap().holds_lease());
            if other_kept {
                assert!(
                    matches!(local(r, &q.access_token), Some(Ok(()))),
                    "round {round}: the user's other session is accepted without a round trip"
                );
            }
            assert!(matches!(local(r, &bystander.access_token), Some(Ok(()))));
        }
    }
    took.sort();
    println!(
        "ending calls with three lease holders: p50 {:?}, max {:?} ({} samples)",
        took[took.len() / 2],
        took.last().unwrap(),
        took.len()
    );
}

/// Many logouts on `a` while checkers on `b` and `c` ask about their
/// sessions without pause: no check that starts after a logout returned
/// accepts its session (the concurrent history, with leases).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_check_after_a_returned_logout_accepts_its_session() {
    let server = RedisServer::shared();
    let (url, prefix) = (server.url(), "lease-crowd:");
    let a = instance(&url, prefix).await;
    let b = instance(&url, prefix).await;
    let c = instance(&url, prefix).await;
    wait_leased(&[&a, &b, &c]).await;
    let client = ClientMeta::default();
    let mut sessions = Vec::new();
    for i in 0..40 {
        let user = format!("crowd-{i}");
        let pair = a.login(user.clone(), &client).await.unwrap();
        let id = admitted(&a, &pair.access_token).await.unwrap();
        sessions.push((user, id.session_id.clone(), pair.access_token));
    }
    let sessions = Arc::new(sessions);
    let ended: Arc<Vec<AtomicBool>> = Arc::new((0..40).map(|_| AtomicBool::new(false)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let checkers: Vec<_> = (0..6)
        .map(|t| {
            let r = if t % 2 == 0 { b.clone() } else { c.clone() };
            let (sessions, ended, done) = (sessions.clone(), ended.clone(), done.clone());
            tokio::spawn(async move {
                let (mut checked, mut refused_after) = (0u32, 0u32);
                let mut j = t;
                while !done.load(Ordering::SeqCst) {
                    j = (j + 7) % sessions.len();
                    let was_ended = ended[j].load(Ordering::SeqCst);
                    let result = admitted(&r, &sessions[j].2).await.map(drop);
                    checked += 1;
                    match result {
                        Ok(()) => {
                            assert!(!was_ended, "session {j} accepted after its logout returned")
                        }
                        Err(Error::InvalidToken(TokenRejection::SessionRevoked)) => {
                            assert!(j % 2 == 0, "session {j} was never logged out");
                            refused_after += u32::from(was_ended);
                        }
                        Err(e) => panic!("session {j}: {e:?}"),
                    }
                    tokio::task::yield_now().await;
                }
                (checked, refused_after)
            })
        })
        .collect();
    for j in (0..40).step_by(2) {
        tokio::time::sleep(Duration::from_millis(3)).await;
        let (user, sid, _) = &sessions[j];
        a.logout(user, sid).await.unwrap();
        ended[j].store(true, Ordering::SeqCst);
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    done.store(true, Ordering::SeqCst);
    let (mut checked, mut refused_after) = (0, 0);
    for c in checkers {
        let (n, r) = c.await.unwrap();
        checked += n;
        refused_after += r;
    }
    assert!(
        refused_after > 0,
        "no check came after a logout ({checked} checks)"
    );
    println!("{checked} checks, {refused_after} of them after their session's logout");
}

/// A new instance joins while logouts happen on `a`: whenever a logout has
/// returned, the newcomer refuses its session, whether it already held its
/// lease (from its own state) or not (from the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_joining_while_logouts_happen_misses_none() {
    let server = RedisServer::shared();
    let (url, prefix) = (server.url(), "lease-join:");
    let a = instance(&url, prefix).await;
    let b = instance(&url, prefix).await;
    wait_leased(&[&a, &b]).await;
    let client = ClientMeta::default();
    let mut pairs = Vec::new();
    for i in 0..60 {
        let user = format!("join-{i}");
        let p = a.login(user.clone(), &client).await.unwrap();
        let id = a.tokens().verify_refresh(&p.refresh_token).unwrap();
        pairs.push((user, id.sid, p.access_token));
    }
    let newcomer = Arc::new(tokio::sync::OnceCell::new());
    let joining = {
        let (url, newcomer) = (url.clone(), newcomer.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = newcomer.set(instance(&url, prefix).await);
        })
    };
    let (mut before_lease, mut with_lease) = (0, 0);
    let mut logged_out: Vec<&str> = Vec::new();
    for (user, sid, access) in &pairs {
        a.logout(user, sid).await.unwrap();
        logged_out.push(access);
        if let Some(n) = newcomer.get() {
            let leased = n.verifier().revocations().unwrap().holds_lease();
            for access in &logged_out {
                match local(n, access) {
                    Some(decided) => {
                        assert!(revoked(decided), "the newcomer accepted an ended session");
                    }
                    None => assert!(revoked(admitted(n, access).await.map(drop))),
                }
            }
            if leased {
                with_lease += 1;
            } else {
                before_lease += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    joining.await.unwrap();
    let n = newcomer.get().expect("the newcomer joined");
    wait_leased(&[n]).await;
    for access in &logged_out {
        assert!(revoked(
            local(n, access).expect("decided from its own state")
        ));
    }
    println!(
        "checked by the newcomer: {before_lease} logouts before its lease, {with_lease} with it"
    );
}

/// A TCP proxy that can be frozen: while frozen, nothing passes either way
/// (a partition, or a stopped process as Redis sees it).
struct FreezableProxy {
    port: u16,
    frozen: tokio::sync::watch::Sender<bool>,
}

impl FreezableProxy {
    async fn start(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (frozen, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, watch.clone()));
                tokio::spawn(pipe(sr, cw, watch.clone()));
            }
        });
        Self { port, frozen }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if frozen.wait_for(|f| !*f).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // What was read while frozen waits for the thaw.
        if frozen.wait_for(|f| !*f).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Instance `b` cut off from Redis (its feed and its renewals frozen in a
/// proxy) across a logout on `a`: the logout returns (after `b`'s lease ran
/// out in the store), `b` counts its lease lapsed and, while it cannot ask
/// the store, answers 503, never the ended session; thawed, it refuses the
/// ended session from its first request, then re-syncs and holds its lease
/// again. `c`, healthy, refused it from its own state all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_instance_delays_a_logout_and_never_accepts_it() {
    let server = RedisServer::shared();
    let (url, prefix) = (server.url(), "lease-cut:");
    let proxy = FreezableProxy::start(server.port()).await;
    let a = instance(&url, prefix).await;
    let b = instance(&proxy.url(), prefix).await;
    let c = instance(&url, prefix).await;
    wait_leased(&[&a, &b, &c]).await;
    let client = ClientMeta::default();
    let live = a.login("stays".into(), &client).await.unwrap();
    for round in 0..2 {
        let user = format!("cut-{round}");
        let p = a.login(user.clone(), &client).await.unwrap();
        let id = a.tokens().verify_refresh(&p.refresh_token).unwrap();
        admitted(&b, &p.access_token).await.unwrap();
        proxy.freeze(true);
        a.logout(&user, &id.sid).await.unwrap();
        assert!(revoked(local(&c, &p.access_token).unwrap()));
        // Lapsed by its own clock: it no longer answers from its state.
        assert!(!b.verifier().revocations().unwrap().holds_lease());
        match admitted(&b, &p.access_token).await {
            Err(Error::Unavailable(_)) => {}
            Err(Error::InvalidToken(TokenRejection::SessionRevoked)) => {}
            other => panic!("round {round}: the cut-off instance answered {other:?}"),
        }
        proxy.freeze(false);
        assert!(
            revoked(admitted(&b, &p.access_token).await.map(drop)),
            "round {round}: the first request after the thaw is refused"
        );
        wait_leased(&[&b]).await;
        assert!(revoked(local(&b, &p.access_token).unwrap()));
        assert!(matches!(local(&b, &live.access_token), Some(Ok(()))));
    }
}

/// The feed's subscriber connections killed (`CLIENT KILL TYPE pubsub`):
/// the instances give their leases up, check the store per request (never
/// accepting an ended session), and hold their leases again once re-synced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_feed_falls_back_then_recovers() {
    use fred::prelude::{ClientLike, Value};
    let server = RedisServer::shared();
    let (url, prefix) = (server.url(), "lease-feed:");
    let a = instance(&url, prefix).await;
    let b = instance(&url, prefix).await;
    let admin = store(&url, prefix).await;
    wait_leased(&[&a, &b]).await;
    let client = ClientMeta::default();
    let (mut fallbacks, mut locals) = (0, 0);
    for round in 0..10 {
        let user = format!("feed-{round}");
        let p = a.login(user.clone(), &client).await.unwrap();
        let id = a.tokens().verify_refresh(&p.refresh_token).unwrap();
        let _: Value = reissue_core::store::dangerous::pool(&admin)
            .next()
            .custom(fred::cmd!("CLIENT"), vec!["KILL", "TYPE", "pubsub"])
            .await
            .unwrap();
        a.logout(&user, &id.sid).await.unwrap();
        match local(&b, &p.access_token) {
            Some(decided) => {
                locals += 1;
                assert!(revoked(decided), "round {round}");
            }
            None => {
                fallbacks += 1;
                assert!(
                    revoked(admitted(&b, &p.access_token).await.map(drop)),
                    "round {round}"
                );
            }
        }
        wait_leased(&[&a, &b]).await;
        assert!(revoked(local(&b, &p.access_token).unwrap()));
    }
    println!("after the cut: {fallbacks} answered from the store, {locals} from local state");
}

/// The memory store is one process: strict instances on it hold their lease
/// for good, and a logout on one is refused by the other from its own state.
#[tokio::test]
async fn on_the_memory_store_the_lease_holds_for_good() {
    let store = Arc::new(reissue_core::store::MemoryStore::new());
    let a = Reissue::builder(strict(), hs256_keys(), store.clone(), AnyUser)
        .build()
        .unwrap();
    let b = Reissue::builder(strict(), hs256_keys(), store, AnyUser)
        .build()
        .unwrap();
    for r in [&a, &b] {
        assert!(r.verifier().revocations().unwrap().holds_lease());
    }
    let p = a.login("mem".into(), &ClientMeta::default()).await.unwrap();
    assert!(matches!(local(&b, &p.access_token), Some(Ok(()))));
    let id = a.tokens().verify_refresh(&p.refresh_token).unwrap();
    a.logout("mem", &id.sid).await.unwrap();
    assert!(revoked(local(&b, &p.access_token).unwrap()));
}

/// One operation of a history.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A protected request with session `s`'s access token on instance `i`.
    Check(usize, usize),
    Logout(usize, usize),
    LogoutAll(usize),
    /// Session `s`'s first refresh token used twice on instance `i`.
    Reuse(usize, usize),
    /// Every subscriber connection killed (the feeds resync).
    KillFeeds,
    /// Every client connection killed (feeds, renewals, requests).
    KillAll,
}

fn random_step() -> Step {
    let (i, s) = (rand::random_range(0..3), rand::random_range(0..3));
    match rand::random_range(0..12) {
        0..=5 => Step::Check(i, s),
        6 | 7 => Step::Logout(i, s),
        8 => Step::LogoutAll(i),
        9 => Step::Reuse(i, s),
        10 => Step::KillFeeds,
        _ => Step::KillAll,
    }
}

/// The concurrent history, with leases: random rounds of one to four
/// operations at once over three strict instances (checks, the ways a
/// session ends, connections killed under them). Every operation takes a
/// ticket when it starts and one when it returns; no check that started
/// after an ending call returned success accepts that call's session,
/// whatever ran beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_history_accepts_a_session_after_its_ending_returned() {
    use fred::prelude::{ClientLike, Value};
    use std::sync::atomic::AtomicU64;
    // A server of its own: it kills every connection to it.
    let server = RedisServer::start();
    let (url, prefix) = (server.url(), "lease-history:");
    let instances = Arc::new([
        instance(&url, prefix).await,
        instance(&url, prefix).await,
        instance(&url, prefix).await,
    ]);
    let admin = store(&url, prefix).await;
    let tickets = Arc::new(AtomicU64::new(0));
    let client = ClientMeta::default();
    let (mut accepted, mut endings) = (0, 0);
    for case in 0..40 {
        let r: Vec<&Reissue<AnyUser>> = instances.iter().collect();
        wait_leased(&r).await;
        let user = format!("history-{case}");
        let mut sessions = Vec::new();
        for _ in 0..3 {
            let p = instances[0].login(user.clone(), &client).await.unwrap();
            let id = instances[0]
                .tokens()
                .verify_refresh(&p.refresh_token)
                .unwrap();
            sessions.push((id.sid, p.access_token, p.refresh_token));
        }
        let sessions = Arc::new(sessions);
        // (session, ticket when it returned) of each ending that succeeded;
        // (session, ticket when it started) of each accepted check.
        let mut ended: Vec<(usize, u64)> = Vec::new();
        let mut accepts: Vec<(usize, u64, Step)> = Vec::new();
        for _ in 0..6 {
            let steps: Vec<Step> = (0..rand::random_range(1..=4))
                .map(|_| random_step())
                .collect();
            let runs = steps.iter().map(|&step| {
                let (instances, sessions, tickets) =
                    (instances.clone(), sessions.clone(), tickets.clone());
                let (user, admin, client) = (user.clone(), admin.clone(), client.clone());
                async move {
                    let began = tickets.fetch_add(1, Ordering::SeqCst);
                    let outcome: Result<Vec<usize>, Error> = match step {
                        Step::Check(i, s) => admitted(&instances[i], &sessions[s].1)
                            .await
                            .map(|_| vec![s]),
                        Step::Logout(i, s) => instances[i]
                            .logout(&user, &sessions[s].0)
                            .await
                            .map(|()| vec![s]),
                        Step::LogoutAll(i) => {
                            instances[i].logout_all(&user).await.map(|_| vec![0, 1, 2])
                        }
                        Step::Reuse(i, s) => {
                            let r = &instances[i];
                            match r.reissue(&sessions[s].2, &client).await {
                                Ok(_) => match r.reissue(&sessions[s].2, &client).await {
                                    Err(Error::InvalidToken(TokenRejection::ReuseDetected)) => {
                                        Ok(vec![s])
                                    }
                                    Err(e) => Err(e),
                                    Ok(_) => panic!("a spent refresh token was accepted"),
                                },
                                Err(e) => Err(e),
                            }
                        }
                        Step::KillFeeds | Step::KillAll => {
                            let kind = if matches!(step, Step::KillFeeds) {
                                "pubsub"
                            } else {
                                "normal"
                            };
                            let _: Result<Value, _> = reissue_core::store::dangerous::pool(&admin)
                                .next()
                                .custom(fred::cmd!("CLIENT"), vec!["KILL", "TYPE", kind])
                                .await;
                            Ok(Vec::new())
                        }
                    };
                    let returned = tickets.fetch_add(1, Ordering::SeqCst);
                    (step, began, returned, outcome)
                }
            });
            for (step, began, returned, outcome) in futures_util::future::join_all(runs).await {
                match (step, outcome) {
                    (Step::Check(_, s), Ok(_)) => accepts.push((s, began, step)),
                    (Step::Check(..), Err(_)) => {}
                    (Step::KillFeeds | Step::KillAll, _) => {}
                    (_, Ok(gone)) => ended.extend(gone.into_iter().map(|s| (s, returned))),
                    (_, Err(_)) => {}
                }
            }
        }
        accepted += accepts.len();
        for &(s, began, step) in &accepts {
            if let Some(&(_, returned)) = ended.iter().find(|(e, r)| *e == s && *r < began) {
                panic!(
                    "case {case}: {step:?} started at ticket {began} and accepted session {s}, \
                     which an ending that returned at ticket {returned} had ended"
                );
            }
        }
        endings += ended.len();
    }
    println!(
        "{accepted} accepted checks, none after a returned ending of its session ({endings} endings)"
    );
}
