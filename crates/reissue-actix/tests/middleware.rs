//! The middleware, extractors and `/auth` routes against a real actix-web
//! server on 127.0.0.1:0, driven over TCP by reqwest.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use reissue_actix::{AuthUser, ReissueMiddleware};
use reissue_core::store::MemoryStore;
use reissue_core::{
    Algorithm, Authenticated, Authenticator, Config, Error, Key, KeySet, Reissue, Result,
    RevocationMode, UserClaims,
};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Login {
    email: String,
    password: String,
}

/// Two users, password `password1`; root is an admin.
struct TestUsers;

impl Authenticator for TestUsers {
    type Credentials = Login;
    type Claims = UserClaims;

    fn account_key(&self, credentials: &Login) -> reissue_core::Result<String> {
        Ok(credentials.email.to_lowercase())
    }

    async fn authenticate(&self, c: Login) -> Result<Authenticated<UserClaims>> {
        let (id, roles) = match c.email.as_str() {
            "alice@example.com" => ("1", vec![]),
            "root@example.com" => ("2", vec!["admin".to_owned()]),
            _ => return Err(Error::InvalidCredentials),
        };
        if c.password != "password1" {
            return Err(Error::InvalidCredentials);
        }
        Ok(Authenticated::new(id, UserClaims::new(c.email, roles)))
    }
}

fn reissue(strict: bool) -> Reissue<TestUsers> {
    let keys = KeySet::new(Key::hmac("k1", Algorithm::HS256, &[7; 32]).unwrap()).unwrap();
    let config = Config::new("test-issuer", "test-audience").revocation(if strict {
        RevocationMode::Strict
    } else {
        RevocationMode::Stateless
    });
    Reissue::builder(config, keys, Arc::new(MemoryStore::new()), TestUsers)
        .build()
        .unwrap()
}

async fn whoami(user: AuthUser<UserClaims>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "id": user.user_id, "email": user.claims.email }))
}

async fn maybe(user: Option<AuthUser<UserClaims>>) -> HttpResponse {
    match user {
        Some(user) => HttpResponse::Ok().json(json!({ "id": user.user_id })),
        None => HttpResponse::Ok().json(json!({ "anonymous": true })),
    }
}

struct Server {
    base: String,
    handle: ServerHandle,
    http: reqwest::Client,
}

impl Server {
    /// Serves `/required/me`, `/optional/me`, `/admin/me` (role admin),
    /// `/bare/me` (no middleware) and `/auth/*`.
    fn start(reissue: Reissue<TestUsers>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            let verifier = reissue.verifier().clone();
            App::new()
                .configure(reissue_actix::configure(reissue.clone()))
                .service(
                    web::scope("/required")
                        .wrap(ReissueMiddleware::from(&reissue))
                        .route("/me", web::get().to(whoami)),
                )
                .service(
                    web::scope("/optional")
                        .wrap(ReissueMiddleware::new(verifier.clone()).optional())
                        .route("/me", web::get().to(maybe))
                        .route("/strict-me", web::get().to(whoami)),
                )
                .service(
                    web::scope("/admin")
                        .wrap(ReissueMiddleware::new(verifier).require_role("admin"))
                        .route("/me", web::get().to(whoami)),
                )
                .route("/bare/me", web::get().to(whoami))
                .route("/bare/maybe", web::get().to(maybe))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self {
            base,
            handle,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(self.url(path));
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        req.send().await.unwrap()
    }

    /// Logs in; returns (access token, refresh token).
    async fn login(&self, email: &str) -> (String, String) {
        let res = self
            .http
            .post(self.url("/auth/login"))
            .json(&json!({ "email": email, "password": "password1" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// Status, `error` code, `WWW-Authenticate`; checks the body is the contract's JSON.
async fn error_of(res: reqwest::Response) -> (StatusCode, String, Option<String>) {
    let status = res.status();
    assert_eq!(
        res.headers()["content-type"],
        "application/json",
        "{status}"
    );
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = res.json().await.unwrap();
    assert!(body["error_description"].is_string(), "{body}");
    (
        status,
        body["error"].as_str().unwrap().to_owned(),
        challenge,
    )
}

#[actix_web::test]
async fn required_mode() {
    let server = Server::start(reissue(false));
    let (at, rt) = server.login("alice@example.com").await;

    let (status, code, challenge) = error_of(server.get("/required/me", None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    assert_eq!(challenge.as_deref(), Some(r#"Bearer realm="reissue""#));

    let res = server
        .http
        .get(server.url("/required/me"))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "unauthorized");

    let res = server
        .http
        .get(server.url("/required/me"))
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    let (status, code, challenge) = error_of(res).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    assert_eq!(
        challenge.as_deref(),
        Some(r#"Bearer realm="reissue", error="invalid_request""#)
    );

    let (status, code, challenge) = error_of(server.get("/required/me", Some("a.b.c")).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    assert!(
        challenge
            .unwrap()
            .starts_with(r#"Bearer realm="reissue", error="invalid_token", error_description=""#)
    );

    // a refresh token is not an access token
    let (status, code, _) = error_of(server.get("/required/me", Some(&rt)).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );

    let res = server.get("/required/me", Some(&at)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({ "id": "1", "email": "alice@example.com" }));

    // the scheme is case-insensitive
    let res = server
        .http
        .get(server.url("/required/me"))
        .header("authorization", format!("bearer {at}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    server.stop().await;
}

#[actix_web::test]
async fn optional_mode_and_option_extractor() {
    let server = Server::start(reissue(false));
    let (at, _) = server.login("alice@example.com").await;

    let res = server.get("/optional/me", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({ "anonymous": true })
    );

    let res = server.get("/optional/me", Some(&at)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({ "id": "1" }));

    // a present but invalid token is refused even where login is optional
    let (status, code, _) = error_of(server.get("/optional/me", Some("x.y.z")).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    let res = server
        .http
        .get(server.url("/optional/me"))
        .header("authorization", "Bearer a b")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.0, StatusCode::BAD_REQUEST);

    // AuthUser (required) on an anonymous request of an optional scope: 401, not 500
    let (status, code, challenge) = error_of(server.get("/optional/strict-me", None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    assert_eq!(challenge.as_deref(), Some(r#"Bearer realm="reissue""#));
    assert_eq!(
        server.get("/optional/strict-me", Some(&at)).await.status(),
        StatusCode::OK
    );
    server.stop().await;
}

#[actix_web::test]
async fn role_mode() {
    let server = Server::start(reissue(false));
    let (alice, _) = server.login("alice@example.com").await;
    let (root, _) = server.login("root@example.com").await;

    let (status, code, challenge) = error_of(server.get("/admin/me", Some(&alice)).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    assert_eq!(
        challenge.as_deref(),
        Some(r#"Bearer realm="reissue", error="insufficient_scope""#)
    );

    assert_eq!(
        error_of(server.get("/admin/me", None).await).await.0,
        StatusCode::UNAUTHORIZED
    );
    let res = server.get("/admin/me", Some(&root)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["id"], "2");
    server.stop().await;
}

#[actix_web::test]
async fn missing_middleware_says_what_to_add() {
    let server = Server::start(reissue(false));
    let (at, _) = server.login("alice@example.com").await;
    let res = server.get("/bare/me", Some(&at)).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "server_error");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains("ReissueMiddleware"), "{description}");
    assert!(description.contains("wrap"), "{description}");

    // Option<AuthUser> without the middleware: anonymous (actix-web's Option rule)
    let res = server.get("/bare/maybe", Some(&at)).await;
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({ "anonymous": true })
    );
    server.stop().await;
}

#[actix_web::test]
async fn stateless_mode_keeps_access_tokens_until_expiry() {
    let server = Server::start(reissue(false));
    let (at, rt) = server.login("alice@example.com").await;
    let res = server
        .http
        .post(server.url("/auth/logout"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        server.get("/required/me", Some(&at)).await.status(),
        StatusCode::OK
    );
    // but the session's refresh token is dead at once
    let res = server
        .http
        .post(server.url("/auth/reissue"))
        .bearer_auth(&rt)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "invalid_token");
    server.stop().await;
}

#[actix_web::test]
async fn strict_mode_refuses_ended_sessions() {
    let server = Server::start(reissue(true));
    let (at, _) = server.login("alice@example.com").await;
    let (other, _) = server.login("alice@example.com").await;
    assert_eq!(
        server.get("/required/me", Some(&at)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        server.get("/optional/me", Some(&at)).await.status(),
        StatusCode::OK
    );

    let res = server
        .http
        .post(server.url("/auth/logout"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for path in ["/required/me", "/optional/me", "/admin/me"] {
        let (status, code, challenge) = error_of(server.get(path, Some(&at)).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_token"),
            "{path}"
        );
        assert!(
            challenge.unwrap().contains("the session has ended"),
            "{path}"
        );
    }
    // the user's other session is untouched
    assert_eq!(
        server.get("/required/me", Some(&other)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        server.get("/optional/me", None).await.status(),
        StatusCode::OK
    );
    server.stop().await;
}

#[actix_web::test]
async fn auth_routes() {
    let server = Server::start(reissue(false));
    let (at, rt) = server.login("alice@example.com").await;

    let res = server
        .http
        .post(server.url("/auth/reissue"))
        .bearer_auth(&rt)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let pair: Value = res.json().await.unwrap();
    let rt2 = pair["refresh_token"].as_str().unwrap();
    assert_ne!(rt2, rt);

    // the refresh token in a JSON body works too
    let res = server
        .http
        .post(server.url("/auth/reissue"))
        .json(&json!({ "refresh_token": rt2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let res = server.get("/auth/sessions", Some(&at)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(
        sessions[0]["ip"], "127.0.0.1",
        "the socket peer address reaches core"
    );

    let res = server
        .http
        .delete(server.url("/auth/sessions/nope"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    let (status, code, challenge) = error_of(res).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    assert_eq!(challenge, None);

    let sid = sessions[0]["sid"].as_str().unwrap();
    let res = server
        .http
        .delete(server.url(&format!("/auth/sessions/{sid}")))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    let (at, _) = server.login("alice@example.com").await;
    let res = server
        .http
        .post(server.url("/auth/logout-all"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = server.get("/auth/sessions", None).await;
    assert_eq!(error_of(res).await.0, StatusCode::UNAUTHORIZED);

    // only an HMAC key: no JWKS
    assert_eq!(
        error_of(server.get("/auth/jwks.json", None).await).await.0,
        StatusCode::NOT_FOUND
    );

    let res = server
        .http
        .post(server.url("/auth/login"))
        .json(&json!({ "email": "alice@example.com", "password": "wrong-password" }))
        .send()
        .await
        .unwrap();
    let (status, code, challenge) = error_of(res).await;
    assert_eq!(
        (status, code.as_str(), challenge),
        (StatusCode::UNAUTHORIZED, "invalid_credentials", None)
    );
    server.stop().await;
}

#[actix_web::test]
async fn body_errors_are_json_400() {
    let server = Server::start(reissue(false));
    let login = server.url("/auth/login");
    let creds = r#"{"email":"alice@example.com","password":"password1"}"#;

    let cases: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        ("wrong content type", Some("text/plain"), creds.into()),
        ("no content type", None, creds.into()),
        ("not JSON", Some("application/json"), b"{not json".to_vec()),
        (
            "wrong fields",
            Some("application/json"),
            br#"{"user":"alice"}"#.to_vec(),
        ),
        ("empty", Some("application/json"), Vec::new()),
        ("oversized", Some("application/json"), oversized()),
    ];
    for (what, content_type, body) in cases {
        let mut req = server.http.post(&login).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let (status, code, challenge) = error_of(req.send().await.unwrap()).await;
        assert_eq!(
            (status, code.as_str(), challenge),
            (StatusCode::BAD_REQUEST, "invalid_request", None),
            "{what}"
        );
    }

    let res = server
        .http
        .post(server.url("/auth/logout"))
        .header("content-type", "application/json")
        .body(oversized())
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "invalid_request");

    // the same login, well-formed, still works on this connection pool
    let res = server
        .http
        .post(&login)
        .header("content-type", "application/json")
        .body(creds)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    server.stop().await;
}

/// A body over the limit sent chunked (no Content-Length): still the JSON 400.
#[actix_web::test]
async fn oversized_chunked_body_is_json_400() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = Server::start(reissue(false));
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let body = oversized();
    let mut request = format!(
        "POST /auth/login HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(4096) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&request).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{response}"
    );
    assert!(
        response.contains(r#""error":"invalid_request""#),
        "{response}"
    );
    server.stop().await;
}

fn oversized() -> Vec<u8> {
    let padding = "x".repeat(reissue_core::MAX_BODY_LEN + 1024);
    format!(r#"{{"email":"alice@example.com","password":"password1","padding":"{padding}"}}"#)
        .into_bytes()
}

/// Unit check with actix's test service: the missing-middleware error and
/// the Option rule, without a socket.
#[actix_web::test]
async fn extractors_without_middleware() {
    use actix_web::test;
    let app = test::init_service(
        App::new()
            .route("/me", web::get().to(whoami))
            .route("/maybe", web::get().to(maybe)),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/me").to_request()).await;
    assert_eq!(
        res.status(),
        actix_web::http::StatusCode::INTERNAL_SERVER_ERROR
    );
    let res = test::call_service(&app, test::TestRequest::get().uri("/maybe").to_request()).await;
    assert_eq!(res.status(), actix_web::http::StatusCode::OK);
}

#[actix_web::test]
async fn endpoints_under_another_prefix() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let reissue = reissue(false);
    let server = HttpServer::new(move || {
        App::new().service(reissue_actix::scope("/api/auth/", reissue.clone()))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": "alice@example.com", "password": "password1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = http
        .get(format!("{base}/api/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["allow"], "POST");
    assert_eq!(
        http.post(format!("{base}/auth/login"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    handle.stop(false).await;
}

/// The refresh cookie is scoped to the full path the client used, scopes
/// around the endpoints included.
#[actix_web::test]
async fn cookie_path_follows_the_scope() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let keys = KeySet::new(Key::hmac("k1", Algorithm::HS256, &[7; 32]).unwrap()).unwrap();
    let config = Config::new("test-issuer", "test-audience")
        .cookie_transport(reissue_core::CookieTransport::new());
    let reissue = Reissue::builder(config, keys, Arc::new(MemoryStore::new()), TestUsers)
        .build()
        .unwrap();
    let server = HttpServer::new(move || {
        App::new()
            .service(web::scope("/api").service(reissue_actix::scope("/auth", reissue.clone())))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let res = reqwest::Client::new()
        .post(format!("{base}/api/auth/login"))
        .header("x-reissue-transport", "cookie")
        .json(&json!({ "email": "alice@example.com", "password": "password1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let all: Vec<&str> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(all[0].contains("; Path=/api/auth;"), "{all:?}");
    handle.stop(false).await;
}

/// On a Unix socket there is no peer address: with an address policy
/// configured, login is refused (403) rather than waved past the policy.
#[actix_web::test]
async fn a_policy_on_a_unix_socket_refuses_login() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for (allow_unknown, expected) in [(false, "403"), (true, "200")] {
        let keys = KeySet::new(Key::hmac("k1", Algorithm::HS256, &[7; 32]).unwrap()).unwrap();
        let reissue = Reissue::builder(
            Config::new("t", "t").allow_unknown_client_address(allow_unknown),
            keys,
            Arc::new(MemoryStore::new()),
            TestUsers,
        )
        .policy(reissue_core::policy::CidrRules::parse("", "192.0.2.0/24").unwrap())
        .build()
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("app.sock");
        let server = HttpServer::new(move || {
            App::new().configure(reissue_actix::configure(reissue.clone()))
        })
        .workers(1)
        .disable_signals()
        .bind_uds(&socket)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let body = r#"{"email":"alice@example.com","password":"password1"}"#;
        let mut stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
        let request = format!(
            "POST /auth/login HTTP/1.1\r\nHost: app\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response.split(' ').nth(1).unwrap_or("");
        assert_eq!(
            status, expected,
            "allow_unknown_client_address({allow_unknown}): {response}"
        );
        if expected == "403" {
            assert!(response.contains("access_denied"), "{response}");
        }
        handle.stop(true).await;
    }
}
