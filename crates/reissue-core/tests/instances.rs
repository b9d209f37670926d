//! Several `Reissue` instances on one real Redis, as behind a proxy, tried
//! the way attackers and operators try them: parallel guesses through two
//! instances, skewed clocks, instant revocation on three instances with the
//! feed cut and the store down, an evicting Redis, a lost session index, a
//! hung (SIGSTOPped) Redis, and a rotation that the Redis client resends.
//!
//! Its own binary: the fault tests spawn and stop `redis-server`s of their own.

mod support;

use reissue_core::store::dangerous;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fred::prelude::{ClientLike, Value};
use reissue_core::store::{ClientMeta, Eviction, RedisStore};
use reissue_core::{
    Access, Admission, Config, Error, HttpRequest, Identity, Reissue, RevocationMode,
    TokenRejection, UserClaims,
};
use support::{AnyUser, RedisServer, hs256_keys, now_ms};

/// A request carrying a bearer token, from a socket peer (or none).
struct Request {
    authorization: Vec<u8>,
    peer: Option<IpAddr>,
}

impl Request {
    fn bearer(token: &str) -> Self {
        Self {
            authorization: format!("Bearer {token}").into_bytes(),
            peer: Some([203, 0, 113, 7].into()),
        }
    }
}

impl HttpRequest for Request {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        (name == "authorization")
            .then_some(self.authorization.as_slice())
            .into_iter()
    }
    fn peer_addr(&self) -> Option<IpAddr> {
        self.peer
    }
}

async fn store(url: &str, prefix: &str) -> Arc<RedisStore> {
    Arc::new(
        RedisStore::builder(url)
            .key_prefix(prefix)
            .command_timeout(Duration::from_millis(600))
            .connect()
            .await
            .expect("connect to the test redis"),
    )
}

fn instance(store: Arc<RedisStore>, config: Config) -> Reissue<AnyUser> {
    Reissue::builder(config, hs256_keys(), store, AnyUser)
        .build()
        .unwrap()
}

fn config() -> Config {
    Config::new("instances", "instances")
}

async fn admitted(r: &Reissue<AnyUser>, access: &str) -> Result<Arc<Identity<UserClaims>>, Error> {
    r.verifier()
        .gate(Access::required())
        .decide(&Request::bearer(access))
        .await
        .map(|id| id.expect("a token was presented"))
}

async fn wait_until_refused(r: &Reissue<AnyUser>, access: &str, what: &str) -> Duration {
    let started = Instant::now();
    loop {
        match admitted(r, access).await {
            Err(Error::InvalidToken(TokenRejection::SessionRevoked)) => return started.elapsed(),
            Ok(_) => {}
            Err(e) => panic!("{what}: {e:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{what}: still accepted after 3 s"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

async fn wait_synced(instances: &[&Reissue<AnyUser>]) {
    let started = Instant::now();
    while !instances
        .iter()
        .all(|r| r.verifier().revocations().unwrap().is_synced())
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "feeds not in sync"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

// ---- instant revocation ----------------------------------------------------

/// Every way a session ends reaches the other two instances, which refuse its
/// access tokens; live sessions are never refused. Prints the propagation
/// times (the benchmark measures them properly).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_a_session_ends_reaches_every_instance() {
    let server = RedisServer::shared();
    let mut instances = Vec::new();
    for _ in 0..3 {
        let s = store(&server.url(), "three:").await;
        instances.push(instance(
            s,
            config()
                .reuse_grace(Duration::ZERO)
                .max_sessions_per_user(2),
        ));
    }
    let [a, b, c] = [&instances[0], &instances[1], &instances[2]];
    wait_synced(&[a, b, c]).await;
    let client = ClientMeta::new(Some([203, 0, 113, 7].into()), None, None);
    let bystander = a.login("bystander".into(), &client).await.unwrap();
    let mut took = Vec::new();
    for round in 0..10 {
        // logout, revoke one session, logout-all, forced logout, reuse, eviction
        let user = format!("u{round}");
        let p = a.login(user.clone(), &client).await.unwrap();
        let q = a.login(user.clone(), &client).await.unwrap();
        let id = a.tokens().verify_refresh(&p.refresh_token).unwrap();
        let qid = a.tokens().verify_refresh(&q.refresh_token).unwrap();
        for r in [b, c] {
            admitted(r, &p.access_token).await.unwrap();
        }
        let ended: Vec<String> = match round % 6 {
            0 => {
                a.logout(&user, &id.sid).await.unwrap();
                vec![p.access_token.clone()]
            }
            1 => {
                assert!(a.revoke_session(&user, &id.sid).await.unwrap());
                vec![p.access_token.clone()]
            }
            2 => {
                assert_eq!(a.logout_all(&user).await.unwrap(), 2);
                vec![p.access_token.clone(), q.access_token.clone()]
            }
            3 => {
                a.force_logout(&user, "stolen").await.unwrap();
                vec![p.access_token.clone(), q.access_token.clone()]
            }
            4 => {
                a.reissue(&p.refresh_token, &client).await.unwrap();
                let err = a.reissue(&p.refresh_token, &client).await.unwrap_err();
                assert!(matches!(
                    err,
                    Error::InvalidToken(TokenRejection::ReuseDetected)
                ));
                vec![p.access_token.clone()]
            }
            _ => {
                // A third login over the limit of two evicts the oldest.
                a.login(user.clone(), &client).await.unwrap();
                vec![p.access_token.clone()]
            }
        };
        let started = Instant::now();
        admitted(a, &ended[0])
            .await
            .expect_err("the revoking instance refuses at once");
        for r in [b, c] {
            for access in &ended {
                wait_until_refused(r, access, &format!("round {round}")).await;
            }
            took.push(started.elapsed());
        }
        if round % 6 != 2 && round % 6 != 3 {
            for r in [a, b, c] {
                assert_eq!(
                    admitted(r, &q.access_token).await.unwrap().session_id,
                    qid.sid,
                    "round {round}: the user's other session is untouched"
                );
            }
        }
        for r in [a, b, c] {
            admitted(r, &bystander.access_token).await.unwrap();
        }
    }
    took.sort();
    println!(
        "propagation to the other instances: p50 {:?}, p99 {:?}, max {:?} ({} samples)",
        percentile(&took, 0.5),
        percentile(&took, 0.99),
        took.last().unwrap(),
        took.len()
    );
}

/// The feed cut (`CLIENT KILL TYPE pubsub`) and a revocation right after
/// it: the instance does not miss it, whether it arrives while the feed is
/// down (the per-request store check) or in the catch-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_feed_misses_no_revocation() {
    let server = RedisServer::shared();
    let a = instance(store(&server.url(), "cut:").await, config());
    let b = instance(store(&server.url(), "cut:").await, config());
    let admin = store(&server.url(), "cut:").await;
    wait_synced(&[&a, &b]).await;
    let client = ClientMeta::default();
    let live = a.login("live".into(), &client).await.unwrap();
    for round in 0..20 {
        let user = format!("cut{round}");
        let p = a.login(user.clone(), &client).await.unwrap();
        admitted(&b, &p.access_token).await.unwrap();
        let _: Value = dangerous::pool(&admin)
            .next()
            .custom(fred::cmd!("CLIENT"), vec!["KILL", "TYPE", "pubsub"])
            .await
            .unwrap();
        let id = a.tokens().verify_refresh(&p.refresh_token).unwrap();
        a.logout(&user, &id.sid).await.unwrap();
        wait_until_refused(&b, &p.access_token, &format!("round {round}")).await;
        admitted(&b, &live.access_token)
            .await
            .expect("a live session is never refused");
    }
    wait_synced(&[&a, &b]).await;
    // Healthy, the feed stays in sync: its heartbeats (every 500 ms) pass.
    let feed = b.verifier().revocations().unwrap();
    let until = Instant::now() + Duration::from_millis(1600);
    while Instant::now() < until {
        assert!(
            feed.is_synced(),
            "the feed fell out of sync with nothing wrong"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The store down and the feed with it: what an instance knows has ended
/// stays refused; the rest is accepted (default) or 503 (fail closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_keeps_known_revocations_and_follows_the_setting() {
    let mut server = RedisServer::start();
    let open = instance(store(&server.url(), "o:").await, config());
    let closed = instance(
        store(&server.url(), "o:").await,
        config().fail_closed_while_unsure(true),
    );
    wait_synced(&[&open, &closed]).await;
    let client = ClientMeta::default();
    let ended = open.login("ended".into(), &client).await.unwrap();
    let live = open.login("live".into(), &client).await.unwrap();
    let id = open.tokens().verify_refresh(&ended.refresh_token).unwrap();
    open.logout("ended", &id.sid).await.unwrap();
    wait_until_refused(&closed, &ended.access_token, "before the outage").await;

    server.kill();
    let started = Instant::now();
    while open.verifier().revocations().unwrap().is_synced()
        || closed.verifier().revocations().unwrap().is_synced()
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the outage went unnoticed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for r in [&open, &closed] {
        let err = admitted(r, &ended.access_token).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidToken(TokenRejection::SessionRevoked)),
            "a known revocation holds through the outage: {err:?}"
        );
    }
    // Accepting: the first request waits for the store's timeout, the next
    // ones apply the rule at once for a second.
    admitted(&open, &live.access_token)
        .await
        .expect("default: accept what is not known to have ended");
    let quick = Instant::now();
    admitted(&open, &live.access_token).await.unwrap();
    println!(
        "second request during the outage answered in {:?}",
        quick.elapsed()
    );
    let err = admitted(&closed, &live.access_token).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "fail closed: {err:?}");
    assert_eq!(err.status(), 503);
    match closed
        .verifier()
        .gate(Access::required())
        .admit(&Request::bearer(&live.access_token))
    {
        Admission::Ready(Err(e)) => assert_eq!(e.status(), 503),
        other => panic!("within the back-off the answer needs no wait: {other:?}"),
    }

    server.restart();
    wait_synced(&[&open, &closed]).await;
    // The restarted Redis is empty: every session is gone, and instances in
    // sync trust their feed again (the restart itself ended sessions that no
    // feed announces: the store check of the catch-up window caught them).
    admitted(&open, &ended.access_token).await.unwrap_err();
}

// ---- hardening: throttling, clocks, eviction -------------------------------

/// 60 wrong-password logins at once through two instances: at most the limit
/// reach the password check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_through_two_instances_are_capped() {
    let server = RedisServer::shared();
    let checked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut instances = Vec::new();
    for _ in 0..2 {
        let counter = checked.clone();
        let auth = Counting(counter);
        instances.push(
            Reissue::builder(
                config().login_lockout(5, Duration::from_secs(60)),
                hs256_keys(),
                store(&server.url(), "guess:").await,
                auth,
            )
            .build()
            .unwrap(),
        );
    }
    let client = ClientMeta::new(Some([198, 51, 100, 9].into()), None, None);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..60 {
        let r = instances[i % 2].clone();
        let client = client.clone();
        tasks.spawn(async move { r.login("victim".into(), &client).await.map(drop) });
    }
    let (mut refused, mut throttled) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Err(Error::InvalidCredentials) => refused += 1,
            Err(Error::TooManyAttempts { retry_after }) => {
                assert!((1..=60).contains(&retry_after));
                throttled += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(checked.load(Ordering::SeqCst), 5, "password checks");
    assert_eq!((refused, throttled), (5, 55));
}

/// Refuses every password, counting the checks.
struct Counting(Arc<std::sync::atomic::AtomicUsize>);

impl reissue_core::Authenticator for Counting {
    type Credentials = String;
    type Claims = UserClaims;
    fn account_key(&self, user: &String) -> reissue_core::Result<String> {
        Ok(user.clone())
    }
    async fn authenticate(
        &self,
        _: String,
    ) -> reissue_core::Result<reissue_core::Authenticated<UserClaims>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err(Error::InvalidCredentials)
    }
}

/// Instances 15 s slow and 60 s fast share a store: the store's clock rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_instance_clocks_do_not_change_the_rules() {
    let server = RedisServer::shared();
    let skewed = |offset_ms: i64, grace: Duration| async move {
        Reissue::builder(
            config().reuse_grace(grace),
            hs256_keys(),
            store(&server.url(), "skew:").await,
            AnyUser,
        )
        .clock(move || (now_ms() as i64 + offset_ms) as u64)
        .build()
        .unwrap()
    };
    let grace = Duration::from_millis(800);
    let slow = skewed(-15_000, grace).await;
    let fast = skewed(60_000, grace).await;
    let client = ClientMeta::default();

    // A retry on another instance within the grace window is a replay, not theft.
    let p = slow.login("alice".into(), &client).await.unwrap();
    let first = slow.reissue(&p.refresh_token, &client).await.unwrap();
    let again = fast.reissue(&p.refresh_token, &client).await.unwrap();
    assert_eq!(
        again.refresh_token, first.refresh_token,
        "the same successor"
    );
    // Each says how long the refresh token lives by the store's clock, which
    // ends it, not by its own.
    let lifetime = 14 * 24 * 3600; // the default refresh_ttl
    for (what, pair) in [("login", &p), ("reissue", &first), ("replay", &again)] {
        let claims = slow.tokens().verify_refresh(&pair.refresh_token).unwrap();
        assert_eq!(
            (pair.refresh_expires_in, claims.exp - claims.iat),
            (lifetime, lifetime),
            "{what} on a skewed instance"
        );
    }

    // A fast instance does not stretch the grace window.
    let q = fast.login("bob".into(), &client).await.unwrap();
    fast.reissue(&q.refresh_token, &client).await.unwrap();
    tokio::time::sleep(grace + Duration::from_millis(200)).await;
    let err = slow.reissue(&q.refresh_token, &client).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidToken(TokenRejection::ReuseDetected)),
        "{err:?}"
    );

    // A slow instance's login cannot make the user's key (the sessions and
    // their index) expire before the session.
    let r = slow.login("carol".into(), &client).await.unwrap();
    let id = slow.tokens().verify_refresh(&r.refresh_token).unwrap();
    let raw = store(&server.url(), "skew:").await;
    let conn = dangerous::pool(&raw).next();
    let key_expiry_ms: i64 = conn
        .custom(
            fred::cmd!("PEXPIRETIME"),
            vec![dangerous::user_key(&raw, "carol")],
        )
        .await
        .unwrap();
    assert!(
        key_expiry_ms >= (id.exp * 1000) as i64,
        "key expires at {key_expiry_ms} ms, the session at {} s",
        id.exp
    );
    assert_eq!(
        fast.logout_all("carol").await.unwrap(),
        1,
        "logout-all finds it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicting_redis_is_reported() {
    let lru = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let found = store(&lru.url(), "e:").await;
    assert_eq!(
        found.eviction(),
        &Eviction::May {
            policy: "allkeys-lru".into()
        }
    );
    let refused = RedisStore::builder(lru.url())
        .require_noeviction(true)
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::Config(why) if why.contains("allkeys-lru") && why.contains("noeviction")),
        "{refused:?}"
    );
    // Managed Redis often refuses CONFIG: that is said, not mistaken for safe.
    let managed = RedisServer::start_with(&["--rename-command", "CONFIG", ""]);
    assert_eq!(
        store(&managed.url(), "e:").await.eviction(),
        &Eviction::Unknown
    );
    let shared = RedisServer::shared();
    assert_eq!(
        store(&shared.url(), "e:").await.eviction(),
        &Eviction::Never
    );
}

// ---- strict mode under a crowd ----------------------------------------------

/// Strict mode sends the checks of concurrent requests together. Under eight
/// tasks checking forty sessions as fast as they can, while another instance
/// logs half of them out one by one: every check that began after a logout
/// returned refuses that session, and a session never logged out is never
/// refused. A check that joined a store call already on its way would break
/// the first rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_checks_in_a_crowd_see_every_logout_before_them() {
    let server = RedisServer::shared();
    let s = store(&server.url(), "crowd:").await;
    let a = instance(s.clone(), config().revocation(RevocationMode::Strict));
    let b = instance(s.clone(), config().revocation(RevocationMode::Strict));
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
    let checkers: Vec<_> = (0..8)
        .map(|t| {
            let (a, sessions, ended, done) =
                (a.clone(), sessions.clone(), ended.clone(), done.clone());
            tokio::spawn(async move {
                let (mut checked, mut refused_after) = (0u32, 0u32);
                let mut j = t;
                while !done.load(Ordering::SeqCst) {
                    j = (j + 7) % sessions.len();
                    let (_, _, access) = &sessions[j];
                    let was_ended = ended[j].load(Ordering::SeqCst);
                    let result = admitted(&a, access).await;
                    checked += 1;
                    match result {
                        Err(Error::InvalidToken(TokenRejection::SessionRevoked)) => {
                            assert!(j % 2 == 0, "session {j} was never logged out, yet refused");
                            refused_after += u32::from(was_ended);
                        }
                        Ok(_) => {
                            assert!(!was_ended, "session {j} accepted after its logout returned")
                        }
                        Err(e) => panic!("session {j}: {e:?}"),
                    }
                    // Under their leases the checks never wait for the
                    // store: let the logouts run.
                    tokio::task::yield_now().await;
                }
                (checked, refused_after)
            })
        })
        .collect();
    for j in (0..40).step_by(2) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (user, sid, _) = &sessions[j];
        b.logout(user, sid).await.unwrap();
        ended[j].store(true, Ordering::SeqCst);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
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

// ---- a hung Redis, and a resent rotation -----------------------------------

/// SIGSTOP: requests that need the store answer 503 within the command
/// timeout, and the rotation Redis runs when it resumes does nothing, so the
/// client's refresh token (it was told the reissue failed) still works, even
/// with no grace window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_answers_503_and_runs_nothing_late() {
    let server = RedisServer::start();
    let r = instance(
        store(&server.url(), "hung:").await,
        config().reuse_grace(Duration::ZERO),
    );
    let strict = instance(
        store(&server.url(), "hung:").await,
        config().revocation(RevocationMode::Strict),
    );
    let client = ClientMeta::default();
    let p = r.login("erin".into(), &client).await.unwrap();
    r.login("frank".into(), &client).await.unwrap();
    let checked = strict.login("hana".into(), &client).await.unwrap();
    // A session ended on another instance, which the strict one then sees
    // ended in the store.
    let ended = r.login("ida".into(), &client).await.unwrap();
    let ended_sid = r.tokens().verify_refresh(&ended.refresh_token).unwrap().sid;
    r.logout("ida", &ended_sid).await.unwrap();
    let seen = admitted(&strict, &ended.access_token).await.unwrap_err();
    assert!(
        matches!(seen, Error::InvalidToken(TokenRejection::SessionRevoked)),
        "{seen:?}"
    );
    server.pause();
    // What strict mode has seen end stays refused without the store: 401,
    // not 503; a session it has not seen end still answers 503 (below).
    let again = admitted(&strict, &ended.access_token).await.unwrap_err();
    assert!(
        matches!(again, Error::InvalidToken(TokenRejection::SessionRevoked)),
        "a session seen ended is refused from memory: {again:?}"
    );
    let started = Instant::now();
    // Strict checks in parallel share store calls: a hung call must fail
    // each check it carries, and the ones queued behind it, in time.
    let checks =
        futures_util::future::join_all((0..20).map(|_| admitted(&strict, &checked.access_token)));
    let (reissue, login, logout, checks) = tokio::join!(
        r.reissue(&p.refresh_token, &client),
        r.login("gina".into(), &client),
        r.logout_all("frank"),
        checks,
    );
    let took = started.elapsed();
    let checks = checks
        .into_iter()
        .map(|c| ("strict check", c.map(drop).unwrap_err()));
    for (what, err) in [
        ("reissue", reissue.map(drop).unwrap_err()),
        ("login", login.map(drop).unwrap_err()),
        ("logout-all", logout.map(drop).unwrap_err()),
    ]
    .into_iter()
    .chain(checks)
    {
        assert!(matches!(err, Error::Unavailable(_)), "{what}: {err:?}");
        assert_eq!(err.retry_after(), Some(2), "{what}: Retry-After");
    }
    assert!(took < Duration::from_secs(5), "answered in {took:?}");
    server.resume();
    tokio::time::sleep(Duration::from_millis(300)).await;
    admitted(&strict, &checked.access_token)
        .await
        .expect("strict checks work again once Redis is back");
    // The late ROTATE found itself past its deadline: generation 1 is current.
    let next = r.reissue(&p.refresh_token, &client).await.unwrap();
    r.reissue(&next.refresh_token, &client).await.unwrap();
    assert_eq!(
        r.sessions("gina").await.unwrap().len(),
        0,
        "the late login created nothing"
    );
}

/// A proxy between fred and Redis that, once armed, lets the next command
/// through and then cuts the connection instead of delivering its reply: the
/// client resends, as `max_command_attempts = 2` allows.
struct LossyProxy {
    port: u16,
    armed: Arc<AtomicBool>,
    /// Armed instead: the next command is held this long, then delivered (a
    /// slow network), and the connection kept.
    delay: Arc<std::sync::Mutex<Option<Duration>>>,
}

impl LossyProxy {
    async fn start(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let delay = Arc::new(std::sync::Mutex::new(None::<Duration>));
        let flag = armed.clone();
        let hold = delay.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let flag = flag.clone();
                let hold = hold.clone();
                tokio::spawn(async move {
                    let server = tokio::net::TcpStream::connect(("127.0.0.1", upstream))
                        .await
                        .unwrap();
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let cut = Arc::new(AtomicBool::new(false));
                    let cut_up = cut.clone();
                    let up = tokio::spawn(async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = cr.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            let chunk = &buf[..n];
                            let is_script =
                                chunk.windows(7).any(|w| w.eq_ignore_ascii_case(b"EVALSHA"));
                            let held = if is_script {
                                hold.lock().unwrap().take()
                            } else {
                                None
                            };
                            if let Some(d) = held {
                                tokio::time::sleep(d).await;
                            }
                            if flag.load(Ordering::SeqCst)
                                && chunk.windows(7).any(|w| w.eq_ignore_ascii_case(b"EVALSHA"))
                            {
                                flag.store(false, Ordering::SeqCst);
                                cut_up.store(true, Ordering::SeqCst);
                            }
                            if sw.write_all(chunk).await.is_err() {
                                break;
                            }
                        }
                    });
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = sr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        if cut.load(Ordering::SeqCst) {
                            // The reply is lost with the connection.
                            break;
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    up.abort();
                });
            }
        });
        Self { port, armed, delay }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_resent_by_the_client_is_not_reuse() {
    let server = RedisServer::shared();
    let proxy = LossyProxy::start(server.port()).await;
    let s = Arc::new(
        RedisStore::builder(format!("redis://127.0.0.1:{}", proxy.port))
            .key_prefix("resend:")
            .pool_size(1)
            .connect()
            .await
            .unwrap(),
    );
    let r = instance(
        s,
        config()
            .reuse_grace(Duration::ZERO)
            .revocation(RevocationMode::Stateless),
    );
    let client = ClientMeta::default();
    // Warm the script cache, so that the armed command is the rotation itself.
    let warm = r.login("warm".into(), &client).await.unwrap();
    r.reissue(&warm.refresh_token, &client).await.unwrap();
    let p = r.login("hana".into(), &client).await.unwrap();
    proxy.armed.store(true, Ordering::SeqCst);
    let next = r
        .reissue(&p.refresh_token, &client)
        .await
        .expect("the resent rotation answers as the first one did");
    assert!(!proxy.armed.load(Ordering::SeqCst), "the proxy cut a reply");
    let rt = r.tokens().verify_refresh(&next.refresh_token).unwrap();
    assert_eq!(rt.generation, 2);
    r.reissue(&next.refresh_token, &client)
        .await
        .expect("the session was not revoked as reuse");
}

/// A slow network rather than a stopped server: the rotation reaches Redis
/// after the caller was told it failed (503). It must do nothing then, or
/// the client's retry with its unspent token would be taken for theft.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_arriving_after_its_timeout_does_nothing() {
    let server = RedisServer::shared();
    let proxy = LossyProxy::start(server.port()).await;
    let s = Arc::new(
        RedisStore::builder(format!("redis://127.0.0.1:{}", proxy.port))
            .key_prefix("late:")
            .pool_size(1)
            .command_timeout(Duration::from_millis(400))
            .connect()
            .await
            .unwrap(),
    );
    let r = instance(
        s,
        config()
            .reuse_grace(Duration::ZERO)
            .revocation(RevocationMode::Stateless),
    );
    let client = ClientMeta::default();
    let warm = r.login("warm".into(), &client).await.unwrap();
    r.reissue(&warm.refresh_token, &client).await.unwrap();
    let p = r.login("iris".into(), &client).await.unwrap();
    *proxy.delay.lock().unwrap() = Some(Duration::from_millis(900));
    let err = r.reissue(&p.refresh_token, &client).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    // Let the held command reach Redis, and run there.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let next = r
        .reissue(&p.refresh_token, &client)
        .await
        .expect("the token the client kept is still current");
    assert_eq!(
        r.tokens()
            .verify_refresh(&next.refresh_token)
            .unwrap()
            .generation,
        2
    );
}
