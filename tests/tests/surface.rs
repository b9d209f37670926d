//! The library surface, each scenario written once and run on both
//! adapters (`axum::optional_layer...`, `actix::optional_layer...`) with
//! apps built from the adapters' API (`reissue_conformance::surface`): what
//! an application wires itself and the example apps never show. The
//! contract's rows (required mode, the error table, the `/auth`
//! endpoints, bodies) are the conformance suite's (`tests/contract.rs`).
#![allow(missing_docs)]

use reissue_conformance::surface::{Adapter, App, Mount, Options};
use serde_json::json;

/// `surface!(a, b)` emits `mod axum` and `mod actix` with one test per
/// scenario, each on a fresh current-thread runtime.
macro_rules! surface {
    ($($s:ident),* $(,)?) => {
        surface!(@cell axum, Axum, [$($s),*]);
        surface!(@cell actix, Actix, [$($s),*]);
    };
    (@cell $cell:ident, $adapter:ident, [$($s:ident),*]) => {
        mod $cell {
            $(
                #[test]
                fn $s() {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("test runtime")
                        .block_on(super::$s(reissue_conformance::surface::Adapter::$adapter));
                }
            )*
        }
    };
}

surface![
    optional_layer_lets_anonymous_through_but_not_bad_tokens,
    a_missing_layer_says_what_to_add,
    strict_mode_refuses_ended_sessions_on_every_layer,
    endpoints_under_another_prefix,
    cookie_path_follows_where_the_endpoints_are_mounted,
    without_peer_addresses_a_policy_refuses_login,
    a_slow_oversized_body_still_gets_its_answer,
    an_oversized_chunked_body_is_a_json_400,
];

const REALM: &str = r#"Bearer realm="reissue""#;

async fn optional_layer_lets_anonymous_through_but_not_bad_tokens(adapter: Adapter) {
    let app = App::start(adapter, Options::default());
    let r = app.get("/optional/me", None).await;
    assert_eq!((r.status, r.json()), (200, json!({ "anonymous": true })));
    let token = app.access("bob").await;
    let r = app.get("/optional/me", Some(&token)).await;
    assert_eq!((r.status, r.json()), (200, json!({ "id": "2" })));
    // A token that is there but bad is refused, login being optional or not.
    let r = app.get("/optional/me", Some("x.y.z")).await;
    assert_eq!((r.status, r.error().as_str()), (401, "invalid_token"));
    let r = app
        .get_with_authorization("/optional/me", "Bearer a b")
        .await;
    assert_eq!((r.status, r.error().as_str()), (400, "invalid_request"));
    // A handler that needs a user behind an optional layer: 401 with the
    // challenge, not the 500 of a missing layer.
    let r = app.get("/optional/strict-me", None).await;
    assert_eq!((r.status, r.error().as_str()), (401, "unauthorized"));
    assert_eq!(r.header("www-authenticate").as_deref(), Some(REALM));
    assert_eq!(
        app.get("/optional/strict-me", Some(&token)).await.status,
        200
    );
}

/// A route that forgot the layer: a 500 whose description names what to
/// add, never a request let through. `Option<AuthUser>` differs by
/// framework: axum's optional extractor fails the same way, actix-web's
/// `Option` rule turns every extractor error into `None`.
async fn a_missing_layer_says_what_to_add(adapter: Adapter) {
    let app = App::start(adapter, Options::default());
    let token = app.access("bob").await;
    let r = app.get("/bare/me", Some(&token)).await;
    assert_eq!((r.status, r.error().as_str()), (500, "server_error"));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let why = r.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(why.contains(app.layer_name()), "{why}");
    let r = app.get("/bare/maybe", Some(&token)).await;
    match adapter {
        Adapter::Axum => {
            assert_eq!((r.status, r.error().as_str()), (500, "server_error"));
            assert!(r.text.contains(app.layer_name()), "{}", r.text);
        }
        Adapter::Actix => assert_eq!((r.status, r.json()), (200, json!({ "anonymous": true }))),
    }
}

/// Strict mode asks the store on every layer: required, optional and role
/// all refuse an ended session's access token; the user's other session
/// and anonymous requests where login is optional are untouched.
async fn strict_mode_refuses_ended_sessions_on_every_layer(adapter: Adapter) {
    let app = App::start(
        adapter,
        Options {
            strict: true,
            ..Options::default()
        },
    );
    let ended = app.access("ada").await;
    let other = app.access("ada").await;
    for path in ["/required/me", "/optional/me", "/admin/me"] {
        assert_eq!(app.get(path, Some(&ended)).await.status, 200, "{path}");
    }
    app.logout(&ended).await;
    for path in ["/required/me", "/optional/me", "/admin/me"] {
        let r = app.get(path, Some(&ended)).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (401, "invalid_token"),
            "{path}"
        );
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{path}: {challenge}"
        );
        assert_eq!(app.get(path, Some(&other)).await.status, 200, "{path}");
    }
    let r = app.get("/optional/me", None).await;
    assert_eq!((r.status, r.json()), (200, json!({ "anonymous": true })));
}

/// The endpoints under another prefix: served there, a wrong method is 405
/// with `Allow`, and nothing is left at `/auth`.
async fn endpoints_under_another_prefix(adapter: Adapter) {
    let app = App::start(
        adapter,
        Options {
            mount: Mount::At("/api/auth/"),
            ..Options::default()
        },
    );
    let pair = app.login_at("/api/auth", "ada").await;
    let r = app
        .send(
            reqwest::Method::POST,
            "/api/auth/reissue",
            pair["refresh_token"].as_str(),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.get("/api/auth/login", None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").as_deref(), Some("POST"));
    let r = app
        .send(
            reqwest::Method::POST,
            "/auth/login",
            None,
            &[],
            Some(json!({ "email": "ada", "password": "pw" })),
        )
        .await;
    assert_eq!(r.status, 404);
}

/// The refresh cookie is scoped to the path the client used: the prefix
/// given, and the framework's own nesting around it too (axum strips the
/// outer prefix from the URI the library sees; actix-web scopes).
async fn cookie_path_follows_where_the_endpoints_are_mounted(adapter: Adapter) {
    for (mount, path) in [
        (Mount::Default, "/auth"),
        (Mount::At("/v2/auth"), "/v2/auth"),
        (Mount::Nested("/api", "/auth"), "/api/auth"),
    ] {
        let app = App::start(
            adapter,
            Options {
                cookie: true,
                mount,
                ..Options::default()
            },
        );
        let cookie = ("x-reissue-transport", "cookie");
        let login = json!({ "email": "ada", "password": "pw" });
        let r = app
            .send(
                reqwest::Method::POST,
                &format!("{path}/login"),
                None,
                &[cookie],
                Some(login),
            )
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        let set: Vec<&str> = r
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(set.len(), 1, "{set:?}");
        assert!(
            set[0].contains(&format!("; Path={path};")),
            "{path}: {set:?}"
        );
        // The cookie works where it is sent, and is set there again.
        let pair = set[0].split(';').next().unwrap().to_owned();
        let r = app
            .send(
                reqwest::Method::POST,
                &format!("{path}/reissue"),
                None,
                &[cookie, ("cookie", &pair)],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        let again = r.header("set-cookie").unwrap_or_default();
        assert!(
            again.contains(&format!("; Path={path};")),
            "{path}: {again}"
        );
    }
}

/// Served where peers cannot be seen (axum without `ConnectInfo`, actix-web
/// on a Unix socket), an address policy refuses login rather than let it
/// past unchecked, unless told that an unknown address is fine.
async fn without_peer_addresses_a_policy_refuses_login(adapter: Adapter) {
    for (allow_unknown, expected) in [(false, "403"), (true, "200")] {
        let app = App::start(
            adapter,
            Options {
                policy: Some(allow_unknown),
                no_peer: true,
                ..Options::default()
            },
        );
        let body = r#"{"email":"ada","password":"pw"}"#;
        let request = format!(
            "POST /auth/login HTTP/1.1\r\nHost: app\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let answer = app.raw(request.as_bytes()).await;
        let status = answer.split(' ').nth(1).unwrap_or("");
        assert_eq!(
            status, expected,
            "allow_unknown_client_address({allow_unknown}): {answer}"
        );
        if expected == "403" {
            assert!(answer.contains("access_denied"), "{answer}");
        }
    }
}

/// The client sends the headers and part of a body over the limit, pauses
/// (the server answers meanwhile), sends the rest, and only then reads:
/// the answer must not be lost to a reset of a connection closed with
/// unread data, whoever answered (the layer, an endpoint, the 404).
async fn a_slow_oversized_body_still_gets_its_answer(adapter: Adapter) {
    use std::io::{Read, Write};
    let app = App::start(adapter, Options::default());
    let addr = app.addr().to_owned();
    let slow_client = move || {
        for (path, expected) in [
            ("/required/me", "401"),
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
            std::thread::sleep(std::time::Duration::from_millis(100));
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

/// A body over the limit sent chunked (no `Content-Length`): still the
/// JSON 400 of the contract.
async fn an_oversized_chunked_body_is_a_json_400(adapter: Adapter) {
    let app = App::start(adapter, Options::default());
    let padding = "x".repeat(reissue_core::MAX_BODY_LEN + 1024);
    let body = format!(r#"{{"email":"ada","password":"pw","padding":"{padding}"}}"#);
    let mut request =
        b"POST /auth/login HTTP/1.1\r\nhost: app\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
            .to_vec();
    for chunk in body.as_bytes().chunks(4096) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let answer = app.raw(&request).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{answer}"
    );
    assert!(answer.contains(r#""error":"invalid_request""#), "{answer}");
}
