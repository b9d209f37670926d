//! The revocation feed under connection faults that a `PING` does not see:
//! the subscriber's connection cut in the middle of its `SSUBSCRIBE`s
//! (fred reconnects, resends the call in flight on a new connection, and the
//! channels subscribed before are gone), and a channel unsubscribed behind
//! fred's back (Redis does that when a slot moves away; fred drops the
//! notice). A TCP proxy between each instance and Redis makes both happen.
//! After each, once the instances say they are in sync, sessions of every
//! bucket are revoked elsewhere and every instance must refuse them.
//!
//! Its own binary: it spawns its own `redis-server`.

mod support;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reissue_core::store::{ClientMeta, RedisStore};
use reissue_core::{Access, Config, Error, HttpRequest, Reissue, TokenRejection};
use support::{AnyUser, RedisServer, hs256_keys};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// Few buckets: a sync is 16 `SSUBSCRIBE`s, and one user per bucket is cheap.
const BUCKETS: u16 = 16;

struct Request(Vec<u8>);

impl HttpRequest for Request {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        (name == "authorization")
            .then_some(self.0.as_slice())
            .into_iter()
    }
    fn peer_addr(&self) -> Option<IpAddr> {
        Some([203, 0, 113, 9].into())
    }
}

/// Where the proxy cuts a connection: at the `n`th `SSUBSCRIBE` after it was
/// armed, before passing it on (Redis never sees it, the call fails), or
/// once its reply is delivered (the call succeeded; fred reconnects on its
/// own, and the next `SSUBSCRIBE` succeeds on a connection without the
/// channels before it).
#[derive(Clone, Copy, Debug)]
struct Cut {
    nth: usize,
    before: bool,
}

/// One connection through the proxy: how to end it, and whether it ever
/// sent an `SSUBSCRIBE` (then it is a feed's subscriber).
struct Conn {
    subscriber: Arc<AtomicBool>,
    stop: Arc<Notify>,
    /// Bytes the test wants written to Redis as if the client sent them.
    inject: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
}

struct Proxy {
    port: u16,
    armed: Arc<Mutex<Option<(usize, bool)>>>,
    fired: Arc<AtomicUsize>,
    conns: Arc<Mutex<Vec<Conn>>>,
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| w.eq_ignore_ascii_case(needle))
        .count()
}

impl Proxy {
    async fn start(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(Mutex::new(None::<(usize, bool)>));
        let fired = Arc::new(AtomicUsize::new(0));
        let conns = Arc::new(Mutex::new(Vec::<Conn>::new()));
        let (a, f, c) = (armed.clone(), fired.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let subscriber = Arc::new(AtomicBool::new(false));
                let stop = Arc::new(Notify::new());
                let (inject, mut injected) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
                c.lock().unwrap().push(Conn {
                    subscriber: subscriber.clone(),
                    stop: stop.clone(),
                    inject,
                });
                let after_reply = Arc::new(AtomicBool::new(false));
                let (armed, fired, stop_up) = (a.clone(), f.clone(), stop.clone());
                let cut_after_reply = after_reply.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = tokio::select! {
                            _ = stop_up.notified() => break,
                            Some(bytes) = injected.recv() => {
                                if sw.write_all(&bytes).await.is_err() { break }
                                continue;
                            }
                            n = cr.read(&mut buf) => match n { Ok(0) | Err(_) => break, Ok(n) => n },
                        };
                        let chunk = &buf[..n];
                        let subs = count(chunk, b"SSUBSCRIBE");
                        if subs > 0 {
                            subscriber.store(true, Ordering::SeqCst);
                        }
                        let mut cut = None;
                        if subs > 0
                            && let Some((left, before)) = armed.lock().unwrap().as_mut()
                        {
                            if *left <= subs {
                                cut = Some(*before);
                            } else {
                                *left -= subs;
                            }
                        }
                        if let Some(before) = cut {
                            *armed.lock().unwrap() = None;
                            fired.fetch_add(1, Ordering::SeqCst);
                            if before {
                                stop_up.notify_one();
                                stop_up.notify_one();
                                break;
                            }
                            // The other half cuts once it has passed the reply on.
                            cut_after_reply.store(true, Ordering::SeqCst);
                        }
                        if sw.write_all(chunk).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = tokio::select! {
                            biased;
                            _ = stop.notified() => break,
                            n = sr.read(&mut buf) => match n { Ok(0) | Err(_) => break, Ok(n) => n },
                        };
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        if after_reply.load(Ordering::SeqCst) {
                            break;
                        }
                    }
                    // Both directions end: wake the other half too.
                    stop.notify_one();
                });
            }
        });
        Self {
            port,
            armed,
            fired,
            conns,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn arm(&self, cut: Cut) {
        *self.armed.lock().unwrap() = Some((cut.nth, cut.before));
    }

    fn subscribers(&self) -> Vec<(Arc<Notify>, tokio::sync::mpsc::UnboundedSender<Vec<u8>>)> {
        let mut conns = self.conns.lock().unwrap();
        conns.retain(|c| !c.inject.is_closed());
        conns
            .iter()
            .filter(|c| c.subscriber.load(Ordering::SeqCst))
            .map(|c| (c.stop.clone(), c.inject.clone()))
            .collect()
    }

    /// Cuts every subscriber connection: its feed syncs again.
    fn cut_subscribers(&self) {
        for (stop, _) in self.subscribers() {
            stop.notify_one();
            stop.notify_one();
        }
    }

    /// Sends `SUNSUBSCRIBE <channel>` to Redis on the subscribers' behalf:
    /// Redis unsubscribes them and says so, and fred drops the notice, as it
    /// does when a cluster moves the channel's slot away.
    fn unsubscribe_behind_their_back(&self, channel: &str) -> usize {
        let command = format!(
            "*2\r\n$12\r\nSUNSUBSCRIBE\r\n${}\r\n{channel}\r\n",
            channel.len()
        );
        let subscribers = self.subscribers();
        for (_, inject) in &subscribers {
            let _ = inject.send(command.clone().into_bytes());
        }
        subscribers.len()
    }
}

async fn store(url: &str) -> Arc<RedisStore> {
    Arc::new(
        RedisStore::builder(url)
            .key_prefix("feed:")
            .buckets(BUCKETS)
            .command_timeout(Duration::from_millis(600))
            .connect()
            .await
            .expect("connect to the test redis"),
    )
}

fn instance(store: Arc<RedisStore>) -> Reissue<AnyUser> {
    Reissue::builder(Config::new("feed", "feed"), hs256_keys(), store, AnyUser)
        .build()
        .unwrap()
}

fn bucket_of(user: &str) -> u16 {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(user.as_bytes());
    u16::from_be_bytes([d[0], d[1]]) % BUCKETS
}

/// One user name per bucket, unique to `round`.
fn one_user_per_bucket(round: &str) -> Vec<String> {
    let mut users: Vec<Option<String>> = vec![None; BUCKETS as usize];
    let mut i = 0;
    while users.iter().any(Option::is_none) {
        let user = format!("{round}-{i}");
        users[bucket_of(&user) as usize].get_or_insert(user);
        i += 1;
    }
    users.into_iter().flatten().collect()
}

async fn wait_synced(instances: &[&Reissue<AnyUser>], what: &str) {
    let started = Instant::now();
    while !instances
        .iter()
        .all(|r| r.verifier().revocations().unwrap().is_synced())
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: the feeds never got in sync"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Logs one user of every bucket in through `revoker`, checks that `followers`
/// admit them, logs them all out through `revoker`, and requires every
/// follower to refuse every one of them within 3 s.
async fn every_bucket_is_heard(
    revoker: &Reissue<AnyUser>,
    followers: &[&Reissue<AnyUser>],
    round: &str,
) {
    let client = ClientMeta::default();
    let mut sessions = Vec::new();
    for user in one_user_per_bucket(round) {
        let pair = revoker.login(user.clone(), &client).await.unwrap();
        let sid = revoker
            .tokens()
            .verify_refresh(&pair.refresh_token)
            .unwrap()
            .sid;
        for f in followers {
            admit(f, &pair.access_token)
                .await
                .expect("a live session is admitted");
        }
        sessions.push((user, sid, pair.access_token));
    }
    for (user, sid, _) in &sessions {
        revoker.logout(user, sid).await.unwrap();
    }
    for (i, f) in followers.iter().enumerate() {
        for (user, _, access) in &sessions {
            let started = Instant::now();
            loop {
                match admit(f, access).await {
                    Err(Error::InvalidToken(TokenRejection::SessionRevoked)) => break,
                    Ok(()) => {}
                    Err(e) => panic!("{round}: {e:?}"),
                }
                assert!(
                    started.elapsed() < Duration::from_secs(3),
                    "{round}: instance {i} still admits {user}'s ended session (bucket {}) after 3 s, \
                     in sync: {}",
                    bucket_of(user),
                    f.verifier().revocations().unwrap().is_synced()
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

async fn admit(r: &Reissue<AnyUser>, access: &str) -> Result<(), Error> {
    r.verifier()
        .gate(Access::required())
        .decide(&Request(format!("Bearer {access}").into_bytes()))
        .await
        .map(|_| ())
}

/// The subscriber's connection cut again and again while its feed syncs, at
/// every point of its `SSUBSCRIBE` sequence: after each, once the instances
/// say they are in sync, they refuse the sessions of every bucket that end.
/// Before the fix the sync's own reconnection was thrown away with the
/// troubles of earlier syncs, and the instance was in sync with the
/// channels subscribed before the cut gone, its heartbeat `PING` answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_cut_during_its_sync_is_never_in_sync_deaf() {
    let server = RedisServer::start();
    let (pa, pb) = (
        Proxy::start(server.port()).await,
        Proxy::start(server.port()).await,
    );
    let a = instance(store(&pa.url()).await);
    let b = instance(store(&pb.url()).await);
    let revoker = instance(store(&server.url()).await);
    wait_synced(&[&a, &b], "at start").await;
    every_bucket_is_heard(&revoker, &[&a, &b], "start").await;
    let n = BUCKETS as usize;
    let mut round = 0;
    for nth in [1, 2, 3, n / 2, n - 1, n] {
        for before in [true, false] {
            round += 1;
            let cut = Cut { nth, before };
            let fired = (
                pa.fired.load(Ordering::SeqCst),
                pb.fired.load(Ordering::SeqCst),
            );
            pa.arm(cut);
            pb.arm(cut);
            // A cut subscriber makes its feed sync again, into the armed cut.
            pa.cut_subscribers();
            pb.cut_subscribers();
            let started = Instant::now();
            while pa.fired.load(Ordering::SeqCst) == fired.0
                || pb.fired.load(Ordering::SeqCst) == fired.1
            {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "{cut:?}: the cut never happened"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let what = format!("round {round}, {cut:?}");
            wait_synced(&[&a, &b], &what).await;
            every_bucket_is_heard(&revoker, &[&a, &b], &what).await;
        }
    }
}

/// A channel unsubscribed behind fred's back (fred drops Redis's notice, as
/// after a slot migration): the heartbeat sees the subscription gone, the
/// feed syncs again, and the bucket's revocations are heard. Before the fix
/// the heartbeat was a `PING`, which still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_unsubscribed_silently_is_noticed_by_the_heartbeat() {
    let server = RedisServer::start();
    let proxy = Proxy::start(server.port()).await;
    let follower = instance(store(&proxy.url()).await);
    let revoker_store = store(&server.url()).await;
    let revoker = instance(revoker_store.clone());
    wait_synced(&[&follower], "at start").await;
    for bucket in [0, 7, BUCKETS - 1] {
        let channel = format!("feed:{{b{bucket}}}:rv");
        assert_eq!(
            proxy.unsubscribe_behind_their_back(&channel),
            1,
            "one subscriber connection"
        );
        let feed = follower.verifier().revocations().unwrap();
        let started = Instant::now();
        // 500 ms heartbeat, then the check's round trip.
        while feed.is_synced() {
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "bucket {bucket}: the lost subscription went unnoticed"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        println!(
            "bucket {bucket}: out of sync {:?} after the unsubscription",
            started.elapsed()
        );
        wait_synced(&[&follower], "after the unsubscription").await;
        every_bucket_is_heard(&revoker, &[&follower], &format!("bucket {bucket}")).await;
    }
}

/// The revocation log is trimmed by the longest retention a feed announced,
/// not by the caller's: a process with a short one (the admin CLI, an
/// instance amid a rolling change of the access lifetime) revoking a session
/// must not drop an older revocation that an instance starting now must still
/// catch up on. Before the fix the CLI's 1 s trimmed it away, and the new
/// instance, in sync, admitted the ended session's access token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_retention_elsewhere_trims_nothing_a_feed_needs() {
    use reissue_core::store::{Retention, RevocationFeed, SessionStore};
    let server = RedisServer::start();
    let a = instance(store(&server.url()).await);
    wait_synced(&[&a], "at start").await;
    let client = ClientMeta::default();
    let ended = a.login("ended".into(), &client).await.unwrap();
    let sid = a.tokens().verify_refresh(&ended.refresh_token).unwrap().sid;
    a.logout("ended", &sid).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The CLI: a store told to keep revocations for 1 s ends a session of the
    // same bucket, trimming the log as it writes.
    let cli = store(&server.url()).await;
    RevocationFeed::retain(&*cli, Retention::new(Duration::from_secs(1)));
    let other = (0..)
        .map(|i| format!("other-{i}"))
        .find(|u| bucket_of(u) == bucket_of("ended"))
        .unwrap();
    let victim = a.login(other.clone(), &client).await.unwrap();
    let victim_sid = a
        .tokens()
        .verify_refresh(&victim.refresh_token)
        .unwrap()
        .sid;
    assert!(cli.revoke(&other, &victim_sid).await.unwrap());
    // An instance starting now catches up from the log.
    let late = instance(store(&server.url()).await);
    wait_synced(&[&late], "the late instance").await;
    for (what, access) in [
        ("older", &ended.access_token),
        ("newer", &victim.access_token),
    ] {
        let err = admit(&late, access).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidToken(TokenRejection::SessionRevoked)),
            "the {what} revocation was caught up: {err:?}"
        );
    }
}
