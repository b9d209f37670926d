//! reissue-core against its floor, side by side:
//!
//! - `verify/<alg>`: `TokenCodec::verify_access` vs a raw `jsonwebtoken::decode`
//!   of the same token with an equivalent `Validation` (goal: ≤ 1.15×);
//! - `reissue_redis`: `Reissue::reissue` on a private `redis-server` vs one raw
//!   EVALSHA of `return 1` on the same pool, both 16 in flight (goal: ≥ 0.8×),
//!   and `Reissue::reissue_with_proof` of DPoP-bound sessions (EdDSA, ES256);
//! - `dpop/<alg>`: a reissue of a DPoP-bound session with its proof vs an
//!   unbound one (memory store), and one raw signature verification, the
//!   proof check's floor;
//! - Redis bytes per session, its index included, printed (goal: ≤ 300).
//!
//! `cargo bench -p reissue-core --bench core -- --warm-up-time 1 --measurement-time 3`
// criterion_group! emits an undocumented public function.
#![allow(missing_docs)]

use reissue_core::store::dangerous;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fred::prelude::{ClientLike, LuaInterface, MemoryInterface, Value};
use fred::types::CustomCommand;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reissue_core::store::{
    ClientMeta, NewSession, RedisStore, RotateRequest, Rotation, SessionStore,
};
use reissue_core::{AccessClaims, Config, Key, KeySet, Reissue, SessionId, TokenCodec, UserClaims};
use reissue_test_support::{AnyUser, HS256_SECRET, RedisServer, now_s, pem};

const ISS: &str = "https://issuer.test";
const AUD: &str = "api.test";
const IN_FLIGHT: u64 = 16;

fn verify(c: &mut Criterion) {
    let cases = [
        (
            "HS256",
            Key::hmac("k", Algorithm::HS256, HS256_SECRET).unwrap(),
            DecodingKey::from_secret(HS256_SECRET),
        ),
        (
            "RS256",
            Key::from_private_pem("k", Algorithm::RS256, pem::RSA).unwrap(),
            DecodingKey::from_rsa_pem(pem::RSA_PUB).unwrap(),
        ),
        (
            "ES256",
            Key::from_private_pem("k", Algorithm::ES256, pem::EC).unwrap(),
            DecodingKey::from_ec_pem(pem::EC_PUB).unwrap(),
        ),
        (
            "EdDSA",
            Key::from_private_pem("k", Algorithm::EdDSA, pem::ED).unwrap(),
            DecodingKey::from_ed_pem(pem::ED_PUB).unwrap(),
        ),
    ];
    for (name, key, raw_key) in cases {
        let alg = key.algorithm();
        let codec = TokenCodec::new(KeySet::new(key).unwrap(), ISS, AUD, 5);
        let claims = UserClaims::new("alice@example.com", vec!["user".to_owned()]);
        let token = codec
            .issue_access("42", &SessionId::random(), &claims, now_s(), 3600)
            .unwrap();
        // What TokenCodec asks of jsonwebtoken, minus the typ and kid checks.
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[ISS]);
        validation.set_audience(&[AUD]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        validation.validate_nbf = true;
        jsonwebtoken::decode::<AccessClaims<UserClaims>>(&token, &raw_key, &validation).unwrap();
        codec.verify_access::<UserClaims>(&token).unwrap();

        let mut group = c.benchmark_group(format!("verify/{name}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("reissue", |b| {
            b.iter(|| codec.verify_access::<UserClaims>(&token).unwrap())
        });
        group.bench_function("jsonwebtoken", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<AccessClaims<UserClaims>>(&token, &raw_key, &validation)
                    .unwrap()
            })
        });
        group.finish();

        // The same comparison interleaved, so that load from other processes
        // hits both sides alike: the median of per-round ratios.
        let time = |f: &dyn Fn()| {
            let started = Instant::now();
            for _ in 0..200 {
                f();
            }
            started.elapsed().as_secs_f64()
        };
        let ours = || {
            drop(std::hint::black_box(
                codec.verify_access::<UserClaims>(&token).unwrap(),
            ))
        };
        let raw = || {
            drop(std::hint::black_box(
                jsonwebtoken::decode::<AccessClaims<UserClaims>>(&token, &raw_key, &validation)
                    .unwrap(),
            ))
        };
        let mut ratios: Vec<f64> = (0..41).map(|_| time(&ours) / time(&raw)).collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "verify/{name}: interleaved median ratio reissue / jsonwebtoken = {:.3}",
            ratios[20]
        );
    }
}

/// Runs `op(worker)` `iters` times in total, `IN_FLIGHT` at a time.
async fn in_flight<F, Fut>(iters: u64, op: F) -> Duration
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..IN_FLIGHT {
        let n = iters / IN_FLIGHT + u64::from(worker < iters % IN_FLIGHT);
        let op = op.clone();
        tasks.spawn(async move {
            for _ in 0..n {
                op(worker as usize).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    started.elapsed()
}

fn reissue_redis(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = RedisServer::start();
    let store = Arc::new(
        rt.block_on(RedisStore::builder(server.url()).connect())
            .unwrap(),
    );
    let keys = KeySet::new(Key::hmac("k", Algorithm::HS256, HS256_SECRET).unwrap()).unwrap();
    // Instant revocation follows the store's feed from a task of this runtime.
    let _runtime = rt.enter();
    let reissue = Reissue::builder(Config::new(ISS, AUD), keys, store.clone(), AnyUser)
        .build()
        .unwrap();
    // One session per worker; each worker walks its own rotation chain.
    let chains: Arc<Vec<tokio::sync::Mutex<String>>> = Arc::new(
        (0..IN_FLIGHT)
            .map(|i| {
                let pair = rt
                    .block_on(reissue.login(format!("user-{i}"), &ClientMeta::default()))
                    .unwrap();
                tokio::sync::Mutex::new(pair.refresh_token)
            })
            .collect(),
    );
    let sha: String = rt
        .block_on(dangerous::pool(&store).next().script_load("return 1"))
        .unwrap();
    // The store alone (no tokens): one session per worker, rotated by generation.
    let sessions: Arc<Vec<(String, SessionId, std::sync::atomic::AtomicU64)>> = Arc::new(
        (0..IN_FLIGHT)
            .map(|i| {
                let (user, sid) = (format!("store-{i}"), SessionId::random());
                let s = NewSession::new(
                    &user,
                    sid.clone(),
                    Duration::from_secs(86_400),
                    Duration::from_secs(3600),
                );
                rt.block_on(store.create(&s)).unwrap();
                (user, sid, std::sync::atomic::AtomicU64::new(1))
            })
            .collect(),
    );

    let mut group = c.benchmark_group("reissue_redis");
    group.throughput(Throughput::Elements(1));
    group.bench_function("reissue", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (reissue, chains) = (reissue.clone(), chains.clone());
            in_flight(iters, move |worker| {
                let (reissue, chains) = (reissue.clone(), chains.clone());
                async move {
                    let mut token = chains[worker].lock().await;
                    let pair = reissue
                        .reissue(&token, &ClientMeta::default())
                        .await
                        .unwrap();
                    *token = pair.refresh_token;
                }
            })
        })
    });
    // Bound sessions, one per worker, reissued with a proof each time (the
    // proofs signed before the clock starts).
    let origin = Arc::new(reissue_core::Origin::parse("https://app.example.com").unwrap());
    for alg in [Algorithm::EdDSA, Algorithm::ES256] {
        let key = Arc::new(ProofKey::new(alg));
        let bound: Arc<Vec<tokio::sync::Mutex<String>>> = Arc::new(
            (0..IN_FLIGHT)
                .map(|i| {
                    let jwt = key.proof("/auth/login");
                    let proof = reissue_core::DpopProof::new(&jwt, "POST", &origin, "/auth/login");
                    let pair = rt
                        .block_on(reissue.login_with_proof(
                            format!("bound-{alg:?}-{i}"),
                            &ClientMeta::default(),
                            None,
                            Some(&proof),
                        ))
                        .unwrap();
                    tokio::sync::Mutex::new(pair.refresh_token)
                })
                .collect(),
        );
        group.bench_function(format!("reissue_dpop_{alg:?}"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let proofs: Arc<Vec<std::sync::Mutex<Vec<String>>>> = Arc::new(
                    (0..IN_FLIGHT)
                        .map(|_| {
                            let n = iters / IN_FLIGHT + 1;
                            std::sync::Mutex::new(
                                (0..n).map(|_| key.proof("/auth/reissue")).collect(),
                            )
                        })
                        .collect(),
                );
                let (reissue, bound, origin) = (reissue.clone(), bound.clone(), origin.clone());
                in_flight(iters, move |worker| {
                    let (reissue, bound, origin, proofs) = (
                        reissue.clone(),
                        bound.clone(),
                        origin.clone(),
                        proofs.clone(),
                    );
                    async move {
                        let jwt = proofs[worker].lock().unwrap().pop().unwrap();
                        let proof =
                            reissue_core::DpopProof::new(&jwt, "POST", &origin, "/auth/reissue");
                        let mut token = bound[worker].lock().await;
                        let pair = reissue
                            .reissue_with_proof(&token, &ClientMeta::default(), Some(&proof))
                            .await
                            .unwrap();
                        *token = pair.refresh_token;
                    }
                })
            })
        });
    }
    group.bench_function("store_rotate", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (store, sessions) = (store.clone(), sessions.clone());
            in_flight(iters, move |worker| {
                let (store, sessions) = (store.clone(), sessions.clone());
                async move {
                    let (user, sid, generation) = &sessions[worker];
                    let g = generation.load(std::sync::atomic::Ordering::Relaxed);
                    let client = ClientMeta::default();
                    let request = RotateRequest::new(
                        user,
                        sid,
                        g,
                        Duration::from_secs(10),
                        Duration::from_secs(3600),
                        &client,
                    );
                    let rotated =
                        matches!(store.rotate(&request).await.unwrap(), Rotation::Rotated(_));
                    assert!(rotated);
                    generation.store(g + 1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
    });
    group.bench_function("raw_evalsha", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (store, sha) = (store.clone(), sha.clone());
            in_flight(iters, move |_| {
                let (store, sha) = (store.clone(), sha.clone());
                async move {
                    let one: i64 = dangerous::pool(&store)
                        .next()
                        .evalsha(&sha, Vec::<String>::new(), Vec::<String>::new())
                        .await
                        .unwrap();
                    assert_eq!(one, 1);
                }
            })
        })
    });
    group.finish();

    rt.block_on(where_the_time_goes(&reissue, &chains, &store, &sha));
    rt.block_on(memory_per_session(&store));
    drop(server);
}

/// CPU seconds this process has used (user + system), from /proc (USER_HZ = 100).
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds the Redis server has used, from INFO cpu.
async fn redis_cpu(client: &fred::prelude::Client) -> f64 {
    let info: String = client.info(Some(fred::types::InfoKind::Cpu)).await.unwrap();
    info.lines()
        .filter_map(|l| {
            l.strip_prefix("used_cpu_user:")
                .or_else(|| l.strip_prefix("used_cpu_sys:"))
        })
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

/// Where a reissue's time goes, outside criterion and robust to other load:
/// CPU per call in this process and in Redis, Redis' own time per script
/// call and per command inside it, and the token work alone.
async fn where_the_time_goes(
    reissue: &Reissue<AnyUser>,
    chains: &Arc<Vec<tokio::sync::Mutex<String>>>,
    store: &Arc<RedisStore>,
    sha: &str,
) {
    const CALLS: u64 = 20_000;
    let client = dangerous::pool(store).next();
    for label in ["reissue", "raw_evalsha"] {
        let reset = CustomCommand::new_static("CONFIG", None, false);
        let _: Value = client.custom(reset, vec!["RESETSTAT"]).await.unwrap();
        let (cpu, redis_before) = (process_cpu(), redis_cpu(client).await);
        let (reissue, chains, store, sha) = (
            reissue.clone(),
            chains.clone(),
            store.clone(),
            sha.to_owned(),
        );
        let took = in_flight(CALLS, move |worker| {
            let (reissue, chains, store, sha) =
                (reissue.clone(), chains.clone(), store.clone(), sha.clone());
            async move {
                if label == "reissue" {
                    let mut token = chains[worker].lock().await;
                    *token = reissue
                        .reissue(&token, &ClientMeta::default())
                        .await
                        .unwrap()
                        .refresh_token;
                } else {
                    let no: Vec<String> = Vec::new();
                    let _: i64 = dangerous::pool(&store)
                        .next()
                        .evalsha(&sha, no.clone(), no)
                        .await
                        .unwrap();
                }
            }
        })
        .await;
        let per_call = |secs: f64| secs * 1e6 / CALLS as f64;
        let (app_cpu, redis_cpu) = (
            per_call(process_cpu() - cpu),
            per_call(redis_cpu(client).await - redis_before),
        );
        let info: String = client
            .info(Some(fred::types::InfoKind::CommandStats))
            .await
            .unwrap();
        let stat = |line: &str| {
            line.split(',')
                .find_map(|kv| kv.strip_prefix("usec_per_call="))
                .unwrap_or("?")
                .to_owned()
        };
        let script = info
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_evalsha:"))
            .map(stat);
        println!(
            "{label}: {CALLS} calls, {IN_FLIGHT} in flight: {:.1} µs wall per call; CPU per call: app {app_cpu:.1} µs, redis {redis_cpu:.1} µs; redis time per script call {} µs",
            per_call(took.as_secs_f64()),
            script.unwrap_or_default(),
        );
        for line in info.lines().filter(|l| l.starts_with("cmdstat_")) {
            if !["cmdstat_config", "cmdstat_evalsha", "cmdstat_info"]
                .iter()
                .any(|p| line.starts_with(p))
            {
                println!("  inside the script: {line}");
            }
        }
    }

    let claims = UserClaims::new("user-0@example.com", vec!["user".to_owned()]);
    let (sid, now) = (SessionId::random(), now_s());
    let token = reissue
        .tokens()
        .issue_refresh("user-0", &sid, 1, now, now + 3600, &claims)
        .unwrap();
    let started = Instant::now();
    for _ in 0..CALLS {
        let rt = reissue.tokens().verify_refresh(&token).unwrap();
        let _: UserClaims =
            serde_json::from_str(r#"{"email":"user-0@example.com","roles":["user"]}"#).unwrap();
        reissue
            .tokens()
            .issue_access(&rt.sub, &rt.sid, &claims, now, 300)
            .unwrap();
        reissue
            .tokens()
            .issue_refresh(&rt.sub, &rt.sid, 2, now, now + 3600, &claims)
            .unwrap();
    }
    println!(
        "token work of one reissue (HS256 verify, claims parse, two signatures): {:.1} µs",
        started.elapsed().as_secs_f64() * 1e6 / CALLS as f64
    );
}

/// Prints Redis bytes per session: MEMORY USAGE of a session and its index
/// (one session per user), and the growth of `used_memory` over many sessions.
async fn memory_per_session(store: &RedisStore) {
    let client = dangerous::pool(store).next();
    let user_agents = [
        ("no client metadata", None),
        ("curl user agent", Some("curl/8.5.0")),
        (
            "browser user agent",
            Some(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
            ),
        ),
    ];
    for (label, ua) in user_agents {
        let _: () = client.flushall(false).await.unwrap();
        let before = used_memory(client).await;
        const N: u64 = 2000;
        let mut last = None;
        for i in 0..N {
            let user = format!("user-{i:06}");
            let sid = SessionId::random();
            let mut s = NewSession::new(
                &user,
                sid.clone(),
                Duration::from_secs(30 * 86_400),
                Duration::from_secs(14 * 86_400),
            );
            if ua.is_some() {
                s.client = ClientMeta::new(
                    Some("203.0.113.7".parse().unwrap()),
                    reissue_core::Country::new("DE"),
                    ua,
                );
            }
            store.create(&s).await.unwrap();
            last = Some((user, sid));
        }
        let after = used_memory(client).await;
        let (user, sid) = last.unwrap();
        let _ = sid;
        let session: u64 = client
            .memory_usage(dangerous::user_key(store, &user), Some(0))
            .await
            .unwrap();
        println!(
            "redis bytes per session ({label}): MEMORY USAGE of the user's key (sessions + index) {session}; used_memory growth {} per session",
            (after - before) / N,
        );
    }
}

async fn used_memory(client: &fred::prelude::Client) -> u64 {
    let info: String = client
        .info(Some(fred::types::InfoKind::Memory))
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO memory")
}

/// A client's DPoP key and its proofs (RFC 9449), for the `dpop` rows.
struct ProofKey {
    key: jsonwebtoken::EncodingKey,
    alg: Algorithm,
    header: String,
    raw: DecodingKey,
}

static NEXT_JTI: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl ProofKey {
    fn new(alg: Algorithm) -> Self {
        let (key, jwk) = match alg {
            Algorithm::ES256 => {
                let key = jsonwebtoken::EncodingKey::from_ec_pem(pem::EC).unwrap();
                let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, alg).unwrap();
                (key, jwk)
            }
            _ => {
                let key = jsonwebtoken::EncodingKey::from_ed_pem(pem::ED).unwrap();
                let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, alg).unwrap();
                (key, jwk)
            }
        };
        let raw = DecodingKey::from_jwk(&jwk).unwrap();
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": format!("{alg:?}"), "jwk": jwk});
        Self {
            key,
            alg,
            header: b64(&header.to_string()),
            raw,
        }
    }

    /// A fresh proof for `POST https://app.example.com<path>`.
    fn proof(&self, path: &str) -> String {
        let jti = NEXT_JTI.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let claims = serde_json::json!({
            "htm": "POST",
            "htu": format!("https://app.example.com{path}"),
            "iat": now_s(),
            "jti": format!("bench-{}-{jti}", std::process::id()),
        });
        let message = format!("{}.{}", self.header, b64(&claims.to_string()));
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, self.alg).unwrap();
        format!("{message}.{signature}")
    }
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// `dpop/<alg>`: a reissue of a bound session with its proof, beside the
/// same reissue of an unbound one (memory store, one at a time: what the
/// proof adds, the jti's store call included), and the floor of the proof
/// check: one signature verification with the same backend, its key
/// parsed from the JWK as the check must. The proofs are signed before the
/// clock starts.
fn dpop(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let origin = reissue_core::Origin::parse("https://app.example.com").unwrap();
    for alg in [Algorithm::ES256, Algorithm::EdDSA] {
        let key = ProofKey::new(alg);
        let keys = KeySet::new(Key::hmac("k", Algorithm::HS256, HS256_SECRET).unwrap()).unwrap();
        let store = Arc::new(reissue_core::store::MemoryStore::new());
        let reissue = Reissue::builder(Config::new(ISS, AUD), keys, store, AnyUser)
            .build()
            .unwrap();
        let login = key.proof("/auth/login");
        let login = reissue_core::DpopProof::new(&login, "POST", &origin, "/auth/login");
        let client = ClientMeta::default();
        let bound = rt
            .block_on(reissue.login_with_proof("bound".into(), &client, None, Some(&login)))
            .unwrap();
        assert_eq!(bound.token_type, "DPoP");
        let unbound = rt
            .block_on(reissue.login("unbound".into(), &client))
            .unwrap();
        let (mut bound_rt, mut unbound_rt) = (bound.refresh_token, unbound.refresh_token);

        let mut group = c.benchmark_group(format!("dpop/{alg:?}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("reissue_bound", |b| {
            b.iter_custom(|iters| {
                let proofs: Vec<String> = (0..iters).map(|_| key.proof("/auth/reissue")).collect();
                let started = Instant::now();
                for jwt in &proofs {
                    let proof = reissue_core::DpopProof::new(jwt, "POST", &origin, "/auth/reissue");
                    let pair = rt
                        .block_on(reissue.reissue_with_proof(&bound_rt, &client, Some(&proof)))
                        .unwrap();
                    bound_rt = pair.refresh_token;
                }
                started.elapsed()
            })
        });
        group.bench_function("reissue_unbound", |b| {
            b.iter(|| {
                let pair = rt.block_on(reissue.reissue(&unbound_rt, &client)).unwrap();
                unbound_rt = pair.refresh_token;
            })
        });
        let jwt = key.proof("/auth/reissue");
        let (message, signature) = jwt.rsplit_once('.').unwrap();
        group.bench_function("signature_verify", |b| {
            b.iter(|| {
                assert!(
                    jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key.raw, alg)
                        .unwrap()
                )
            })
        });
        group.finish();
    }
}

criterion_group!(benches, verify, dpop, reissue_redis);
criterion_main!(benches);
