//! Instructions per request, counted by callgrind: the in-process rows
//! (bare routes, each reissue variant, each peer), free of the machine's
//! noise. Same binary, same input: the same count on every run.
//!
//! `cargo run --release -p reissue-benches -- --instructions [--only <substring>]`
//!
//! Each row runs twice under `valgrind --tool=callgrind`, once with
//! [`SHORT`] requests and once with [`LONG`]; the difference of the two
//! totals divided by the difference of the request counts is the cost of
//! one request, with start-up, key set-up and the first (checked) request
//! cancelled out. Every response is checked (status 200, body `42`).

use std::process::Command;

use actix_web::{App, web};
use reissue_core::UserClaims;

use crate::apps;
use crate::fixtures::{self, Cache, Scheme, USER_ID};

/// Requests of the short and the long run of each row.
const SHORT: u64 = 200;
const LONG: u64 = 1200;

/// One request of a row, checked.
type Request = Box<dyn FnMut()>;

/// How to set a row up.
type Setup = fn() -> Result<Request, String>;

/// The rows: a name, and how to set one up.
fn cases() -> Vec<(&'static str, Setup)> {
    vec![
        ("axum bare route", || {
            Ok(axum(apps::axum_bare_router(), &bare_token()))
        }),
        ("axum reissue HS256", || {
            reissue_axum(Scheme::Hs256, Cache::On)
        }),
        ("axum reissue HS256, cache off", || {
            reissue_axum(Scheme::Hs256, Cache::Off)
        }),
        ("axum reissue EdDSA", || {
            reissue_axum(Scheme::EdDsa, Cache::On)
        }),
        ("axum reissue EdDSA, cache off", || {
            reissue_axum(Scheme::EdDsa, Cache::Off)
        }),
        ("axum-jwt-auth HS256", || {
            apps::axum_jwt_auth_router(Scheme::Hs256).map(|(r, t)| axum(r, &t))
        }),
        ("axum-jwt-auth EdDSA", || {
            apps::axum_jwt_auth_router(Scheme::EdDsa).map(|(r, t)| axum(r, &t))
        }),
        ("axum 0.7 bare route", || {
            Ok(axum07(apps::axum07_bare_router(), &bare_token()))
        }),
        ("jwt-authorizer HS256", || {
            apps::jwt_authorizer_router(Scheme::Hs256).map(|(r, t)| axum07(r, &t))
        }),
        ("jwt-authorizer EdDSA", || {
            apps::jwt_authorizer_router(Scheme::EdDsa).map(|(r, t)| axum07(r, &t))
        }),
        ("actix bare route", || {
            Ok(actix(
                || App::new().route("/me", web::get().to(apps::actix_bare_me)),
                bearer(&bare_token()),
            ))
        }),
        ("actix reissue HS256", || {
            Ok(reissue_actix(Scheme::Hs256, Cache::On))
        }),
        ("actix reissue HS256, cache off", || {
            Ok(reissue_actix(Scheme::Hs256, Cache::Off))
        }),
        ("actix reissue EdDSA", || {
            Ok(reissue_actix(Scheme::EdDsa, Cache::On))
        }),
        ("actix reissue EdDSA, cache off", || {
            Ok(reissue_actix(Scheme::EdDsa, Cache::Off))
        }),
        ("actix-web-httpauth HS256", || httpauth(Scheme::Hs256)),
        ("actix-web-httpauth EdDSA", || httpauth(Scheme::EdDsa)),
    ]
}

fn bare_token() -> String {
    fixtures::stateless(Scheme::Hs256, Cache::Off).1
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

fn reissue_axum(scheme: Scheme, cache: Cache) -> Result<Request, String> {
    let (router, token) = apps::axum_reissue_router(scheme, cache);
    Ok(axum(router, &token))
}

/// `GET /me` through an axum 0.8 router, on a current-thread runtime.
fn axum(router: axum::Router, token: &str) -> Request {
    use tower::ServiceExt;
    let rt = runtime();
    let auth = format!("Bearer {token}");
    Box::new(move || {
        let request = axum::http::Request::get("/me")
            .header("authorization", auth.as_str())
            .body(axum::body::Body::empty())
            .expect("request");
        let response = rt
            .block_on(router.clone().oneshot(request))
            .expect("infallible");
        assert_eq!(response.status(), 200, "GET /me");
        let body = rt
            .block_on(axum::body::to_bytes(response.into_body(), 64))
            .expect("body");
        assert_eq!(&body[..], USER_ID.as_bytes());
    })
}

/// The same through an axum 0.7 router (jwt-authorizer's stack).
fn axum07(router: axum07::Router, token: &str) -> Request {
    use tower::ServiceExt;
    let rt = runtime();
    let auth = format!("Bearer {token}");
    Box::new(move || {
        let request = axum07::http::Request::get("/me")
            .header("authorization", auth.as_str())
            .body(axum07::body::Body::empty())
            .expect("request");
        let response = rt
            .block_on(router.clone().oneshot(request))
            .expect("infallible");
        assert_eq!(response.status(), 200, "GET /me");
        let body = rt
            .block_on(axum07::body::to_bytes(response.into_body(), 64))
            .expect("body");
        assert_eq!(&body[..], USER_ID.as_bytes());
    })
}

/// `GET /me` through an actix-web app's service, built once.
fn actix<F, T>(app: F, header: (&'static str, String)) -> Request
where
    F: FnOnce() -> App<T>,
    T: actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
{
    let system = actix_web::rt::System::new();
    let service = system.block_on(actix_web::test::init_service(app()));
    Box::new(move || {
        let request = actix_web::test::TestRequest::get()
            .uri("/me")
            .insert_header((header.0, header.1.as_str()))
            .to_request();
        let body = system.block_on(async {
            let response = actix_web::test::call_service(&service, request).await;
            assert_eq!(response.status(), 200, "GET /me");
            actix_web::test::read_body(response).await
        });
        assert_eq!(&body[..], USER_ID.as_bytes());
    })
}

fn reissue_actix(scheme: Scheme, cache: Cache) -> Request {
    async fn me(user: reissue_actix::AuthUser<UserClaims>) -> String {
        user.user_id.clone()
    }
    let (reissue, token) = fixtures::stateless(scheme, cache);
    let verifier = reissue.verifier().clone();
    actix(
        move || {
            App::new().service(
                web::resource("/me")
                    .wrap(reissue_actix::ReissueMiddleware::new(verifier))
                    .route(web::get().to(me)),
            )
        },
        bearer(&token),
    )
}

fn httpauth(scheme: Scheme) -> Result<Request, String> {
    let (token, check) = apps::actix_httpauth_check(scheme)?;
    Ok(actix(move || apps::httpauth_app(check), bearer(&token)))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The child: `--in-process <row> <requests>`, run under callgrind.
pub(crate) fn run_one(name: &str, requests: u64) -> Result<(), String> {
    let (_, setup) = cases()
        .into_iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| format!("no in-process row {name:?}"))?;
    let mut request = setup()?;
    for _ in 0..requests {
        request();
    }
    Ok(())
}

/// Runs the child under callgrind and reads its total instruction count.
fn count(name: &str, requests: u64) -> Result<u64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(exe)
        .args(["--in-process", name, &requests.to_string()])
        .output()
        .map_err(|e| format!("valgrind: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "{name}: {}",
            stderr.lines().last().unwrap_or("failed")
        ));
    }
    stderr
        .lines()
        .find_map(|l| {
            l.split_once("Collected :")
                .map(|(_, n)| n.trim().parse().ok())
        })
        .flatten()
        .ok_or_else(|| format!("{name}: no `Collected` line from callgrind"))
}

/// The parent: every row (or those matching `only`), as a Markdown table.
pub(crate) fn table(only: Option<&str>) -> String {
    let mut md = String::from("| in-process row | instructions / request |\n|---|---:|\n");
    for (name, _) in cases() {
        if only.is_some_and(|o| !name.contains(o)) {
            continue;
        }
        eprintln!("callgrind: {name} ...");
        let cell = match (count(name, SHORT), count(name, LONG)) {
            (Ok(short), Ok(long)) => {
                let per = long.saturating_sub(short) as f64 / (LONG - SHORT) as f64;
                format!("{per:.0}")
            }
            (Err(e), _) | (_, Err(e)) => format!("not run: {e}"),
        };
        md.push_str(&format!("| {name} | {cell} |\n"));
    }
    md
}
