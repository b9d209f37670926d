//! The servers under test. Every one serves `GET /me`: the bare routes answer
//! a constant, the others the `sub` of the verified token, which is the
//! same bytes (`42`), so every row does the same work except the check.

use reissue_core::RevocationMode;
use std::sync::Arc;

use actix_web::{App, HttpServer, web};
use reissue_core::UserClaims;
use reissue_core::store::MemoryStore;

use crate::fixtures::{self, AUDIENCE, Cache, ISSUER, LEEWAY, Scheme, Subject, USER_ID, pem};
use crate::server::{Server, spawn_actix, spawn_axum, spawn_axum07};

/// A server and how to call it.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) server: Server,
    /// Extra request headers (`Authorization: Bearer ...`).
    pub(crate) headers: Vec<(&'static str, String)>,
}

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

/// The bare routes get the same request as the others, token included
/// (ignored), so that every row reads the same bytes.
fn same_request() -> Vec<(&'static str, String)> {
    bearer(&fixtures::stateless(Scheme::Hs256, Cache::Off).1)
}

// ---------------------------------------------------------------- axum 0.8

async fn bare_me() -> &'static str {
    USER_ID
}

pub(crate) fn axum_bare_router() -> axum::Router {
    axum::Router::new().route("/me", axum::routing::get(bare_me))
}

pub(crate) fn axum_bare() -> Result<Target, String> {
    let (server, ()) = spawn_axum("axum-bare", || async { Ok(((), axum_bare_router())) })?;
    Ok(Target {
        server,
        headers: same_request(),
    })
}

async fn reissue_me(user: reissue_tower::AuthUser<UserClaims>) -> String {
    user.user_id.clone()
}

pub(crate) fn reissue_router(verifier: reissue_core::Verifier<UserClaims>) -> axum::Router {
    axum::Router::new()
        .route("/me", axum::routing::get(reissue_me))
        .route_layer(reissue_tower::ReissueLayer::new(verifier))
}

/// The reissue layer on a stateless verifier, and a token for it.
pub(crate) fn axum_reissue_router(scheme: Scheme, cache: Cache) -> (axum::Router, String) {
    let (reissue, token) = fixtures::stateless(scheme, cache);
    (reissue_router(reissue.verifier().clone()), token)
}

pub(crate) fn axum_reissue(scheme: Scheme, cache: Cache) -> Result<Target, String> {
    let (router, token) = axum_reissue_router(scheme, cache);
    let (server, ()) = spawn_axum("axum-reissue", move || async move { Ok(((), router)) })?;
    Ok(Target {
        server,
        headers: bearer(&token),
    })
}

/// [`axum_reissue`] (HS256, cache on) with the example apps' Prometheus
/// recorder attached: what metrics cost a protected request.
pub(crate) fn axum_reissue_metered() -> Result<Target, String> {
    let (reissue, token) = fixtures::logged_in(fixtures::metered(
        Scheme::Hs256,
        Arc::new(MemoryStore::new()),
        RevocationMode::Stateless,
        Cache::On,
    ));
    let router = reissue_router(reissue.verifier().clone());
    let (server, ()) = spawn_axum(
        "axum-reissue-metered",
        move || async move { Ok(((), router)) },
    )?;
    Ok(Target {
        server,
        headers: bearer(&token),
    })
}

/// reissue checking sessions in the memory store (strict: every request asks
/// it; instant: the in-process revocation set), beside session-guard's
/// memory store.
pub(crate) fn axum_reissue_memory(mode: RevocationMode) -> Result<Target, String> {
    let (server, token) = spawn_axum("axum-reissue-memory", move || async move {
        let reissue =
            fixtures::reissue(Scheme::Hs256, Arc::new(MemoryStore::new()), mode, Cache::On);
        let token = fixtures::access_token(&reissue, USER_ID).await;
        Ok((token, reissue_router(reissue.verifier().clone())))
    })?;
    Ok(Target {
        server,
        headers: bearer(&token),
    })
}

/// session-guard 0.3 with its defaults: its layer authenticates `/me` by the
/// session cookie, one store read per request plus its risk checks; the
/// session was logged in from the load generator's address and user agent
/// (none), so no check steps up. On its own Redis store (`redis` = url and
/// key prefix) or its memory store.
pub(crate) fn session_guard(redis: Option<(&str, &str)>) -> Result<Target, String> {
    use session_guard::{
        AuthSession, ClientContext, Guard, MemoryStore, SessionStore, ValkeyStore,
    };

    async fn me(session: AuthSession<String>) -> String {
        session.subject
    }
    async fn guarded<St: SessionStore>(store: St) -> Result<(String, axum::Router), String> {
        let guard = Guard::builder(store, Default::default())
            .subject::<String>()
            .build();
        let ctx = ClientContext::new([127, 0, 0, 1].into());
        let session = guard
            .login(&USER_ID.to_owned(), &ctx, None)
            .await
            .map_err(|e| format!("session-guard login: {e}"))?;
        let cookie = format!("__Host-sid={}", session.token.expose());
        let router = axum::Router::new()
            .route("/me", axum::routing::get(me))
            .layer(guard.layer());
        Ok((cookie, router))
    }
    let redis = redis.map(|(url, prefix)| (url.to_owned(), format!("{prefix}sg:")));
    let (server, cookie) = spawn_axum("session-guard", move || async move {
        match redis {
            Some((url, prefix)) => {
                let store = ValkeyStore::connect(&url)
                    .await
                    .map_err(|e| format!("Redis: {e}"))?
                    .key_prefix(prefix);
                guarded(store).await
            }
            None => guarded(MemoryStore::new()).await,
        }
    })?;
    Ok(Target {
        server,
        headers: vec![("cookie", cookie)],
    })
}

/// reissue on a Redis store: the same app as [`axum_reissue`], strict or
/// stateless. The session is created on the server's runtime (fred's
/// connections live there) and its access token is returned.
pub(crate) fn axum_reissue_redis(
    redis_url: &str,
    prefix: &str,
    mode: RevocationMode,
) -> Result<Target, String> {
    let (url, prefix) = (redis_url.to_owned(), prefix.to_owned());
    let (server, token) = spawn_axum("axum-reissue-redis", move || async move {
        let store = reissue_core::store::RedisStore::builder(url)
            .key_prefix(prefix)
            .connect()
            .await
            .map_err(|e| format!("Redis: {e}"))?;
        let reissue = fixtures::reissue(Scheme::Hs256, Arc::new(store), mode, Cache::On);
        let token = fixtures::access_token(&reissue, USER_ID).await;
        Ok((token, reissue_router(reissue.verifier().clone())))
    })?;
    Ok(Target {
        server,
        headers: bearer(&token),
    })
}

/// axum-jwt-auth with the same checks reissue makes, as far as jsonwebtoken
/// can express them (not `typ`), and a token for it.
pub(crate) fn axum_jwt_auth_router(scheme: Scheme) -> Result<(axum::Router, String), String> {
    use axum_jwt_auth::{Claims, Decoder, LocalDecoder};
    use jsonwebtoken10::{Algorithm, DecodingKey, Validation};

    async fn me(claims: Claims<Subject>) -> String {
        claims.claims.sub
    }
    let (_, token) = fixtures::stateless(scheme, Cache::Off);
    let (key, alg) = match scheme {
        Scheme::Hs256 => (
            DecodingKey::from_secret(fixtures::HS256_SECRET.as_bytes()),
            Algorithm::HS256,
        ),
        Scheme::EdDsa => (
            DecodingKey::from_ed_pem(pem::ED_PUB).map_err(|e| e.to_string())?,
            Algorithm::EdDSA,
        ),
    };
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = LEEWAY;
    validation.validate_nbf = true;
    let decoder = LocalDecoder::builder()
        .keys(vec![key])
        .validation(validation)
        .build()
        .map_err(|e| e.to_string())?;
    let decoder: Decoder<Subject> = Arc::new(decoder);
    Ok((
        axum::Router::new()
            .route("/me", axum::routing::get(me))
            .with_state(decoder),
        token,
    ))
}

pub(crate) fn axum_jwt_auth(scheme: Scheme) -> Result<Target, String> {
    let (router, token) = axum_jwt_auth_router(scheme)?;
    let (server, ()) = spawn_axum("axum-jwt-auth", move || async move { Ok(((), router)) })?;
    Ok(Target {
        server,
        headers: bearer(&token),
    })
}

// ---------------------------------------------------------------- axum 0.7

pub(crate) fn axum07_bare_router() -> axum07::Router {
    async fn me() -> &'static str {
        USER_ID
    }
    axum07::Router::new().route("/me", axum07::routing::get(me))
}

pub(crate) fn axum07_bare() -> Result<Target, String> {
    let server = spawn_axum07("axum07-bare", axum07_bare_router())?;
    Ok(Target {
        server,
        headers: same_request(),
    })
}

pub(crate) fn jwt_authorizer(scheme: Scheme) -> Result<Target, String> {
    let (router, token) = jwt_authorizer_router(scheme)?;
    let server = spawn_axum07("jwt-authorizer", router)?;
    Ok(Target {
        server,
        headers: bearer(&token),
    })
}

pub(crate) fn jwt_authorizer_router(scheme: Scheme) -> Result<(axum07::Router, String), String> {
    use jwt_authorizer::{IntoLayer, JwtAuthorizer, JwtClaims, Validation};

    async fn me(JwtClaims(subject): JwtClaims<Subject>) -> String {
        subject.sub
    }
    let (_, token) = fixtures::stateless(scheme, Cache::Off);
    let builder: JwtAuthorizer<Subject> = match scheme {
        Scheme::Hs256 => JwtAuthorizer::from_secret(fixtures::HS256_SECRET),
        Scheme::EdDsa => JwtAuthorizer::from_ed_pem_text(
            std::str::from_utf8(pem::ED_PUB).map_err(|e| e.to_string())?,
        ),
    };
    let validation = Validation::new()
        .iss(&[ISSUER])
        .aud(&[AUDIENCE])
        .nbf(true)
        .leeway(LEEWAY);
    // Building is async (it can fetch a JWKS); these key sources are local.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let authorizer = rt
        .block_on(builder.validation(validation).build())
        .map_err(|e| e.to_string())?;
    let router = axum07::Router::new()
        .route("/me", axum07::routing::get(me))
        .layer(authorizer.into_layer());
    Ok((router, token))
}

// ---------------------------------------------------------------- actix-web

/// One worker: the server gets one core, the load generator the other.
macro_rules! actix_server {
    ($name:expr, $app:expr) => {{
        let app = $app;
        spawn_actix($name, move |listener| {
            Ok(HttpServer::new(app).workers(1).listen(listener)?.run())
        })
    }};
}

pub(crate) async fn actix_bare_me() -> &'static str {
    USER_ID
}

pub(crate) fn actix_bare() -> Result<Target, String> {
    let server = actix_server!("actix-bare", || App::new()
        .route("/me", web::get().to(actix_bare_me)))?;
    Ok(Target {
        server,
        headers: same_request(),
    })
}

pub(crate) fn actix_reissue(scheme: Scheme, cache: Cache) -> Result<Target, String> {
    async fn me(user: reissue_actix::AuthUser<UserClaims>) -> String {
        user.user_id.clone()
    }
    let (reissue, token) = fixtures::stateless(scheme, cache);
    let verifier = reissue.verifier().clone();
    let server = actix_server!("actix-reissue", move || {
        App::new().service(
            web::resource("/me")
                .wrap(reissue_actix::ReissueMiddleware::new(verifier.clone()))
                .route(web::get().to(me)),
        )
    })?;
    Ok(Target {
        server,
        headers: bearer(&token),
    })
}

/// actix-jwt-auth-middleware's claims must be extractable by its own derive.
#[derive(
    Debug, Clone, serde::Serialize, serde::Deserialize, actix_jwt_auth_middleware::FromRequest,
)]
struct JwtCompactSubject {
    sub: String,
}

pub(crate) fn actix_jwt_auth_middleware(scheme: Scheme) -> Result<Target, String> {
    use actix_jwt_auth_middleware::{AuthenticationService, Authority};
    use jwt_compact::alg::{Ed25519, Hs256, Hs256Key, VerifyingKey as _};

    async fn me(subject: JwtCompactSubject) -> String {
        subject.sub
    }
    let (_, token) = fixtures::stateless(scheme, Cache::Off);
    // Its `Authorization: Bearer` reading hands the whole header value,
    // scheme included, to the JWT parser (0.5.0, authority.rs), so every such
    // request fails; it also reads a header named after the token. That
    // header it is, with the same token.
    let headers = vec![("access_token", token)];
    macro_rules! serve {
        ($alg:expr, $key:expr) => {{
            let (alg, key) = ($alg, $key);
            actix_server!("actix-jwt-auth-middleware", move || {
                let authority = Authority::<JwtCompactSubject, _, _, _>::new()
                    .refresh_authorizer(|| async move { Ok(()) })
                    .renew_access_token_automatically(false)
                    .enable_cookie_tokens(false)
                    .enable_header_tokens(true)
                    .access_token_name("access_token")
                    .algorithm(alg.clone())
                    .time_options(jwt_compact::TimeOptions::default())
                    .verifying_key(key.clone())
                    .build()
                    .expect("a valid authority");
                App::new().service(
                    web::scope("")
                        .wrap(AuthenticationService::new(authority))
                        .route("/me", web::get().to(me)),
                )
            })?
        }};
    }
    let server = match scheme {
        Scheme::Hs256 => serve!(Hs256, Hs256Key::new(fixtures::HS256_SECRET.as_bytes())),
        Scheme::EdDsa => serve!(
            Ed25519,
            <Ed25519 as jwt_compact::Algorithm>::VerifyingKey::from_slice(
                &Scheme::ed25519_public_raw()
            )
            .map_err(|e| e.to_string())?
        ),
    };
    Ok(Target { server, headers })
}

/// actix-web-httpauth's bearer extractor with a jsonwebtoken validator: what
/// an application hand-rolls.
pub(crate) fn actix_httpauth(scheme: Scheme) -> Result<Target, String> {
    let (token, check) = actix_httpauth_check(scheme)?;
    let server = actix_server!("actix-httpauth", move || httpauth_app(check.clone()))?;
    Ok(Target {
        server,
        headers: bearer(&token),
    })
}

/// What [`httpauth_app`]'s validator checks with.
pub(crate) type HttpauthCheck = Arc<(jsonwebtoken::DecodingKey, jsonwebtoken::Validation)>;

/// [`actix_httpauth`]'s key and validation, and a token for it.
pub(crate) fn actix_httpauth_check(scheme: Scheme) -> Result<(String, HttpauthCheck), String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let (_, token) = fixtures::stateless(scheme, Cache::Off);
    let (key, alg) = match scheme {
        Scheme::Hs256 => (
            DecodingKey::from_secret(fixtures::HS256_SECRET.as_bytes()),
            Algorithm::HS256,
        ),
        Scheme::EdDsa => (
            DecodingKey::from_ed_pem(pem::ED_PUB).map_err(|e| e.to_string())?,
            Algorithm::EdDSA,
        ),
    };
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = LEEWAY;
    validation.validate_nbf = true;
    Ok((token, Arc::new((key, validation))))
}

/// actix-web-httpauth's app: its bearer middleware on `/me`.
pub(crate) fn httpauth_app(
    check: HttpauthCheck,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    use actix_web::HttpMessage;
    use actix_web::dev::ServiceRequest;
    use actix_web_httpauth::extractors::bearer::BearerAuth;
    use actix_web_httpauth::middleware::HttpAuthentication;

    async fn me(subject: web::ReqData<Subject>) -> String {
        subject.into_inner().sub
    }
    let validator = move |req: ServiceRequest, credentials: BearerAuth| {
        let check = check.clone();
        async move {
            match jsonwebtoken::decode::<Subject>(credentials.token(), &check.0, &check.1) {
                Ok(data) => {
                    req.extensions_mut().insert(data.claims);
                    Ok(req)
                }
                Err(_) => Err((actix_web::error::ErrorUnauthorized("invalid token"), req)),
            }
        }
    };
    App::new().service(
        web::resource("/me")
            .wrap(HttpAuthentication::with_fn(validator))
            .route(web::get().to(me)),
    )
}
