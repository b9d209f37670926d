//! One `tracing` span per `/auth` operation, named `reissue.<op>`, with the
//! session id and the outcome, and never a token: what a trace of login →
//! reissue → logout shows, recorded by a subscriber layer.

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reissue_core::store::MemoryStore;
use reissue_core::{Config, HttpRequest, Reissue, Reply};
use support::{AnyUser, hs256_keys};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

/// A span as the layer saw it: its name and every field recorded on it.
#[derive(Debug, Clone, Default)]
struct SeenSpan {
    name: String,
    fields: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Recorder {
    spans: Arc<Mutex<Vec<SeenSpan>>>,
    ids: Arc<Mutex<BTreeMap<u64, usize>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut span = SeenSpan {
            name: attrs.metadata().name().to_owned(),
            ..SeenSpan::default()
        };
        attrs.record(&mut Fields(&mut span.fields));
        let mut spans = self.spans.lock().unwrap();
        self.ids.lock().unwrap().insert(id.into_u64(), spans.len());
        spans.push(span);
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(&i) = self.ids.lock().unwrap().get(&id.into_u64()) {
            values.record(&mut Fields(&mut self.spans.lock().unwrap()[i].fields));
        }
    }
}

struct Request {
    headers: Vec<(&'static str, Vec<u8>)>,
}

impl Request {
    fn json() -> Self {
        Self {
            headers: vec![("content-type", b"application/json".to_vec())],
        }
    }
    fn bearer(token: &str) -> Self {
        Self {
            headers: vec![("authorization", format!("Bearer {token}").into_bytes())],
        }
    }
}

impl HttpRequest for Request {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        self.headers
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
    }
    fn peer_addr(&self) -> Option<IpAddr> {
        Some([192, 0, 2, 1].into())
    }
}

fn tokens(reply: &Reply) -> (String, String) {
    let body = reply.body.as_deref().unwrap_or_default();
    assert_eq!(reply.status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    (
        v["access_token"].as_str().unwrap().to_owned(),
        v["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn sid_of(token: &str) -> String {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["sid"].as_str().unwrap().to_owned()
}

#[test]
fn a_trace_shows_login_reissue_logout_with_session_and_outcome() {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut secrets = Vec::new();
    let (sid, other_sid) = rt.block_on(async {
        let config = Config::new("spans", "spans").reuse_grace(Duration::from_secs(5));
        let r = Reissue::builder(config, hs256_keys(), Arc::new(MemoryStore::new()), AnyUser)
            .build()
            .unwrap();
        let (access, refresh) = tokens(&r.serve_login(&Request::json(), br#""ada""#).await);
        let sid = sid_of(&access);
        let (access2, refresh2) = tokens(&r.serve_reissue(&Request::bearer(&refresh), b"").await);
        // The same spent token again, within the grace window: a replay.
        tokens(&r.serve_reissue(&Request::bearer(&refresh), b"").await);
        assert_eq!(
            r.serve_sessions(&Request::bearer(&access2)).await.status,
            200
        );
        let (other, _) = tokens(&r.serve_login(&Request::json(), br#""ada""#).await);
        let other_sid = sid_of(&other);
        let revoke = r
            .serve_revoke_session(&Request::bearer(&access2), &other_sid)
            .await;
        assert_eq!(revoke.status, 204);
        assert_eq!(
            r.serve_logout(&Request::bearer(&access2), b"").await.status,
            204
        );
        // After the logout, the session's refresh token is refused.
        assert_eq!(
            r.serve_reissue(&Request::bearer(&refresh2), b"")
                .await
                .status,
            401
        );
        let (third, _) = tokens(&r.serve_login(&Request::json(), br#""ada""#).await);
        assert_eq!(
            r.serve_logout_all(&Request::bearer(&third)).await.status,
            204
        );
        secrets.extend([access, refresh, access2, refresh2, other, third]);
        (sid, other_sid)
    });
    let spans = recorder.spans.lock().unwrap().clone();
    let ops: Vec<&SeenSpan> = spans
        .iter()
        .filter(|s| s.name.starts_with("reissue."))
        .collect();
    let names: Vec<&str> = ops.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "reissue.login",
            "reissue.reissue",
            "reissue.reissue",
            "reissue.sessions",
            "reissue.login",
            "reissue.revoke",
            "reissue.logout",
            "reissue.reissue",
            "reissue.login",
            "reissue.logout_all",
        ],
        "one span per operation: {spans:#?}"
    );
    let field = |i: usize, f: &str| ops[i].fields.get(f).map(String::as_str);
    for i in [0, 1, 2, 3, 5, 6, 7] {
        assert_eq!(field(i, "session_id"), Some(sid.as_str()), "{:#?}", ops[i]);
        assert_eq!(field(i, "user_id"), Some("ada"), "{:#?}", ops[i]);
    }
    assert_eq!(field(4, "session_id"), Some(other_sid.as_str()));
    for i in [0, 1, 2, 3, 4, 5, 6, 8, 9] {
        assert_eq!(field(i, "outcome"), Some("ok"), "{:#?}", ops[i]);
    }
    assert_eq!(field(1, "detail"), Some("rotated"));
    assert_eq!(field(2, "detail"), Some("grace_replay"));
    assert_eq!(field(7, "outcome"), Some("invalid_token"));
    assert_eq!(field(7, "detail"), Some("session_ended"));
    for span in &spans {
        for (k, v) in &span.fields {
            for s in &secrets {
                assert!(
                    !v.contains(s.as_str()),
                    "span {} field {k} carries a token",
                    span.name
                );
            }
        }
    }
}

#[test]
fn a_refused_login_says_why_and_names_no_account() {
    let recorder = Recorder::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = Config::new("spans", "spans");
        let r = Reissue::builder(config, hs256_keys(), Arc::new(MemoryStore::new()), AnyUser)
            .build()
            .unwrap();
        // Not JSON: refused before anything else.
        let reply = r
            .serve_login(&Request::bearer("x"), br#""ada@example.com""#)
            .await;
        assert_eq!(reply.status, 400);
        let reply = r.serve_reissue(&Request::bearer("not-a-token"), b"").await;
        assert_eq!(reply.status, 401);
    });
    let spans = recorder.spans.lock().unwrap().clone();
    let ops: Vec<&SeenSpan> = spans
        .iter()
        .filter(|s| s.name.starts_with("reissue."))
        .collect();
    assert_eq!(ops.len(), 2, "{spans:#?}");
    assert_eq!(
        ops[0].fields.get("outcome").map(String::as_str),
        Some("invalid_request")
    );
    assert_eq!(
        ops[1].fields.get("outcome").map(String::as_str),
        Some("invalid_token")
    );
    for span in &spans {
        assert!(
            span.fields.values().all(|v| !v.contains("ada@example.com")),
            "{span:#?}"
        );
        assert!(!span.fields.contains_key("session_id"), "{span:#?}");
    }
}
