//! In-process cost of a request through the whole axum app (router, layer,
//! extractor, handler, response), without the network: `GET /me` (HS256)
//! against `GET /health`, and how much of the difference is core's token
//! verification and the handler's bigger reply, the rest being the adapter.
//! Complements `loadtest.sh` when the machine is too busy for wrk figures to
//! mean much:
//!
//!     cargo run --release -p axum-app --example cpu_cost

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use axum::response::IntoResponse;
use example_common::{AppState, Settings};
use reissue_tower::ReplyResponse;
use tower::ServiceExt;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = std::env::temp_dir().join(format!("reissue-cpu-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("users.sqlite").display());
    let settings = Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some(db.clone()),
        "REISSUE_JWT_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
        _ => None,
    })
    .unwrap();
    let state = settings.build().await.unwrap();
    let app = axum_app::app(state.clone());
    let creds = r#"{"email":"cpu@example.com","password":"cpucost123"}"#;
    let post = |path: &str| {
        Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(creds))
            .unwrap()
    };
    app.clone().oneshot(post("/signup")).await.unwrap();
    let res = app.clone().oneshot(post("/auth/login")).await.unwrap();
    let body = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    let pair: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let token = pair["access_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");

    let verifier = state.reissue.verifier().clone();
    let identity = verifier.verify(&token).unwrap();
    let health = || Request::get("/health").body(Body::empty()).unwrap();
    let me = || {
        Request::get("/me")
            .header("authorization", bearer.as_str())
            .body(Body::empty())
            .unwrap()
    };
    for round in 1..=3 {
        let h = through_app(&app, health).await;
        let m = through_app(&app, me).await;
        let verify = best_of(|| drop(black_box(verifier.verify(black_box(&token)))));
        let me_reply = best_of(|| {
            drop(black_box(
                ReplyResponse(AppState::me(black_box(&identity))).into_response(),
            ))
        });
        let health_reply =
            best_of(|| drop(black_box(ReplyResponse(AppState::health()).into_response())));
        println!(
            "round {round}: /health {h:.2} µs, /me {m:.2} µs; of the {:.2} µs difference: core verify {verify:.2}, \
             bigger reply {:.2}, adapter {:.2}",
            m - h,
            me_reply - health_reply,
            m - h - verify - (me_reply - health_reply),
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

const BATCH: u32 = 20_000;

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// µs per call, the best of several batches: the least disturbed by other processes.
fn best_of(mut f: impl FnMut()) -> f64 {
    (0..10)
        .map(|_| {
            let start = Instant::now();
            (0..BATCH).for_each(|_| f());
            micros(start.elapsed() / BATCH)
        })
        .fold(f64::MAX, f64::min)
}

async fn through_app(app: &axum::Router, request: impl Fn() -> Request<Body>) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..10 {
        let start = Instant::now();
        for _ in 0..BATCH {
            let res = app.clone().oneshot(request()).await.unwrap();
            assert!(res.status().is_success());
            axum::body::to_bytes(res.into_body(), 1 << 16)
                .await
                .unwrap();
        }
        best = best.min(micros(start.elapsed() / BATCH));
    }
    best
}
