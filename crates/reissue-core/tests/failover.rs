//! Failover on real deployments, as an operator would cause one: a primary
//! SIGKILLed under rotating traffic from two application instances, on a
//! Redis Cluster (3+3) and behind Sentinel; then the same with its replica
//! cut off first, so that the promoted replica lacks the last writes.
//!
//! Each test starts a deployment of its own (a failover changes it for good)
//! and they run one at a time, so that the figures they print are not
//! disturbed by each other. The figures: the 503 window for the users whose
//! primary died and for the others, the p99 latency during it, errors other
//! than 503, sessions revoked or lost, forks. docs/OPERATIONS.md quotes them.

mod support;

use reissue_core::store::dangerous;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reissue_core::store::{ClientMeta, RedisStore, RevocationFeed};
use reissue_core::{Config, Error, Reissue, Revocations, SessionId, TokenRejection};
use support::{AnyUser, deploy, hs256_keys};

/// One test at a time: each measures, and the machine has two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const USERS: usize = 30;
/// Each user's pause between two reissues.
const PAUSE: Duration = Duration::from_millis(20);

async fn store(url: &str, prefix: &str) -> Arc<RedisStore> {
    Arc::new(
        RedisStore::builder(url)
            .key_prefix(prefix)
            .command_timeout(Duration::from_millis(1500))
            .connect()
            .await
            .expect("connect"),
    )
}

fn instance(store: Arc<RedisStore>) -> Reissue<AnyUser> {
    let config = Config::new("failover", "failover").reuse_grace(Duration::from_secs(10));
    Reissue::builder(config, hs256_keys(), store, AnyUser)
        .build()
        .expect("an instance")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Unavailable,
    /// Revoked as theft.
    Revoked,
    /// The session was not found: lost.
    Lost,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    user: usize,
    /// When the request started, ms after the kill (negative before).
    at_ms: i64,
    latency_ms: f64,
    outcome: Outcome,
}

struct User {
    id: String,
    sid: SessionId,
    token: String,
    generation: u64,
    /// Generation → `iat` of the successor handed out: two different ones
    /// for one generation would be a fork.
    seen: HashMap<u64, u64>,
    forks: usize,
}

/// Two instances, each with its own store connections and feed.
struct Fleet {
    a: Reissue<AnyUser>,
    b: Reissue<AnyUser>,
    stores: [Arc<RedisStore>; 2],
}

impl Fleet {
    async fn new(url: &str, prefix: &str) -> Self {
        let (sa, sb) = (store(url, prefix).await, store(url, prefix).await);
        Self {
            a: instance(sa.clone()),
            b: instance(sb.clone()),
            stores: [sa, sb],
        }
    }

    /// Revocations the two instances' stores could not get a replica to confirm.
    fn unconfirmed(&self) -> u64 {
        self.stores
            .iter()
            .map(|s| s.unconfirmed_revocations())
            .sum()
    }

    /// On a primary without replicas (a failover promoted its only one):
    /// a logout and a logout-all answer at once, not 503, take effect, and
    /// are counted as unconfirmed.
    async fn logouts_without_replica(&self, kind: &str, users: &[&User]) {
        let [one, all] = users else {
            panic!("two users")
        };
        let before = self.unconfirmed();
        self.a
            .logout(&one.id, &one.sid)
            .await
            .unwrap_or_else(|e| panic!("{kind}: a logout without a replica: {e:?}"));
        let n = self
            .b
            .logout_all(&all.id)
            .await
            .unwrap_or_else(|e| panic!("{kind}: a logout-all without a replica: {e:?}"));
        assert_eq!(n, 1, "{kind}: logout-all ended the session");
        for u in [one, all] {
            let r = self.a.reissue(&u.token, &ClientMeta::default()).await;
            assert!(
                matches!(r, Err(Error::InvalidToken(_))),
                "{kind}: the logout took effect: {r:?}"
            );
        }
        assert_eq!(
            self.unconfirmed() - before,
            2,
            "{kind}: both revocations are reported unconfirmed"
        );
    }

    fn pick(&self, n: usize) -> &Reissue<AnyUser> {
        if n.is_multiple_of(2) {
            &self.a
        } else {
            &self.b
        }
    }

    async fn login(&self, names: impl Iterator<Item = String>) -> Vec<User> {
        let mut users = Vec::new();
        for id in names {
            let pair = self
                .a
                .login(id.clone(), &ClientMeta::default())
                .await
                .expect("login");
            let claims = self.a.tokens().verify_refresh(&pair.refresh_token).unwrap();
            users.push(User {
                id,
                sid: claims.sid,
                token: pair.refresh_token,
                generation: claims.generation,
                seen: HashMap::new(),
                forks: 0,
            });
        }
        users
    }

    /// One reissue of `user`'s current token on instance `n % 2`.
    async fn rotate(&self, user: &mut User, n: usize) -> Outcome {
        match self
            .pick(n)
            .reissue(&user.token, &ClientMeta::default())
            .await
        {
            Ok(pair) => {
                let c = self.a.tokens().verify_refresh(&pair.refresh_token).unwrap();
                if c.generation != user.generation + 1 {
                    user.forks += 1;
                }
                if let Some(&iat) = user.seen.get(&c.generation)
                    && iat != c.iat
                {
                    user.forks += 1;
                }
                user.seen.insert(c.generation, c.iat);
                user.token = pair.refresh_token;
                user.generation = c.generation;
                Outcome::Ok
            }
            Err(e) => classify(&e),
        }
    }
}

fn classify(e: &Error) -> Outcome {
    match e {
        Error::Unavailable(_) => Outcome::Unavailable,
        Error::InvalidToken(TokenRejection::ReuseDetected) => Outcome::Revoked,
        Error::InvalidToken(TokenRejection::SessionRevoked) => Outcome::Lost,
        _ => Outcome::Other,
    }
}

/// Rotating traffic: every user reissues in a loop on alternating
/// instances until `stop`; returns the samples and the users.
async fn traffic(
    fleet: Arc<Fleet>,
    users: Vec<User>,
    kill_at: Arc<Mutex<Option<Instant>>>,
    stop: Arc<AtomicBool>,
) -> (Vec<Sample>, Vec<User>) {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut user) in users.into_iter().enumerate() {
        let (fleet, kill_at, stop) = (fleet.clone(), kill_at.clone(), stop.clone());
        tasks.spawn(async move {
            let mut samples = Vec::new();
            let mut n = i;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let outcome = fleet.rotate(&mut user, n).await;
                let at_ms = match *kill_at.lock().unwrap() {
                    Some(k) if t >= k => (t - k).as_millis() as i64,
                    Some(k) => -((k - t).as_millis() as i64),
                    None => -((Instant::now() - started).as_millis() as i64) - 100_000,
                };
                samples.push(Sample {
                    user: i,
                    at_ms,
                    latency_ms: t.elapsed().as_secs_f64() * 1000.0,
                    outcome,
                });
                n += 1;
                tokio::time::sleep(PAUSE).await;
            }
            (i, samples, user)
        });
    }
    let mut samples = Vec::new();
    let mut users: Vec<(usize, User)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (i, s, u) = done.unwrap();
        samples.extend(s);
        users.push((i, u));
    }
    users.sort_by_key(|(i, _)| *i);
    (samples, users.into_iter().map(|(_, u)| u).collect())
}

/// What one group of users saw around the kill.
#[derive(Debug)]
struct Figures {
    requests: usize,
    unavailable: usize,
    /// From the kill to the last 503, ms (0: none).
    window_ms: i64,
    p99_ms: f64,
    max_ms: f64,
    revoked: usize,
    lost: usize,
    other: usize,
}

fn figures(samples: &[Sample], in_group: impl Fn(usize) -> bool) -> Figures {
    let group: Vec<&Sample> = samples
        .iter()
        .filter(|s| in_group(s.user) && s.at_ms >= 0)
        .collect();
    let count = |o| group.iter().filter(|s| s.outcome == o).count();
    let window_ms = group
        .iter()
        .filter(|s| s.outcome == Outcome::Unavailable)
        .map(|s| s.at_ms + s.latency_ms as i64)
        .max()
        .unwrap_or(0);
    let mut during: Vec<f64> = group
        .iter()
        .filter(|s| s.at_ms <= window_ms.max(1000))
        .map(|s| s.latency_ms)
        .collect();
    during.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        during
            .get(((during.len() as f64 * p) as usize).min(during.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    Figures {
        requests: group.len(),
        unavailable: count(Outcome::Unavailable),
        window_ms,
        p99_ms: pct(0.99),
        max_ms: during.last().copied().unwrap_or(0.0),
        revoked: count(Outcome::Revoked),
        lost: count(Outcome::Lost),
        other: count(Outcome::Other),
    }
}

/// Waits until `cond` holds, retrying an async check.
async fn eventually<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !cond().await {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every user's latest refresh token works after the failover, on both
/// instances in turn: no session was revoked, lost or forked.
async fn all_recover(fleet: &Fleet, users: &mut [User]) {
    for (n, user) in users.iter_mut().enumerate() {
        let mut last = Outcome::Unavailable;
        let deadline = Instant::now() + Duration::from_secs(15);
        while last == Outcome::Unavailable && Instant::now() < deadline {
            last = fleet.rotate(user, n).await;
            if last == Outcome::Unavailable {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        assert_eq!(
            last,
            Outcome::Ok,
            "{} does not work after the failover",
            user.id
        );
        assert_eq!(user.forks, 0, "{} forked", user.id);
    }
}

fn print(kind: &str, group: &str, f: &Figures) {
    println!(
        "FAILOVER {kind} {group}: {} requests, {} x 503, 503 window {} ms after the kill, \
         p99 {:.0} ms, max {:.0} ms, revoked {}, lost {}, other errors {}",
        f.requests, f.unavailable, f.window_ms, f.p99_ms, f.max_ms, f.revoked, f.lost, f.other
    );
}

fn assert_clean(kind: &str, group: &str, f: &Figures) {
    assert_eq!(
        (f.revoked, f.lost, f.other),
        (0, 0, 0),
        "{kind} {group}: sessions revoked, lost, or errors other than 503: {f:?}"
    );
    assert!(
        f.window_ms < 15_000,
        "{kind} {group}: 503 for too long: {f:?}"
    );
    assert!(
        f.max_ms < 3_000.0,
        "{kind} {group}: a request hung past the timeout: {f:?}"
    );
}

/// A follower of `store`'s revocation feed, created now, in sync.
async fn follower(store: &RedisStore) -> Arc<Revocations> {
    let f = Arc::new(Revocations::new(Duration::from_secs(60)));
    store.follow_revocations(f.clone()).unwrap();
    eventually("the follower gets in sync", Duration::from_secs(10), || {
        let f = f.clone();
        async move { f.is_synced() }
    })
    .await;
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_primary_killed_under_traffic() {
    let _serial = SERIAL.lock().await;
    let mut cluster = deploy::Cluster::start();
    let url = cluster.url();
    let fleet = Arc::new(Fleet::new(&url, "kill:").await);
    let probe = store(&url, "kill:").await;
    let users = fleet.login((0..USERS).map(|i| format!("user-{i}"))).await;
    // The primary to kill: the one serving the first user.
    let victim = cluster.primary_of(&dangerous::revocation_log_key(&probe, &users[0].id));
    let on_victim: Vec<bool> = users
        .iter()
        .map(|u| cluster.primary_of(&dangerous::revocation_log_key(&probe, &u.id)) == victim)
        .collect();
    assert!(
        on_victim.iter().any(|v| !v),
        "some users live on other primaries"
    );
    let follower = follower(&probe).await;

    let kill_at = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let run = tokio::spawn(traffic(fleet.clone(), users, kill_at.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    *kill_at.lock().unwrap() = Some(Instant::now());
    cluster.node(victim).kill();
    tokio::time::sleep(Duration::from_secs(7)).await;
    stop.store(true, Ordering::Relaxed);
    let (samples, mut users) = run.await.unwrap();

    let hit = figures(&samples, |u| on_victim[u]);
    let others = figures(&samples, |u| !on_victim[u]);
    print("cluster", "users of the killed primary", &hit);
    print("cluster", "users of the other primaries", &others);
    assert_clean("cluster", "killed primary", &hit);
    assert_clean("cluster", "other primaries", &others);
    assert!(
        hit.unavailable > 0,
        "the kill did not reach anyone: {hit:?}"
    );
    assert_eq!(
        others.unavailable, 0,
        "the healthy primaries answered 503: {others:?}"
    );
    all_recover(&fleet, &mut users).await;
    // An instance without traffic of its own (the follower's store) finds
    // the promoted primary by itself and gets its feed in sync again.
    eventually(
        "the idle follower is in sync again",
        Duration::from_secs(10),
        || {
            let f = follower.clone();
            async move { f.is_synced() }
        },
    )
    .await;

    // Until the killed node comes back as a replica of the promoted one, that
    // shard has no replica: its logouts still answer at once.
    let mut on_promoted = users
        .iter()
        .zip(&on_victim)
        .filter(|(_, v)| **v)
        .map(|(u, _)| u);
    let pair: Vec<&User> = on_promoted.by_ref().skip(1).take(2).collect();
    fleet.logouts_without_replica("cluster", &pair).await;
    cluster.node(victim).restart();
    cluster.wait_healthy(Duration::from_secs(30));
    // Instant revocation works on the promoted primary: a logout there reaches
    // an instance that followed the old one.
    let user = users.iter().zip(&on_victim).find(|(_, v)| **v).unwrap().0;
    logout_eventually(&fleet.a, user).await;
    eventually(
        "the revocation reaches the follower",
        Duration::from_secs(10),
        || {
            let (f, sid) = (follower.clone(), user.sid.clone());
            async move { f.contains(&sid) }
        },
    )
    .await;
}

/// A logout, retried while it answers 503 (as a client does).
async fn logout_eventually(instance: &Reissue<AnyUser>, user: &User) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match instance.logout(&user.id, &user.sid).await {
            Ok(()) => return,
            Err(Error::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("logout of {}: {e:?}", user.id),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_primary_killed_under_traffic() {
    let _serial = SERIAL.lock().await;
    let mut set = deploy::Sentinel::start();
    let url = set.url();
    let fleet = Arc::new(Fleet::new(&url, "kill:").await);
    let probe = store(&url, "kill:").await;
    let users = fleet.login((0..USERS).map(|i| format!("user-{i}"))).await;
    let follower = follower(&probe).await;
    let kill_at = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let run = tokio::spawn(traffic(fleet.clone(), users, kill_at.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    *kill_at.lock().unwrap() = Some(Instant::now());
    set.primary.kill();
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::Relaxed);
    let (samples, mut users) = run.await.unwrap();
    let all = figures(&samples, |_| true);
    print("sentinel", "all users", &all);
    assert_clean("sentinel", "all users", &all);
    assert!(
        all.unavailable > 0,
        "the kill did not reach anyone: {all:?}"
    );
    all_recover(&fleet, &mut users).await;
    // The promoted primary has no replica until the old one returns: logouts
    // still answer at once.
    let pair: Vec<&User> = users[1..3].iter().collect();
    fleet.logouts_without_replica("sentinel", &pair).await;
    // The old primary comes back empty; the sentinels make it a replica.
    set.primary.restart();
    set.wait_healthy(Duration::from_secs(30));
    let user = &users[0];
    logout_eventually(&fleet.b, user).await;
    eventually(
        "the revocation reaches the follower",
        Duration::from_secs(10),
        || {
            let (f, sid) = (follower.clone(), user.sid.clone());
            async move { f.contains(&sid) }
        },
    )
    .await;
}

/// Cuts `replica` off its primary: it cannot authenticate when it reconnects,
/// so it keeps what it had and lags.
fn cut_off(primary: u16, replica: u16) {
    assert_eq!(
        deploy::cli(replica, &["CONFIG", "SET", "masterauth", "wrong"]),
        "OK"
    );
    deploy::cli(primary, &["CLIENT", "KILL", "TYPE", "replica"]);
    let lagging =
        || deploy::info(replica, "replication", "master_link_status").as_deref() == Some("down");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !lagging() {
        assert!(
            Instant::now() < deadline,
            "the replica did not lose its link"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the lag test checks, on either deployment: the replica is cut off;
/// the users rotate a few times (the replica never gets those rotations)
/// and some log out (no replica can confirm it: 503, nothing acknowledged);
/// the primary is killed and the lagging replica promoted. Then no session
/// is revoked (each client's token is ahead of the store: lost writes, not
/// theft), and no logout acknowledged before the cut comes back.
async fn lagging_replica(
    kind: &str,
    url: &str,
    (primary, replica): (u16, u16),
    on_primary: impl Fn(&str) -> bool,
    kill: impl FnOnce(),
    wait_promoted: impl Fn() -> bool,
    heal: impl FnOnce(),
) {
    let fleet = Fleet::new(url, "lag:").await;
    let probe = store(url, "lag:").await;
    let names: Vec<String> = (0..400)
        .map(|i| format!("lag-{i}"))
        .filter(|u| on_primary(&dangerous::revocation_log_key(&probe, u)))
        .take(12)
        .collect();
    assert_eq!(names.len(), 12, "users on the primary to kill");
    let mut users = fleet.login(names.into_iter()).await;
    // Before the cut: two rotations each, and two acknowledged logouts.
    for round in 0..2 {
        for (n, u) in users.iter_mut().enumerate() {
            assert_eq!(fleet.rotate(u, n + round).await, Outcome::Ok);
        }
    }
    let acknowledged: Vec<User> = users.drain(..2).collect();
    for u in &acknowledged {
        fleet
            .a
            .logout(&u.id, &u.sid)
            .await
            .expect("acknowledged logout");
    }
    let stale = users[0].token.clone();
    cut_off(primary, replica);
    // While cut off: three more rotations each (lost with the primary), and
    // logouts that no replica can confirm.
    for round in 0..3 {
        for (n, u) in users.iter_mut().enumerate() {
            assert_eq!(
                fleet.rotate(u, n + round).await,
                Outcome::Ok,
                "rotating while cut off"
            );
        }
    }
    // A reuse is a revocation too: detected (401), and reported unconfirmed.
    // Its follow-up must write for its WAIT to count anything: a WAIT after
    // no write returns at once with the replica's old acknowledgement.
    let before = fleet.unconfirmed();
    let r = fleet.a.reissue(&stale, &ClientMeta::default()).await;
    assert!(
        matches!(r, Err(Error::InvalidToken(TokenRejection::ReuseDetected))),
        "a reuse detection without a replica: {r:?}"
    );
    assert_eq!(
        fleet.unconfirmed() - before,
        1,
        "{kind}: the reuse revocation is reported unconfirmed, not confirmed by a WAIT that counted nothing"
    );
    // Logouts no replica can confirm answer at once, and are reported.
    let unconfirmed: Vec<User> = users.drain(..2).collect();
    for u in &unconfirmed {
        let r = fleet.b.logout(&u.id, &u.sid).await;
        assert!(r.is_ok(), "{kind}: a logout no replica has: {r:?}");
    }
    assert_eq!(
        fleet.unconfirmed() - before,
        3,
        "{kind}: reported unconfirmed"
    );
    kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !wait_promoted() {
        assert!(
            Instant::now() < deadline,
            "{kind}: the lagging replica was not promoted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every session still works: three generations ahead of the store, minted
    // after its newest state: lost writes.
    let mut revoked = 0;
    for (n, u) in users.iter_mut().enumerate() {
        let mut last = Outcome::Unavailable;
        let deadline = Instant::now() + Duration::from_secs(15);
        while last == Outcome::Unavailable && Instant::now() < deadline {
            last = fleet.rotate(u, n).await;
            if last == Outcome::Unavailable {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        if last != Outcome::Ok {
            revoked += 1;
        }
        assert_eq!(u.forks, 0);
    }
    println!(
        "FAILOVER {kind} lagging replica: {} sessions 3 rotations ahead of the promoted replica, \
         {revoked} revoked; {} logouts acknowledged before the cut, {} unconfirmed while cut off",
        users.len(),
        acknowledged.len(),
        unconfirmed.len()
    );
    assert_eq!(revoked, 0, "{kind}: sessions revoked by the failover");
    // No acknowledged logout came back.
    for u in &acknowledged {
        let r = fleet.a.reissue(&u.token, &ClientMeta::default()).await;
        assert!(
            matches!(r, Err(Error::InvalidToken(_))),
            "{kind}: an acknowledged logout came back: {r:?}"
        );
    }
    // The unconfirmed logouts may be lost with the old primary (what the
    // report warns of); repeated once the old primary is back as a replica,
    // they are confirmed and hold.
    heal();
    for u in &unconfirmed {
        logout_eventually(&fleet.b, u).await;
        let r = fleet.a.reissue(&u.token, &ClientMeta::default()).await;
        assert!(matches!(r, Err(Error::InvalidToken(_))), "{kind}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_lagging_replica_promoted() {
    let _serial = SERIAL.lock().await;
    let mut cluster = deploy::Cluster::start();
    let url = cluster.url();
    let primary = cluster.primaries()[0];
    let replica = cluster.replica_of(primary);
    let cluster = Mutex::new(&mut cluster);
    lagging_replica(
        "cluster",
        &url,
        (primary, replica),
        |key| cluster.lock().unwrap().primary_of(key) == primary,
        || cluster.lock().unwrap().node(primary).kill(),
        || deploy::info(replica, "replication", "role").as_deref() == Some("master"),
        || {
            let mut c = cluster.lock().unwrap();
            c.node(primary).restart();
            c.wait_healthy(Duration::from_secs(30));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_lagging_replica_promoted() {
    let _serial = SERIAL.lock().await;
    let mut set = deploy::Sentinel::start();
    let url = set.url();
    let (primary, replica) = (set.primary.port(), set.replica.port());
    let sentinel = set.sentinels[0].port();
    let set = Mutex::new(&mut set);
    let promoted = move || {
        deploy::cli(
            sentinel,
            &["SENTINEL", "get-master-addr-by-name", deploy::SERVICE],
        )
        .lines()
        .nth(1)
        .and_then(|p| p.trim().parse::<u16>().ok())
            == Some(replica)
    };
    lagging_replica(
        "sentinel",
        &url,
        (primary, replica),
        |_| true,
        || set.lock().unwrap().primary.kill(),
        promoted,
        || {
            let mut s = set.lock().unwrap();
            s.primary.restart();
            // A sentinel turns the returning primary into a replica only once
            // it has reported its role for 8 s, and asks it every 10 s: 10-20 s
            // here; a sentinel in TILT mode (its timer 2 s late on a starved
            // machine) does nothing for 30 s more.
            s.wait_healthy(Duration::from_secs(60));
        },
    )
    .await;
}

/// Resumes a stopped process when dropped, whatever the test did.
struct Stopped(u32);

impl Stopped {
    fn new(pid: u32) -> Self {
        let ok = std::process::Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "SIGSTOP the replica");
        Self(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

/// A reuse detection is confirmed by a replica for real: its follow-up on
/// the acknowledged path writes, so its `WAIT` waits for the replica to
/// have the rotation's revocation. A replica that is connected but stalled
/// (SIGSTOP: it acknowledged everything before, nothing since) confirms
/// nothing. Before Redis 7 a follow-up that wrote nothing would be
/// "confirmed" at once by the old acknowledgement (`WAIT` counted from the
/// connection's last write); Redis 7 counts from its last command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reuse_revocation_waits_for_the_replica_to_have_it() {
    let _serial = SERIAL.lock().await;
    let set = deploy::Sentinel::start();
    let url = format!("redis://127.0.0.1:{}", set.primary.port());
    let fleet = Fleet::new(&url, "reuse:").await;
    let mut users = fleet.login((0..2).map(|i| format!("reuse-{i}"))).await;
    let stale = users[0].token.clone();
    for n in 0..2 {
        assert_eq!(fleet.rotate(&mut users[0], n * 2).await, Outcome::Ok);
    }
    // A confirmed revocation first: the replica acknowledges all so far.
    fleet
        .a
        .logout(&users[1].id, &users[1].sid)
        .await
        .expect("a confirmed logout");
    assert_eq!(fleet.unconfirmed(), 0, "the replica confirmed the logout");
    let pid = set.replica.pid().expect("the replica's pid");
    let stopped = Stopped::new(pid);
    let r = fleet.a.reissue(&stale, &ClientMeta::default()).await;
    drop(stopped);
    assert!(
        matches!(r, Err(Error::InvalidToken(TokenRejection::ReuseDetected))),
        "{r:?}"
    );
    assert_eq!(
        fleet.unconfirmed(),
        1,
        "the stalled replica could not confirm the reuse revocation"
    );
}
