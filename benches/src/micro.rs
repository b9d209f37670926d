//! In-process micro measurements: token verification per algorithm against
//! a raw `jsonwebtoken::decode`, and the cost of one argon2 hash.

use std::hint::black_box;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reissue_core::{AccessClaims, Key, KeySet, SessionId, TokenCodec, UserClaims};

use crate::fixtures::{AUDIENCE, Cache, HS256_SECRET, ISSUER, LEEWAY, Scheme, pem};
use crate::report::{self, MicroRow};
use crate::{Plan, apps, redis};

/// Time per operation, best of `rounds` timed loops of `budget` each (the
/// best round is the one least disturbed by the rest of the machine).
pub(crate) fn time_per_op(rounds: usize, budget: Duration, mut op: impl FnMut()) -> Duration {
    // Calibrate: how many calls fill about a tenth of the budget.
    let mut batch = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..batch {
            op();
        }
        if t.elapsed() >= budget / 10 || batch >= 1 << 30 {
            break;
        }
        batch *= 2;
    }
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let (t, mut n) = (Instant::now(), 0u64);
        while t.elapsed() < budget {
            for _ in 0..batch {
                op();
            }
            n += batch;
        }
        best = best.min(t.elapsed() / n.max(1) as u32);
    }
    best
}

/// Verification cost of one algorithm: reissue and the raw floor.
#[derive(Debug, Clone)]
pub(crate) struct VerifyCost {
    pub(crate) alg: &'static str,
    pub(crate) reissue: Duration,
    pub(crate) raw: Duration,
    /// A raw decode into `{sub}` only: what the peers' handlers ask for.
    pub(crate) raw_sub_only: Duration,
}

/// `TokenCodec::verify_access` vs `jsonwebtoken::decode` of the same token with
/// the same `Validation` (reissue also checks `typ` and `kid`), per algorithm.
pub(crate) fn verify(rounds: usize, budget: Duration) -> Vec<VerifyCost> {
    let cases: [(&str, Key, DecodingKey); 4] = [
        (
            "HS256",
            Key::hmac("k", Algorithm::HS256, HS256_SECRET.as_bytes()).expect("key"),
            DecodingKey::from_secret(HS256_SECRET.as_bytes()),
        ),
        (
            "RS256",
            Key::from_private_pem("k", Algorithm::RS256, pem::RSA).expect("key"),
            DecodingKey::from_rsa_pem(pem::RSA_PUB).expect("key"),
        ),
        (
            "ES256",
            Key::from_private_pem("k", Algorithm::ES256, pem::EC).expect("key"),
            DecodingKey::from_ec_pem(pem::EC_PUB).expect("key"),
        ),
        (
            "EdDSA",
            Key::from_private_pem("k", Algorithm::EdDSA, pem::ED).expect("key"),
            DecodingKey::from_ed_pem(pem::ED_PUB).expect("key"),
        ),
    ];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    cases
        .into_iter()
        .map(|(alg, key, raw_key)| {
            let algorithm = key.algorithm();
            let codec = TokenCodec::new(
                KeySet::new(key).expect("signing key"),
                ISSUER,
                AUDIENCE,
                LEEWAY,
            );
            let claims = UserClaims::new("alice@example.com", vec!["user".to_owned()]);
            let token = codec
                .issue_access("42", &SessionId::random(), &claims, now, 3600)
                .expect("token");
            let mut validation = Validation::new(algorithm);
            validation.set_issuer(&[ISSUER]);
            validation.set_audience(&[AUDIENCE]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            validation.leeway = LEEWAY;
            validation.validate_nbf = true;
            let raw = || {
                jsonwebtoken::decode::<AccessClaims<UserClaims>>(
                    black_box(&token),
                    &raw_key,
                    &validation,
                )
            };
            let sub_only = || {
                jsonwebtoken::decode::<crate::fixtures::Subject>(
                    black_box(&token),
                    &raw_key,
                    &validation,
                )
            };
            let ours = || codec.verify_access::<UserClaims>(black_box(&token));
            assert!(
                raw().is_ok() && ours().is_ok() && sub_only().is_ok(),
                "{alg}: the token must verify every way"
            );
            // Interleave them so that all see the same machine state.
            let (mut r, mut o, mut s) = (Duration::MAX, Duration::MAX, Duration::MAX);
            for _ in 0..rounds {
                o = o.min(time_per_op(1, budget, || drop(black_box(ours()))));
                r = r.min(time_per_op(1, budget, || drop(black_box(raw()))));
                s = s.min(time_per_op(1, budget, || drop(black_box(sub_only()))));
            }
            VerifyCost {
                alg,
                reissue: o,
                raw: r,
                raw_sub_only: s,
            }
        })
        .collect()
}

/// EdDSA with jwt-compact (actix-jwt-auth-middleware's JWT crate), which
/// keeps the parsed public key, and the parse itself, which jsonwebtoken 11
/// repeats for every token (its verifier is built per `decode`).
pub(crate) fn ed25519_key_reuse(rounds: usize, budget: Duration) -> (Duration, Duration) {
    use jwt_compact::alg::{Ed25519, VerifyingKey as _};
    use jwt_compact::{AlgorithmExt as _, UntrustedToken};
    type Key = <Ed25519 as jwt_compact::Algorithm>::VerifyingKey;
    let raw = crate::fixtures::Scheme::ed25519_public_raw();
    let key = Key::from_slice(&raw).expect("Ed25519 key");
    let (_, token) = crate::fixtures::stateless(Scheme::EdDsa, Cache::Off);
    let validate = || {
        let untrusted = UntrustedToken::new(black_box(&token)).expect("a JWT");
        Ed25519
            .validator::<crate::fixtures::Subject>(&key)
            .validate(&untrusted)
    };
    assert!(validate().is_ok(), "jwt-compact verifies the EdDSA token");
    let (mut v, mut p) = (Duration::MAX, Duration::MAX);
    for _ in 0..rounds {
        v = v.min(time_per_op(1, budget, || drop(black_box(validate()))));
        p = p.min(time_per_op(1, budget, || {
            drop(black_box(Key::from_slice(black_box(&raw))))
        }));
    }
    (v, p)
}

/// Time of one argon2id hash with reissue-diesel's default parameters, and
/// the parameters, best of `n`.
pub(crate) fn argon2_hash(n: usize) -> (Duration, String) {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let p = reissue_diesel::Argon2Params::default();
    let params = argon2::Params::new(p.memory_kib(), p.iterations(), p.parallelism(), None)
        .expect("valid params");
    let argon2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"sixteen byte salt").expect("salt");
    let mut best = Duration::MAX;
    for _ in 0..n {
        let t = Instant::now();
        black_box(
            argon2
                .hash_password(b"correct horse battery staple", &salt)
                .expect("hash"),
        );
        best = best.min(t.elapsed());
    }
    (
        best,
        format!(
            "m={} KiB, t={}, p={}",
            p.memory_kib(),
            p.iterations(),
            p.parallelism()
        ),
    )
}

/// Cost of one `GET /me` through an axum router in-process (no socket, no
/// HTTP parsing): what the auth layer adds, free of network noise.
pub(crate) fn axum_in_process(
    router: axum::Router,
    token: &str,
    rounds: usize,
    budget: Duration,
) -> Duration {
    use tower::ServiceExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let auth = format!("Bearer {token}");
    let request = || {
        axum::http::Request::get("/me")
            .header("authorization", auth.as_str())
            .body(axum::body::Body::empty())
            .expect("request")
    };
    let status = rt
        .block_on(router.clone().oneshot(request()))
        .expect("infallible")
        .status();
    assert_eq!(status, 200, "in-process GET /me");
    time_per_op(rounds, budget, || {
        let response = rt
            .block_on(router.clone().oneshot(request()))
            .expect("infallible");
        black_box(response);
    })
}

// ---------------------------------------------------------------- the rows

pub(crate) fn rows(
    plan: &Plan,
    only: Option<&str>,
    redis_url: &str,
    prefix: &str,
    redis_ok: &Result<(), String>,
) -> Vec<MicroRow> {
    let wanted = |section: &str| only.is_none_or(|o| section.contains(o));
    let mut rows = Vec::new();
    if wanted("micro.verify") {
        micro_verify(plan, &mut rows);
        micro_ed25519(plan, &mut rows);
    }
    if wanted("micro.in-process") {
        micro_in_process(plan, &mut rows);
    }
    if wanted("micro.redis-bytes") {
        micro_redis_bytes(redis_url, prefix, redis_ok, &mut rows);
    }
    if wanted("micro.redis-script") {
        micro_redis_script(plan, redis_url, prefix, redis_ok, &mut rows);
    }
    if wanted("micro.revocation-propagation") {
        micro_revocation_propagation(plan, redis_url, prefix, redis_ok, &mut rows);
    }
    if wanted("micro.strict-logout") {
        for k in [3, 10] {
            micro_strict_logout(plan, redis_url, prefix, redis_ok, k, &mut rows);
        }
    }
    if wanted("micro.argon2") {
        micro_argon2(plan, &mut rows);
    }
    rows
}

fn micro_verify(plan: &Plan, rows: &mut Vec<MicroRow>) {
    eprintln!("verify per algorithm ...");
    for c in verify(plan.verify_rounds, plan.verify_budget) {
        let value = c.raw.as_secs_f64() / c.reissue.as_secs_f64();
        rows.push(MicroRow {
            name: format!("verify {} (one thread)", c.alg),
            value: format!("{} / token", report::fmt_duration(c.reissue)),
            baseline: format!(
                "{} (jsonwebtoken::decode, same claims type); {} (decode into `{{sub}}` only)",
                report::fmt_duration(c.raw),
                report::fmt_duration(c.raw_sub_only)
            ),
            ratio: Some(format!("{value:.2}× throughput of raw decode")),
            goal: "≥ 0.87× (cost ≤ 1.15×, reissue-core's bench goal)".to_owned(),
            met: Some(value >= 1.0 / 1.15),
        });
    }
}

fn micro_ed25519(plan: &Plan, rows: &mut Vec<MicroRow>) {
    let (validate, parse) = ed25519_key_reuse(plan.verify_rounds, plan.verify_budget);
    rows.push(MicroRow {
        name: "EdDSA check with a kept, parsed key (jwt-compact)".to_owned(),
        value: String::new(),
        baseline: format!("{} / token", report::fmt_duration(validate)),
        ratio: None,
        goal: String::new(),
        met: None,
    });
    rows.push(MicroRow {
        name: "Ed25519 public key parse, which jsonwebtoken 11 repeats per token".to_owned(),
        value: String::new(),
        baseline: format!("{} / parse", report::fmt_duration(parse)),
        ratio: None,
        goal: String::new(),
        met: None,
    });
}

fn micro_in_process(plan: &Plan, rows: &mut Vec<MicroRow>) {
    eprintln!("in-process axum cost per request ...");
    type RouterAndToken = Result<(axum::Router, String), String>;
    let cases: Vec<(&str, RouterAndToken)> = vec![
        (
            "bare route",
            Ok((
                apps::axum_bare_router(),
                crate::fixtures::stateless(Scheme::Hs256, Cache::Off).1,
            )),
        ),
        (
            "reissue layer HS256",
            Ok(apps::axum_reissue_router(Scheme::Hs256, Cache::On)),
        ),
        (
            "reissue layer HS256, cache off",
            Ok(apps::axum_reissue_router(Scheme::Hs256, Cache::Off)),
        ),
        (
            "axum-jwt-auth HS256",
            apps::axum_jwt_auth_router(Scheme::Hs256),
        ),
        (
            "reissue layer EdDSA",
            Ok(apps::axum_reissue_router(Scheme::EdDsa, Cache::On)),
        ),
        (
            "reissue layer EdDSA, cache off",
            Ok(apps::axum_reissue_router(Scheme::EdDsa, Cache::Off)),
        ),
        (
            "axum-jwt-auth EdDSA",
            apps::axum_jwt_auth_router(Scheme::EdDsa),
        ),
    ];
    for (name, case) in cases {
        let value = match case {
            Ok((router, token)) => report::fmt_duration(axum_in_process(
                router,
                &token,
                plan.verify_rounds,
                plan.verify_budget,
            )),
            Err(e) => format!("not run: {e}"),
        };
        rows.push(MicroRow {
            name: format!("axum GET /me in-process: {name}"),
            value,
            baseline: String::new(),
            ratio: None,
            goal: String::new(),
            met: None,
        });
    }
}

fn micro_redis_bytes(
    redis_url: &str,
    prefix: &str,
    redis_ok: &Result<(), String>,
    rows: &mut Vec<MicroRow>,
) {
    eprintln!("Redis bytes per session ...");
    match redis_ok
        .clone()
        .and_then(|()| redis::session_bytes(redis_url, prefix))
    {
        Ok(sizes) => {
            for s in sizes {
                rows.push(MicroRow {
                    name: format!("Redis bytes per session: {}", s.label),
                    value: format!("{:.0} B", s.bytes),
                    baseline: "MEMORY USAGE of the user's key (sessions + index)".to_owned(),
                    ratio: None,
                    goal: "≤ 200 B".to_owned(),
                    met: Some(s.bytes <= 200.0),
                });
            }
        }
        Err(e) => rows.push(MicroRow {
            name: "Redis bytes per session".to_owned(),
            value: format!("not run: {e}"),
            baseline: String::new(),
            ratio: None,
            goal: String::new(),
            met: None,
        }),
    }
}

fn micro_redis_script(
    plan: &Plan,
    redis_url: &str,
    prefix: &str,
    redis_ok: &Result<(), String>,
    rows: &mut Vec<MicroRow>,
) {
    eprintln!("Redis time per script ...");
    let n = if plan.passes > 1 { 5000 } else { 1000 };
    let row = match redis_ok
        .clone()
        .and_then(|()| redis::script_cost(redis_url, prefix, n))
    {
        Ok(c) => MicroRow {
            name: "Redis execution time per EVALSHA (INFO commandstats)".to_owned(),
            value: format!("{:.1} µs / rotation", c.rotate_us),
            baseline: format!("{:.1} µs / `return 1`", c.trivial_us),
            ratio: Some(format!(
                "{:.1}× the trivial script; one Redis core runs at most {:.0} k rotations/s. \
                 Its three redis.calls alone (TIME, GET, SETRANGE, same argument shape): \
                 {:.1} µs, {:.1}× the trivial script",
                c.rotate_us / c.trivial_us,
                1e3 / c.rotate_us,
                c.floor_us,
                c.floor_us / c.trivial_us,
            )),
            goal: "≤ 3× `return 1`".to_owned(),
            met: Some(c.rotate_us <= 3.0 * c.trivial_us),
        },
        Err(e) => MicroRow {
            name: "Redis execution time per EVALSHA".to_owned(),
            value: format!("not run: {e}"),
            baseline: String::new(),
            ratio: None,
            goal: String::new(),
            met: None,
        },
    };
    rows.push(row);
}

fn micro_revocation_propagation(
    plan: &Plan,
    redis_url: &str,
    prefix: &str,
    redis_ok: &Result<(), String>,
    rows: &mut Vec<MicroRow>,
) {
    eprintln!("instant revocation: propagation to two other instances ...");
    let n = if plan.passes > 1 { 2000 } else { 300 };
    let row = match redis_ok
        .clone()
        .and_then(|()| redis::propagation(redis_url, prefix, n))
    {
        Ok(p) => MicroRow {
            name: "instant revocation: logout on one instance → refused on two others".to_owned(),
            value: format!(
                "p50 {}, p99 {}, max {}",
                report::fmt_duration(p.p50),
                report::fmt_duration(p.p99),
                report::fmt_duration(p.max)
            ),
            baseline: format!(
                "{n} logouts, three instances on one Redis, from the logout's return"
            ),
            ratio: None,
            goal: "p99 ≤ 50 ms".to_owned(),
            met: Some(p.p99 <= Duration::from_millis(50)),
        },
        Err(e) => MicroRow {
            name: "instant revocation propagation".to_owned(),
            value: format!("not run: {e}"),
            baseline: String::new(),
            ratio: None,
            goal: String::new(),
            met: None,
        },
    };
    rows.push(row);
}

fn micro_strict_logout(
    plan: &Plan,
    redis_url: &str,
    prefix: &str,
    redis_ok: &Result<(), String>,
    k: usize,
    rows: &mut Vec<MicroRow>,
) {
    eprintln!("strict revocation: logout latency with {k} lease holders ...");
    let n = if plan.passes > 1 { 2000 } else { 300 };
    let row = match redis_ok
        .clone()
        .and_then(|()| redis::strict_logout(redis_url, prefix, k, n))
    {
        Ok(p) => MicroRow {
            name: format!("strict revocation: logout with {k} lease holders, until it returns"),
            value: format!(
                "p50 {}, p99 {}, max {}",
                report::fmt_duration(p.p50),
                report::fmt_duration(p.p99),
                report::fmt_duration(p.max)
            ),
            baseline: format!(
                "{n} logouts, {k} strict instances on one Redis, each holding its lease"
            ),
            ratio: None,
            goal: if k == 3 {
                "p99 ≤ 20 ms".to_owned()
            } else {
                String::new()
            },
            met: (k == 3).then_some(p.p99 <= Duration::from_millis(20)),
        },
        Err(e) => MicroRow {
            name: format!("strict revocation: logout with {k} lease holders"),
            value: format!("not run: {e}"),
            baseline: String::new(),
            ratio: None,
            goal: String::new(),
            met: None,
        },
    };
    rows.push(row);
}

fn micro_argon2(plan: &Plan, rows: &mut Vec<MicroRow>) {
    eprintln!("argon2 ...");
    let (per_hash, params) = argon2_hash(plan.argon2_hashes);
    rows.push(MicroRow {
        name: "argon2id hash (reissue-diesel defaults)".to_owned(),
        value: format!("{} / hash", report::fmt_duration(per_hash)),
        baseline: params,
        ratio: Some(format!(
            "{:.0} logins/s per core",
            1.0 / per_hash.as_secs_f64()
        )),
        goal: String::new(),
        met: None,
    });
}
