//! The load rows: what each runs, and what each is compared with.

use crate::fixtures::{self, Cache, Scheme};
use crate::load::{self, Fixed, Load, Measurement};
use crate::report::{self, Goal, LoadRow, Outcome, Ratio};
use crate::{Plan, apps, redis};
use reissue_core::RevocationMode;

type Runner = Box<dyn Fn(Load) -> Result<Measurement, String>>;

/// A load row to run.
pub(crate) struct Spec {
    pub(crate) key: &'static str,
    group: &'static str,
    pub(crate) name: String,
    unit: &'static str,
    note: Option<&'static str>,
    run: Result<Runner, String>,
}

/// `GET /me` on a fresh server: 200 and the user id, every time.
fn get_me(start: impl Fn() -> Result<apps::Target, String> + 'static) -> Runner {
    Box::new(move |load| {
        let target = start()?;
        let headers: Vec<(&str, &str)> = target
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        let exchange = Fixed::get("/me", &headers, fixtures::USER_ID);
        load::run(target.server.addr, load, |_| Box::new(exchange.clone()))
    })
}

/// Rotations on a fresh server: each connection logs in once, then rotates
/// its own refresh token on every request.
fn rotating(
    redis_url: &str,
    start: impl Fn(&str) -> Result<apps::Target, String> + 'static,
) -> Runner {
    rotating_as(redis_url, None, start)
}

/// [`rotating`], every request sending `user_agent`.
fn rotating_as(
    redis_url: &str,
    user_agent: Option<&'static str>,
    start: impl Fn(&str) -> Result<apps::Target, String> + 'static,
) -> Runner {
    let url = redis_url.to_owned();
    Box::new(move |load| {
        let target = start(&url)?;
        load::run(target.server.addr, load, |i| {
            Box::new(redis::Rotating::new(i, user_agent))
        })
    })
}

pub(crate) fn specs(redis_url: &str, prefix: &str, redis_ok: &Result<(), String>) -> Vec<Spec> {
    let spec = |key, group, name: &str, note, run| Spec {
        key,
        group,
        name: name.to_owned(),
        unit: "req/s",
        note,
        run: Ok(run),
    };
    let (on, off) = (Cache::On, Cache::Off);
    let mut v = vec![
        spec(
            "axum.bare",
            "axum 0.8",
            "bare route",
            None,
            get_me(apps::axum_bare),
        ),
        spec(
            "axum.reissue.hs256",
            "axum 0.8",
            "reissue layer HS256",
            None,
            get_me(move || apps::axum_reissue(Scheme::Hs256, on)),
        ),
        spec(
            "axum.reissue.hs256.metrics",
            "axum 0.8",
            "reissue layer HS256, Prometheus recorder attached",
            None,
            get_me(apps::axum_reissue_metered),
        ),
        spec(
            "memory.reissue.strict",
            "memory store",
            "reissue layer HS256, strict revocation, memory store",
            None,
            get_me(|| apps::axum_reissue_memory(RevocationMode::Strict)),
        ),
        spec(
            "memory.reissue.instant",
            "memory store",
            "reissue layer HS256, instant revocation, memory store",
            None,
            get_me(|| apps::axum_reissue_memory(RevocationMode::Instant)),
        ),
        spec(
            "memory.session-guard",
            "memory store",
            "session-guard 0.3 layer, memory store",
            Some("opaque cookie session: one store read + risk checks per request, no JWT"),
            get_me(|| apps::session_guard(None)),
        ),
        spec(
            "axum.reissue.hs256.nocache",
            "axum 0.8",
            "reissue layer HS256, cache off",
            None,
            get_me(move || apps::axum_reissue(Scheme::Hs256, off)),
        ),
        spec(
            "axum.reissue.eddsa",
            "axum 0.8",
            "reissue layer EdDSA",
            None,
            get_me(move || apps::axum_reissue(Scheme::EdDsa, on)),
        ),
        spec(
            "axum.reissue.eddsa.nocache",
            "axum 0.8",
            "reissue layer EdDSA, cache off",
            None,
            get_me(move || apps::axum_reissue(Scheme::EdDsa, off)),
        ),
        spec(
            "axum.jwt-auth.hs256",
            "axum 0.8",
            "axum-jwt-auth 0.7 HS256",
            None,
            get_me(|| apps::axum_jwt_auth(Scheme::Hs256)),
        ),
        spec(
            "axum.jwt-auth.eddsa",
            "axum 0.8",
            "axum-jwt-auth 0.7 EdDSA",
            None,
            get_me(|| apps::axum_jwt_auth(Scheme::EdDsa)),
        ),
        spec(
            "axum07.bare",
            "axum 0.7",
            "bare route",
            None,
            get_me(apps::axum07_bare),
        ),
        spec(
            "axum07.jwt-authorizer.hs256",
            "axum 0.7",
            "jwt-authorizer 0.15 HS256",
            None,
            get_me(|| apps::jwt_authorizer(Scheme::Hs256)),
        ),
        spec(
            "axum07.jwt-authorizer.eddsa",
            "axum 0.7",
            "jwt-authorizer 0.15 EdDSA",
            None,
            get_me(|| apps::jwt_authorizer(Scheme::EdDsa)),
        ),
        spec(
            "actix.bare",
            "actix-web 4",
            "bare route",
            None,
            get_me(apps::actix_bare),
        ),
        spec(
            "actix.reissue.hs256",
            "actix-web 4",
            "reissue middleware HS256",
            None,
            get_me(move || apps::actix_reissue(Scheme::Hs256, on)),
        ),
        spec(
            "actix.reissue.hs256.nocache",
            "actix-web 4",
            "reissue middleware HS256, cache off",
            None,
            get_me(move || apps::actix_reissue(Scheme::Hs256, off)),
        ),
        spec(
            "actix.reissue.eddsa",
            "actix-web 4",
            "reissue middleware EdDSA",
            None,
            get_me(move || apps::actix_reissue(Scheme::EdDsa, on)),
        ),
        spec(
            "actix.reissue.eddsa.nocache",
            "actix-web 4",
            "reissue middleware EdDSA, cache off",
            None,
            get_me(move || apps::actix_reissue(Scheme::EdDsa, off)),
        ),
        spec(
            "actix.jwt-auth-mw.hs256",
            "actix-web 4",
            "actix-jwt-auth-middleware 0.5 HS256",
            Some("token in an `access_token` header; checks signature and exp only"),
            get_me(|| apps::actix_jwt_auth_middleware(Scheme::Hs256)),
        ),
        spec(
            "actix.jwt-auth-mw.eddsa",
            "actix-web 4",
            "actix-jwt-auth-middleware 0.5 EdDSA",
            Some("as above"),
            get_me(|| apps::actix_jwt_auth_middleware(Scheme::EdDsa)),
        ),
        spec(
            "actix.httpauth.hs256",
            "actix-web 4",
            "actix-web-httpauth + jsonwebtoken HS256",
            None,
            get_me(|| apps::actix_httpauth(Scheme::Hs256)),
        ),
        spec(
            "actix.httpauth.eddsa",
            "actix-web 4",
            "actix-web-httpauth + jsonwebtoken EdDSA",
            None,
            get_me(|| apps::actix_httpauth(Scheme::EdDsa)),
        ),
    ];
    let redis_rows: Vec<(&'static str, &str, &'static str, Runner)> = vec![
        (
            "redis.stateless",
            "reissue layer HS256, stateless",
            "req/s",
            {
                let (url, prefix) = (redis_url.to_owned(), prefix.to_owned());
                get_me(move || apps::axum_reissue_redis(&url, &prefix, RevocationMode::Stateless))
            },
        ),
        (
            "redis.instant",
            "reissue layer HS256, instant revocation (default)",
            "req/s",
            {
                let (url, prefix) = (redis_url.to_owned(), prefix.to_owned());
                get_me(move || apps::axum_reissue_redis(&url, &prefix, RevocationMode::Instant))
            },
        ),
        (
            "redis.strict",
            "reissue layer HS256, strict revocation",
            "req/s",
            {
                let (url, prefix) = (redis_url.to_owned(), prefix.to_owned());
                get_me(move || apps::axum_reissue_redis(&url, &prefix, RevocationMode::Strict))
            },
        ),
        (
            "redis.session-guard",
            "session-guard 0.3 layer, its Redis store",
            "req/s",
            {
                let (url, prefix) = (redis_url.to_owned(), prefix.to_owned());
                get_me(move || apps::session_guard(Some((&url, &prefix))))
            },
        ),
        (
            "redis.reissue",
            "POST /auth/reissue (rotation, axum)",
            "req/s",
            {
                let prefix = prefix.to_owned();
                rotating(redis_url, move |url| {
                    redis::reissue_endpoint(url, &prefix, false)
                })
            },
        ),
        (
            "redis.reissue.browser",
            "POST /auth/reissue, a browser's User-Agent on every request",
            "req/s",
            {
                let prefix = prefix.to_owned();
                rotating_as(redis_url, Some(redis::BROWSER_UA), move |url| {
                    redis::reissue_endpoint(url, &prefix, false)
                })
            },
        ),
        (
            "redis.reissue.metrics",
            "POST /auth/reissue, Prometheus recorder attached",
            "req/s",
            {
                let prefix = prefix.to_owned();
                rotating(redis_url, move |url| {
                    redis::reissue_endpoint(url, &prefix, true)
                })
            },
        ),
        (
            "redis.reissue.limit",
            "same stack: one EVALSHA `return 1` + two tokens signed",
            "req/s",
            rotating(redis_url, redis::reissue_limit),
        ),
        (
            "redis.raw",
            "raw fred EVALSHA `return 1`, no HTTP",
            "ops/s",
            {
                let url = redis_url.to_owned();
                Box::new(move |load| redis::raw_evalsha(&url, load))
            },
        ),
    ];
    for (key, name, unit, run) in redis_rows {
        let run = match redis_ok {
            Ok(()) => Ok(run),
            Err(e) => Err(e.clone()),
        };
        v.push(Spec {
            key,
            group: "Redis",
            name: name.to_owned(),
            unit,
            note: None,
            run,
        });
    }
    v
}

/// (row, numerator, denominator, goal, what the ratio is). `SELF` is the row.
/// A row's first ratio is the one charted. Against the peers, the ratio that
/// carries the goal is reissue with its verified-token cache off: every
/// request then verifies a signature, as with every peer.
const SELF: &str = "";
const GOALS: &[(&str, &str, &str, Option<f64>, &str)] = &[
    (
        "axum.reissue.hs256",
        SELF,
        "axum.bare",
        Some(0.9),
        "÷ axum bare",
    ),
    (
        "axum.reissue.hs256.nocache",
        SELF,
        "axum.bare",
        Some(0.9),
        "÷ axum bare",
    ),
    (
        "axum.reissue.eddsa",
        SELF,
        "axum.bare",
        Some(0.9),
        "÷ axum bare",
    ),
    (
        "axum.reissue.eddsa.nocache",
        SELF,
        "axum.bare",
        Some(0.9),
        "÷ axum bare",
    ),
    (
        "axum.jwt-auth.hs256",
        "axum.reissue.hs256.nocache",
        SELF,
        Some(1.0),
        "reissue HS256 cache off ÷ this",
    ),
    (
        "axum.jwt-auth.hs256",
        "axum.reissue.hs256",
        SELF,
        None,
        "reissue HS256 (default) ÷ this",
    ),
    (
        "axum.jwt-auth.eddsa",
        "axum.reissue.eddsa.nocache",
        SELF,
        Some(1.0),
        "reissue EdDSA cache off ÷ this",
    ),
    (
        "axum.jwt-auth.eddsa",
        "axum.reissue.eddsa",
        SELF,
        None,
        "reissue EdDSA (default) ÷ this",
    ),
    (
        "axum07.jwt-authorizer.hs256",
        "axum.reissue.hs256.nocache",
        SELF,
        Some(1.0),
        "reissue HS256 cache off (axum 0.8) ÷ this",
    ),
    (
        "axum07.jwt-authorizer.hs256",
        "axum.reissue.hs256",
        SELF,
        None,
        "reissue HS256 (default, axum 0.8) ÷ this",
    ),
    (
        "axum07.jwt-authorizer.eddsa",
        "axum.reissue.eddsa.nocache",
        SELF,
        Some(1.0),
        "reissue EdDSA cache off (axum 0.8) ÷ this",
    ),
    (
        "axum07.jwt-authorizer.eddsa",
        "axum.reissue.eddsa",
        SELF,
        None,
        "reissue EdDSA (default, axum 0.8) ÷ this",
    ),
    (
        "actix.reissue.hs256",
        SELF,
        "actix.bare",
        Some(0.9),
        "÷ actix bare",
    ),
    (
        "actix.reissue.hs256.nocache",
        SELF,
        "actix.bare",
        Some(0.9),
        "÷ actix bare",
    ),
    (
        "actix.reissue.eddsa",
        SELF,
        "actix.bare",
        Some(0.9),
        "÷ actix bare",
    ),
    (
        "actix.reissue.eddsa.nocache",
        SELF,
        "actix.bare",
        Some(0.9),
        "÷ actix bare",
    ),
    (
        "actix.jwt-auth-mw.hs256",
        "actix.reissue.hs256.nocache",
        SELF,
        Some(1.0),
        "reissue HS256 cache off ÷ this",
    ),
    (
        "actix.jwt-auth-mw.hs256",
        "actix.reissue.hs256",
        SELF,
        None,
        "reissue HS256 (default) ÷ this",
    ),
    (
        "actix.jwt-auth-mw.eddsa",
        "actix.reissue.eddsa.nocache",
        SELF,
        Some(1.0),
        "reissue EdDSA cache off ÷ this",
    ),
    (
        "actix.jwt-auth-mw.eddsa",
        "actix.reissue.eddsa",
        SELF,
        None,
        "reissue EdDSA (default) ÷ this",
    ),
    (
        "actix.httpauth.hs256",
        "actix.reissue.hs256.nocache",
        SELF,
        Some(1.0),
        "reissue HS256 cache off ÷ this",
    ),
    (
        "actix.httpauth.hs256",
        "actix.reissue.hs256",
        SELF,
        None,
        "reissue HS256 (default) ÷ this",
    ),
    (
        "actix.httpauth.eddsa",
        "actix.reissue.eddsa.nocache",
        SELF,
        Some(1.0),
        "reissue EdDSA cache off ÷ this",
    ),
    (
        "actix.httpauth.eddsa",
        "actix.reissue.eddsa",
        SELF,
        None,
        "reissue EdDSA (default) ÷ this",
    ),
    (
        "redis.instant",
        SELF,
        "redis.stateless",
        Some(0.95),
        "÷ stateless",
    ),
    (
        "redis.strict",
        SELF,
        "redis.stateless",
        // Strict by leases answers from the feed, as instant mode does (issue 26).
        Some(0.95),
        "÷ stateless",
    ),
    (
        "redis.reissue",
        SELF,
        "redis.reissue.limit",
        Some(0.8),
        "÷ same-stack limit",
    ),
    ("redis.reissue", SELF, "redis.raw", None, "÷ raw EVALSHA"),
    (
        "redis.reissue.browser",
        SELF,
        "redis.reissue",
        Some(0.95),
        "÷ without a User-Agent",
    ),
    (
        "redis.reissue.metrics",
        SELF,
        "redis.reissue",
        Some(0.95),
        "÷ without metrics",
    ),
    (
        "axum.reissue.hs256.metrics",
        SELF,
        "axum.reissue.hs256",
        Some(0.95),
        "÷ without metrics",
    ),
    (
        "redis.session-guard",
        "redis.strict",
        SELF,
        Some(1.0),
        "reissue strict ÷ this",
    ),
    (
        "redis.session-guard",
        "redis.instant",
        SELF,
        Some(1.0),
        "reissue instant ÷ this",
    ),
    (
        "memory.session-guard",
        "memory.reissue.strict",
        SELF,
        Some(1.0),
        "reissue strict ÷ this",
    ),
    (
        "memory.session-guard",
        "memory.reissue.instant",
        SELF,
        Some(1.0),
        "reissue instant ÷ this",
    ),
];

/// The bare route of the same stack, for the "÷ bare" column.
fn bare_of(key: &str) -> Option<&'static str> {
    if key.ends_with(".bare") || key == "redis.raw" || key.starts_with("redis.reissue") {
        return None;
    }
    match key.split('.').next()? {
        "axum" | "redis" | "memory" => Some("axum.bare"),
        "axum07" => Some("axum07.bare"),
        "actix" => Some("actix.bare"),
        _ => None,
    }
}

pub(crate) fn run_loads(specs: &[Spec], plan: &Plan) -> Vec<LoadRow> {
    let mut best: Vec<Option<Result<Measurement, String>>> = specs.iter().map(|_| None).collect();
    let total = specs.len() * plan.passes;
    let mut n = 0;
    for pass in 0..plan.passes {
        for (i, spec) in specs.iter().enumerate() {
            n += 1;
            let Ok(run) = &spec.run else { continue };
            if matches!(best[i], Some(Err(_))) {
                continue;
            }
            eprint!("[{n}/{total}] pass {} {} ... ", pass + 1, spec.key);
            let m = run(plan.load).and_then(|m| {
                if m.completed == 0 {
                    Err("no request completed in the window".into())
                } else {
                    Ok(m)
                }
            });
            match &m {
                Ok(m) => eprintln!(
                    "{:.0} {} p50 {} p99 {}",
                    m.rate(),
                    spec.unit,
                    report::fmt_duration(m.percentile(0.5)),
                    report::fmt_duration(m.percentile(0.99))
                ),
                Err(e) => eprintln!("FAILED: {e}"),
            }
            best[i] = match (best[i].take(), m) {
                (Some(Ok(a)), Ok(b)) => Some(Ok(if b.rate() > a.rate() { b } else { a })),
                (_, m) => Some(m),
            };
        }
    }
    let mut rows: Vec<LoadRow> = specs
        .iter()
        .zip(best)
        .map(|(spec, m)| LoadRow {
            key: spec.key,
            group: spec.group,
            name: spec.name.clone(),
            unit: spec.unit,
            outcome: match (&spec.run, m) {
                (Err(why), _) => Outcome::NotRun(why.clone()),
                (Ok(_), Some(Ok(m))) => Outcome::Measured {
                    rate: m.rate(),
                    p50: m.percentile(0.5),
                    p99: m.percentile(0.99),
                },
                (Ok(_), Some(Err(e))) => Outcome::Failed(e),
                (Ok(_), None) => Outcome::NotRun("skipped".into()),
            },
            vs_bare: None,
            ratios: Vec::new(),
            note: spec.note.map(str::to_owned),
        })
        .collect();
    let rate_of =
        |rows: &[LoadRow], key: &str| rows.iter().find(|r| r.key == key).and_then(LoadRow::rate);
    for i in 0..rows.len() {
        let key = rows[i].key;
        let own = rows[i].rate();
        rows[i].vs_bare = bare_of(key).and_then(|b| Some(own? / rate_of(&rows, b)?));
        for &(_, num, den, goal, of) in GOALS.iter().filter(|g| g.0 == key) {
            let pick = |k: &str| if k == SELF { own } else { rate_of(&rows, k) };
            if let (Some(a), Some(b)) = (pick(num), pick(den)) {
                rows[i].ratios.push(Ratio {
                    value: a / b,
                    of: of.to_owned(),
                    goal: goal.map(Goal::AtLeast),
                });
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_goal_names_rows_that_exist() {
        let specs = specs("redis://127.0.0.1:1", "unused:", &Ok(()));
        let keys: Vec<&str> = specs.iter().map(|s| s.key).collect();
        for &(row, num, den, _, _) in GOALS {
            for k in [row, num, den].into_iter().filter(|k| *k != SELF) {
                assert!(keys.contains(&k), "goal names an unknown row {k:?}");
            }
        }
        for k in &keys {
            if let Some(bare) = bare_of(k) {
                assert!(keys.contains(&bare), "{k}: unknown bare row {bare}");
            }
        }
    }
}
