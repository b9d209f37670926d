//! The layer, the extractors and the `/auth` router, against a real axum
//! server on 127.0.0.1:0 driven over TCP with reqwest.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::routing::get;
use reissue_core::store::{
    Created, MemoryStore, NewSession, RenewRequest, RotateRequest, Rotation, SessionInfo, SessionStore,
    Successor,
};
use reissue_core::{
    Algorithm, Authenticated, Authenticator, Config, Error, Key, KeySet, Reissue, RevocationMode,
    SessionId, UserClaims,
};
use reissue_tower::{AuthUser, DrainBodyLayer, ReissueLayer};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[derive(serde::Deserialize)]
struct Login {
    email: String,
    password: String,
}

/// Two users: `ada` (admin) and `bob`, both with password `pw`.
struct Users;

impl Authenticator for Users {
    type Credentials = Login;
    type Claims = UserClaims;

    fn account_key(&self, login: &Login) -> reissue_core::Result<String> {
        Ok(login.email.clone())
    }

    async fn authenticate(&self, login: Login) -> reissue_core::Result<Authenticated<UserClaims>> {
        match (login.email.as_str(), login.password.as_str()) {
            ("ada", "pw") => Ok(Authenticated::new(
                "1",
                UserClaims::new("ada", vec!["admin".into()]),
            )),
            ("bob", "pw") => Ok(Authenticated::new("2", UserClaims::new("bob", vec![]))),
            _ => Err(Error::InvalidCredentials),
        }
    }
}

/// The sessions of a memory store, whose liveness check can be made to
/// fail, as an unreachable Redis would.
#[derive(Debug, Default)]
struct FlakyStore {
    inner: Arc<MemoryStore>,
    down: AtomicBool,
}

#[async_trait]
impl SessionStore for FlakyStore {
    async fn create(&self, session: &NewSession) -> reissue_core::Result<Created> {
        self.inner.create(session).await
    }
    async fn rotate(&self, request: &RotateRequest<'_>) -> reissue_core::Result<Rotation> {
        self.inner.rotate(request).await
    }
    async fn renew(&self, r: &RenewRequest<'_>) -> reissue_core::Result<Option<Successor>> {
        self.inner.renew(r).await
    }
    async fn revoke(&self, user_id: &str, sid: &SessionId) -> reissue_core::Result<bool> {
        self.inner.revoke(user_id, sid).await
    }
    async fn revoke_all(&self, user_id: &str) -> reissue_core::Result<Vec<SessionId>> {
        self.inner.revoke_all(user_id).await
    }
    async fn list(&self, user_id: &str) -> reissue_core::Result<Vec<SessionInfo>> {
        self.inner.list(user_id).await
    }
    async fn is_live(&self, user_id: &str, sid: &SessionId) -> reissue_core::Result<bool> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::unavailable("connection refused"));
        }
        self.inner.is_live(user_id, sid).await
    }
}

struct Server {
    base: String,
    client: reqwest::Client,
    store: Arc<FlakyStore>,
}

async fn user(user: AuthUser<UserClaims>) -> String {
    user.claims.email.clone()
}

async fn maybe_user(user: Option<AuthUser<UserClaims>>) -> String {
    user.map_or_else(|| "anonymous".to_owned(), |u| u.claims.email.clone())
}

async fn start(strict: bool) -> Server {
    let store = Arc::new(FlakyStore::default());
    let key = Key::hmac("k1", Algorithm::HS256, &[7; 32]).unwrap();
    let config = Config::new("test", "test").revocation(if strict {
        RevocationMode::Strict
    } else {
        RevocationMode::Stateless
    });
    let reissue = Reissue::builder(
        config,
        KeySet::new(key).unwrap(),
        store.inner.clone(),
        Users,
    )
    .sessions(store.clone())
    .build()
    .unwrap();
    let verifier = reissue.verifier().clone();
    let app = Router::new()
        .merge(
            Router::new()
                .route("/required", get(user))
                .route_layer(ReissueLayer::new(verifier.clone())),
        )
        .merge(
            Router::new()
                .route("/optional", get(maybe_user))
                .route("/optional-strict-handler", get(user))
                .route_layer(ReissueLayer::new(verifier.clone()).optional()),
        )
        .merge(
            Router::new()
                .route("/admin", get(user))
                .route_layer(ReissueLayer::new(verifier).require_role("admin")),
        )
        .route("/no-layer", get(user))
        .route("/no-layer-optional", get(maybe_user))
        .merge(reissue_tower::router(reissue))
        .layer(DrainBodyLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Server {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        store,
    }
}

impl Server {
    async fn get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let res = req.send().await.unwrap();
        (
            res.status(),
            res.headers().clone(),
            res.text().await.unwrap(),
        )
    }

    async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        assert_eq!(
            res.headers()["content-type"],
            "application/json",
            "{path}: errors are JSON"
        );
        (status, res.json().await.unwrap())
    }

    async fn login(&self, email: &str) -> Value {
        let (status, body) = self
            .post_raw(
                "/auth/login",
                "application/json",
                json!({ "email": email, "password": "pw" }).to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn access(&self, email: &str) -> String {
        self.login(email).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

fn error_code(body: &str) -> String {
    serde_json::from_str::<Value>(body).unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn required_mode_follows_the_error_table() {
    let s = start(false).await;
    let (status, headers, body) = s.get("/required", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"reissue\"");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(error_code(&body), "unauthorized");

    let (status, headers, body) = s.get("/required", Some("not.a.jwt")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer realm=\"reissue\", error=\"invalid_token\", error_description=\"")
    );
    assert_eq!(error_code(&body), "invalid_token");

    let res = s
        .client
        .get(format!("{}/required", s.base))
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer realm=\"reissue\", error=\"invalid_request\""
    );
    assert_eq!(error_code(&res.text().await.unwrap()), "invalid_request");

    let token = s.access("bob").await;
    let (status, _, body) = s.get("/required", Some(&token)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "bob"));

    // The refresh token is not an access token.
    let refresh = s.login("bob").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, body) = s.get("/required", Some(&refresh)).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );

    // The scheme is case-insensitive.
    let res = s
        .client
        .get(format!("{}/required", s.base))
        .header("authorization", format!("bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn optional_mode_lets_anonymous_through_but_not_bad_tokens() {
    let s = start(false).await;
    assert_eq!(s.get("/optional", None).await.2, "anonymous");
    let (status, _, body) = s.get("/optional", Some("bad.token.here")).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    let token = s.access("bob").await;
    assert_eq!(s.get("/optional", Some(&token)).await.2, "bob");

    // A handler that needs a user behind an optional layer: 401, not the 500
    // of a missing layer.
    let (status, headers, body) = s.get("/optional-strict-handler", None).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"reissue\"");
}

#[tokio::test]
async fn role_mode_answers_403_insufficient_scope() {
    let s = start(false).await;
    let (status, headers, body) = s.get("/admin", Some(&s.access("bob").await)).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    assert_eq!(
        headers["www-authenticate"],
        "Bearer realm=\"reissue\", error=\"insufficient_scope\""
    );
    assert_eq!(s.get("/admin", Some(&s.access("ada").await)).await.2, "ada");
    assert_eq!(s.get("/admin", None).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_missing_layer_is_a_500_that_says_what_to_add() {
    let s = start(false).await;
    let token = s.access("bob").await;
    for path in ["/no-layer", "/no-layer-optional"] {
        let (status, headers, body) = s.get(path, Some(&token)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(headers["content-type"], "application/json");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], "server_error");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("ReissueLayer"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn stateless_mode_keeps_access_tokens_until_they_expire() {
    let s = start(false).await;
    let token = s.access("bob").await;
    let res = s
        .client
        .post(format!("{}/auth/logout", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(s.get("/required", Some(&token)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn strict_mode_refuses_ended_sessions_and_fails_closed() {
    let s = start(true).await;
    let token = s.access("bob").await;
    assert_eq!(s.get("/required", Some(&token)).await.0, StatusCode::OK);
    assert_eq!(s.get("/optional", Some(&token)).await.2, "bob");

    s.store.down.store(true, Ordering::SeqCst);
    let (status, headers, body) = s.get("/required", Some(&token)).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
    );
    assert!(headers.contains_key("retry-after"));
    s.store.down.store(false, Ordering::SeqCst);

    let res = s
        .client
        .post(format!("{}/auth/logout", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (status, headers, body) = s.get("/required", Some(&token)).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    assert_eq!(
        s.get("/optional", Some(&token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.get("/optional", None).await.2, "anonymous");
}

#[tokio::test]
async fn router_body_errors_are_json_invalid_request() {
    let s = start(false).await;
    let creds = json!({ "email": "bob", "password": "pw" }).to_string();
    let cases: [(&str, &str, Vec<u8>); 5] = [
        (
            "wrong content type",
            "text/plain",
            creds.clone().into_bytes(),
        ),
        (
            "form content type",
            "application/x-www-form-urlencoded",
            b"email=bob&password=pw".to_vec(),
        ),
        ("bad JSON", "application/json", b"{\"email\": ".to_vec()),
        (
            "wrong fields",
            "application/json",
            b"{\"user\": \"bob\"}".to_vec(),
        ),
        (
            "oversized",
            "application/json",
            vec![b' '; reissue_core::MAX_BODY_LEN + 4096],
        ),
    ];
    for (case, content_type, body) in cases {
        for path in ["/auth/login", "/auth/reissue", "/auth/logout"] {
            if path != "/auth/login" && case == "wrong fields" {
                continue;
            }
            let (status, json) = s.post_raw(path, content_type, body.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{case} at {path}: {json}");
            assert_eq!(json["error"], "invalid_request", "{case} at {path}");
        }
    }
    let (status, _) = s
        .post_raw("/auth/login", "application/json; charset=utf-8", creds)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn router_serves_the_auth_endpoints() {
    let s = start(false).await;
    let pair = s.login("bob").await;
    let access = pair["access_token"].as_str().unwrap();
    let refresh = pair["refresh_token"].as_str().unwrap();

    let res = s
        .client
        .post(format!("{}/auth/reissue", s.base))
        .bearer_auth(refresh)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let next: Value = res.json().await.unwrap();
    assert_ne!(next["refresh_token"], pair["refresh_token"]);

    // The session list carries the socket peer address (ConnectInfo).
    let (status, _, body) = s.get("/auth/sessions", Some(access)).await;
    assert_eq!(status, StatusCode::OK);
    let sessions: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sessions["sessions"][0]["ip"], "127.0.0.1");
    assert_eq!(sessions["sessions"][0]["current"], true);
    let sid = sessions["sessions"][0]["sid"].as_str().unwrap().to_owned();

    let delete = |path: String, token: Option<&str>| {
        let mut req = s.client.delete(format!("{}{path}", s.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    assert_eq!(
        delete("/auth/sessions/nope".into(), None)
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        delete("/auth/sessions/nope".into(), Some(access))
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete("/auth/sessions/%FF".into(), Some(access))
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete(format!("/auth/sessions/{sid}"), Some(access))
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );

    let other = s.access("bob").await;
    let res = s
        .client
        .post(format!("{}/auth/logout-all", s.base))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // Only an HMAC key: no JWKS.
    let (status, _, body) = s.get("/auth/jwks.json", None).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    assert_eq!(
        s.get("/auth/login", None).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn router_at_mounts_under_another_prefix() {
    let key = Key::hmac("k1", Algorithm::HS256, &[7; 32]).unwrap();
    let reissue = Reissue::builder(
        Config::new("t", "t"),
        KeySet::new(key).unwrap(),
        Arc::new(MemoryStore::new()),
        Users,
    )
    .build()
    .unwrap();
    let app = reissue_tower::router_at("/api/auth/", reissue);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/api/auth/login"))
        .json(&json!({ "email": "ada", "password": "pw" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// Served without `ConnectInfo`, the router cannot see peers: with an
/// address policy configured, login is refused rather than unchecked.
#[tokio::test]
async fn a_policy_without_peer_addresses_refuses_login() {
    for (allow_unknown, expected) in [(false, StatusCode::FORBIDDEN), (true, StatusCode::OK)] {
        let key = Key::hmac("k1", Algorithm::HS256, &[7; 32]).unwrap();
        let reissue = Reissue::builder(
            Config::new("t", "t").allow_unknown_client_address(allow_unknown),
            KeySet::new(key).unwrap(),
            Arc::new(MemoryStore::new()),
            Users,
        )
        .policy(reissue_core::policy::CidrRules::parse("", "192.0.2.0/24").unwrap())
        .build()
        .unwrap();
        let app = reissue_tower::router(reissue);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let res = reqwest::Client::new()
            .post(format!("http://{addr}/auth/login"))
            .json(&json!({ "email": "ada", "password": "pw" }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            expected,
            "allow_unknown_client_address({allow_unknown})"
        );
        if expected == StatusCode::FORBIDDEN {
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"], "access_denied");
        }
    }
}

/// hyper resets a connection whose request body is left unread; the drain
/// layer reads it away so that the client gets its 4xx, whoever answered.
#[tokio::test]
async fn oversized_bodies_still_get_their_answer() {
    let s = start(false).await;
    let body = format!(r#"{{"refresh_token":"{}"}}"#, "A".repeat(1024 * 1024));
    let cases = [
        (
            reqwest::Method::POST,
            "/auth/login",
            StatusCode::BAD_REQUEST,
        ),
        (
            reqwest::Method::POST,
            "/auth/reissue",
            StatusCode::BAD_REQUEST,
        ),
        (
            reqwest::Method::GET,
            "/auth/sessions",
            StatusCode::UNAUTHORIZED,
        ),
        (
            reqwest::Method::PUT,
            "/auth/login",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (reqwest::Method::GET, "/required", StatusCode::UNAUTHORIZED),
        (reqwest::Method::POST, "/nowhere", StatusCode::NOT_FOUND),
    ];
    for _ in 0..5 {
        for (method, path, expected) in &cases {
            let res = s
                .client
                .request(method.clone(), format!("{}{path}", s.base))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"));
            assert_eq!(res.status(), *expected, "{method} {path}");
        }
    }
}

/// The same, deterministically: the client sends the headers and part of a
/// body, pauses (the server answers meanwhile), sends the rest, and only
/// then reads. Without draining, the server has closed with unread data and
/// the answer is lost to a reset.
#[tokio::test]
async fn a_slow_oversized_body_still_gets_its_answer() {
    use std::io::{Read, Write};

    let s = start(false).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let slow_client = move || {
        for (path, expected) in [
            ("/required", "401"),
            ("/auth/login", "400"),
            ("/nowhere", "404"),
        ] {
            let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
            let len = 512 * 1024;
            let head = format!(
                "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"
            );
            tcp.write_all(head.as_bytes()).unwrap();
            tcp.write_all(&vec![b' '; 64 * 1024]).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            let rest = tcp.write_all(&vec![b' '; len - 64 * 1024]);
            assert!(rest.is_ok(), "{path}: the server stopped reading: {rest:?}");
            let mut answer = vec![0; 1024];
            let n = tcp
                .read(&mut answer)
                .unwrap_or_else(|e| panic!("{path}: no answer: {e}"));
            let answer = String::from_utf8_lossy(&answer[..n]);
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {expected}")),
                "{path}: {answer}"
            );
        }
    };
    tokio::task::spawn_blocking(slow_client).await.unwrap();
}

/// The refresh cookie is scoped to the prefix the client actually used,
/// also when the router is nested (axum strips the outer prefix from the URI).
#[tokio::test]
async fn cookie_path_follows_where_the_router_is_mounted() {
    let key = Key::hmac("k1", Algorithm::HS256, &[7; 32]).unwrap();
    let config = Config::new("t", "t").cookie_transport(reissue_core::CookieTransport::new());
    let reissue = Reissue::builder(
        config,
        KeySet::new(key).unwrap(),
        Arc::new(MemoryStore::new()),
        Users,
    )
    .build()
    .unwrap();
    let app = Router::new()
        .nest("/api", reissue_tower::router(reissue.clone()))
        .merge(reissue_tower::router_at("/v2/auth", reissue));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();
    let login = |prefix: &'static str| {
        http.post(format!("http://{addr}{prefix}/login"))
            .header("x-reissue-transport", "cookie")
            .json(&json!({ "email": "ada", "password": "pw" }))
            .send()
    };
    let cookie_of = |res: &reqwest::Response| {
        let all: Vec<&str> = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(all.len(), 1, "{all:?}");
        all[0].to_owned()
    };
    let res = login("/api/auth").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let nested = cookie_of(&res);
    assert!(nested.contains("; Path=/api/auth;"), "{nested}");
    let res = login("/v2/auth").await.unwrap();
    assert!(cookie_of(&res).contains("; Path=/v2/auth;"));
    // The nested cookie works where it is sent.
    let pair = nested.split(';').next().unwrap().to_owned();
    let res = http
        .post(format!("http://{addr}/api/auth/reissue"))
        .header("x-reissue-transport", "cookie")
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(cookie_of(&res).contains("; Path=/api/auth;"));
}
