//! The smallest actix-web app with reissue: the README's example, compiled by CI.
//!
//! `JWT_SECRET=$(head -c32 /dev/urandom | base64) cargo run -p actix-app --example minimal`

use std::sync::Arc;

use actix_web::{App, HttpServer, web};
use reissue_actix::{AuthUser, ReissueMiddleware};
use reissue_core::{Algorithm, Config, Key, KeySet, Reissue, UserClaims, store::MemoryStore};
use reissue_diesel::UserStore;

async fn me(user: AuthUser<UserClaims>) -> String {
    format!("hello {} (session {})", user.claims.email, user.session_id)
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let users = UserStore::connect("sqlite://minimal.sqlite")?;
    users.run_migrations().await?;
    let store = Arc::new(MemoryStore::new()); // or RedisStore::connect("redis://127.0.0.1:6379").await?
    let secret = std::env::var("JWT_SECRET")?;
    let keys = KeySet::new(Key::hmac("k1", Algorithm::HS256, secret.as_bytes())?)?;
    let reissue = Reissue::builder(Config::new("my-app", "my-app"), keys, store, users).build()?;

    HttpServer::new(move || {
        App::new()
            .configure(reissue_actix::configure(reissue.clone()))
            .service(
                web::resource("/me")
                    .wrap(ReissueMiddleware::new(reissue.verifier().clone()))
                    .to(me),
            )
    })
    .bind("127.0.0.1:3000")?
    .run()
    .await?;
    Ok(())
}
