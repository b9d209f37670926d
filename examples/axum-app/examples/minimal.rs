//! The smallest axum app with reissue: the README's example, compiled by CI.
//!
//! `JWT_SECRET=$(head -c32 /dev/urandom | base64) cargo run -p axum-app --example minimal`

use std::net::SocketAddr;
use std::sync::Arc;

use axum::{Router, routing::get};
use reissue_core::{Algorithm, Config, Key, KeySet, Reissue, UserClaims, store::MemoryStore};
use reissue_diesel::UserStore;
use reissue_tower::{AuthUser, DrainBodyLayer, ReissueLayer};

async fn me(AuthUser(user): AuthUser<UserClaims>) -> String {
    format!("hello {} (session {})", user.claims.email, user.session_id)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let users = UserStore::connect("sqlite://minimal.sqlite")?;
    users.run_migrations().await?;
    let store = Arc::new(MemoryStore::new()); // or RedisStore::connect("redis://127.0.0.1:6379").await?
    let secret = std::env::var("JWT_SECRET")?;
    let keys = KeySet::new(Key::hmac("k1", Algorithm::HS256, secret.as_bytes())?)?;
    let reissue = Reissue::builder(Config::new("my-app", "my-app"), keys, store, users).build()?;

    let app = Router::new()
        .route("/me", get(me))
        // route_layer: only matched routes, so unknown paths stay 404
        .route_layer(ReissueLayer::new(reissue.verifier().clone()))
        .merge(reissue_tower::router(reissue)) // POST /auth/login, /auth/reissue, ...
        // last, over everything: early answers reach clients still sending a body
        .layer(DrainBodyLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
