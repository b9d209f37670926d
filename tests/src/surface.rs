//! The harness of the library-surface suite (`tests/surface.rs`): apps
//! built straight from each adapter's API, not the example apps, so that
//! what an application wires itself (an optional layer, a role, a route
//! without the layer, the endpoints under another prefix or nested, a
//! server without peer addresses) is tested once and run on both.
//!
//! Every app serves the same routes: `/required/me`, `/optional/me` and
//! `/optional/strict-me` (an optional layer; the second needs a user),
//! `/admin/me` (role `admin`), `/bare/me` and `/bare/maybe` (no layer),
//! and the `/auth` endpoints where [`Mount`] says. Two users, password
//! `pw`: `ada` (admin, id 1) and `bob` (id 2).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use reissue_core::store::MemoryStore;
use reissue_core::{
    Algorithm, Authenticated, Authenticator, Config, CookieTransport, Error, Key, KeySet, Reissue,
    RevocationMode, UserClaims,
};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Which adapter an app is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    /// reissue-tower, on axum.
    Axum,
    /// reissue-actix, on actix-web.
    Actix,
}

/// The credentials of the apps' login.
#[derive(Debug, serde::Deserialize)]
pub struct Login {
    email: String,
    password: String,
}

/// `ada` (admin) and `bob`, both with password `pw`.
#[derive(Debug, Clone, Copy)]
pub struct Users;

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

/// Where the `/auth` endpoints are mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mount {
    /// At `/auth` (`reissue_tower::router`, `reissue_actix::configure`).
    Default,
    /// At another prefix (`router_at`, `scope`).
    At(&'static str),
    /// At `inner` inside the framework's own nesting under `outer`
    /// (`Router::nest`, `web::scope`): the library sees only `inner`.
    Nested(&'static str, &'static str),
}

/// How an app is built.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `RevocationMode::Strict` rather than stateless.
    pub strict: bool,
    /// The cookie transport on.
    pub cookie: bool,
    /// An address policy (deny 192.0.2.0/24), with
    /// `allow_unknown_client_address` as given.
    pub policy: Option<bool>,
    /// Where the endpoints are.
    pub mount: Mount,
    /// Served where the app cannot see peers: axum without `ConnectInfo`,
    /// actix-web on a Unix socket.
    pub no_peer: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            strict: false,
            cookie: false,
            policy: None,
            mount: Mount::Default,
            no_peer: false,
        }
    }
}

fn reissue(options: &Options) -> Reissue<Users> {
    let key = Key::hmac("k1", Algorithm::HS256, &[7; 32]).unwrap();
    let mut config = Config::new("test", "test").revocation(if options.strict {
        RevocationMode::Strict
    } else {
        RevocationMode::Stateless
    });
    if options.cookie {
        config = config.cookie_transport(CookieTransport::new());
    }
    if let Some(allow) = options.policy {
        config = config.allow_unknown_client_address(allow);
    }
    let mut builder = Reissue::builder(
        config,
        KeySet::new(key).unwrap(),
        Arc::new(MemoryStore::new()),
        Users,
    );
    if options.policy.is_some() {
        builder =
            builder.policy(reissue_core::policy::CidrRules::parse("", "192.0.2.0/24").unwrap());
    }
    builder.build().unwrap()
}

/// Where a running app listens.
#[derive(Debug)]
enum Listening {
    Tcp(String),
    /// The socket, and the directory that holds it (removed on drop).
    Unix(PathBuf, #[allow(dead_code)] tempfile::TempDir),
}

/// A running app; stops on drop.
#[derive(Debug)]
pub struct App {
    /// Which adapter serves it.
    pub adapter: Adapter,
    listening: Listening,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub text: String,
}

impl Answer {
    /// The body as JSON (`Null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The `error` code of a JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }

    /// A header, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_owned())
    }
}

impl App {
    /// Builds and serves an app with `adapter` on a thread of its own.
    pub fn start(adapter: Adapter, options: Options) -> Self {
        let reissue = reissue(&options);
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (listening, bind) = if options.no_peer && adapter == Adapter::Actix {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("app.sock");
            (Listening::Unix(path.clone(), dir), Bind::Unix(path))
        } else {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            (Listening::Tcp(base), Bind::Tcp(listener))
        };
        std::thread::spawn(move || match (adapter, bind) {
            (Adapter::Axum, Bind::Tcp(listener)) => {
                axum_app::serve(listener, reissue, options, ready_tx, stop_rx)
            }
            (Adapter::Axum, Bind::Unix(_)) => unreachable!("axum apps listen on TCP here"),
            (Adapter::Actix, bind) => actix_app::serve(bind, reissue, options, ready_tx, stop_rx),
        });
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the app starts");
        Self {
            adapter,
            listening,
            client: client(),
            stop: Some(stop_tx),
        }
    }

    /// `http://127.0.0.1:<port>` (TCP apps only).
    pub fn base(&self) -> &str {
        match &self.listening {
            Listening::Tcp(base) => base,
            Listening::Unix(..) => panic!("this app listens on a Unix socket"),
        }
    }

    /// `host:port` (TCP apps only).
    pub fn addr(&self) -> &str {
        self.base().trim_start_matches("http://")
    }

    /// The name of what an application adds to protect a route.
    pub fn layer_name(&self) -> &'static str {
        match self.adapter {
            Adapter::Axum => "ReissueLayer",
            Adapter::Actix => "ReissueMiddleware",
        }
    }

    /// Sends `method path` with an optional bearer token, extra headers and a body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base()));
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("an answer");
        Answer {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            text: res.text().await.unwrap_or_default(),
        }
    }

    /// `GET path` with an optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(reqwest::Method::GET, path, token, &[], None)
            .await
    }

    /// `GET path` with this `Authorization` header.
    pub async fn get_with_authorization(&self, path: &str, authorization: &str) -> Answer {
        self.send(
            reqwest::Method::GET,
            path,
            None,
            &[("authorization", authorization)],
            None,
        )
        .await
    }

    /// `POST <prefix>/login` as `user`: the token response (asserts 200).
    pub async fn login_at(&self, prefix: &str, user: &str) -> Value {
        let r = self
            .send(
                reqwest::Method::POST,
                &format!("{prefix}/login"),
                None,
                &[],
                Some(json!({ "email": user, "password": "pw" })),
            )
            .await;
        assert_eq!(r.status, 200, "login of {user} at {prefix}: {}", r.text);
        r.json()
    }

    /// The access token of a fresh login of `user` at `/auth`.
    pub async fn access(&self, user: &str) -> String {
        self.login_at("/auth", user).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `POST /auth/logout` with the access token (asserts 204).
    pub async fn logout(&self, access: &str) {
        let r = self
            .send(
                reqwest::Method::POST,
                "/auth/logout",
                Some(access),
                &[],
                None,
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
    }

    /// Writes `request` as is and reads the answer until the server closes
    /// (send `Connection: close`): over TCP, or the app's Unix socket.
    pub async fn raw(&self, request: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut answer = Vec::new();
        match &self.listening {
            Listening::Tcp(_) => {
                let mut s = tokio::net::TcpStream::connect(self.addr()).await.unwrap();
                s.write_all(request).await.unwrap();
                s.read_to_end(&mut answer).await.unwrap();
            }
            Listening::Unix(path, _) => {
                let mut s = tokio::net::UnixStream::connect(path).await.unwrap();
                s.write_all(request).await.unwrap();
                s.read_to_end(&mut answer).await.unwrap();
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        // actix-web closes a keep-alive connection idle for 5 s; a pooled
        // connection older than that may already be half closed, and reusing it
        // fails with IncompleteMessage (seen after a slow venv build).
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// Where the actix-web app binds.
#[derive(Debug)]
enum Bind {
    Tcp(TcpListener),
    Unix(PathBuf),
}

mod axum_app {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use reissue_tower::{AuthUser, DrainBodyLayer, ReissueLayer};

    async fn me(user: AuthUser<UserClaims>) -> axum::Json<Value> {
        axum::Json(json!({ "id": user.user_id, "email": user.claims.email }))
    }

    async fn maybe(user: Option<AuthUser<UserClaims>>) -> axum::Json<Value> {
        axum::Json(match user {
            Some(user) => json!({ "id": user.user_id }),
            None => json!({ "anonymous": true }),
        })
    }

    pub(super) fn serve(
        listener: TcpListener,
        reissue: Reissue<Users>,
        options: Options,
        ready: mpsc::Sender<()>,
        stop: oneshot::Receiver<()>,
    ) {
        let verifier = reissue.verifier().clone();
        let auth = match options.mount {
            Mount::Default => reissue_tower::router(reissue),
            Mount::At(prefix) => reissue_tower::router_at(prefix, reissue),
            Mount::Nested(outer, inner) => {
                Router::new().nest(outer, reissue_tower::router_at(inner, reissue))
            }
        };
        let app = Router::new()
            .merge(
                Router::new()
                    .route("/required/me", get(me))
                    .route_layer(ReissueLayer::new(verifier.clone())),
            )
            .merge(
                Router::new()
                    .route("/optional/me", get(maybe))
                    .route("/optional/strict-me", get(me))
                    .route_layer(ReissueLayer::new(verifier.clone()).optional()),
            )
            .merge(
                Router::new()
                    .route("/admin/me", get(me))
                    .route_layer(ReissueLayer::new(verifier).require_role("admin")),
            )
            .route("/bare/me", get(me))
            .route("/bare/maybe", get(maybe))
            .merge(auth)
            .layer(DrainBodyLayer::new());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = ready.send(());
            if options.no_peer {
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = stop => {}
                }
            } else {
                let app = app.into_make_service_with_connect_info::<SocketAddr>();
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = stop => {}
                }
            }
        });
        rt.shutdown_timeout(Duration::from_secs(1));
    }
}

mod actix_app {
    use super::*;
    use actix_web::{App, HttpResponse, HttpServer, web};
    use reissue_actix::{AuthUser, ReissueMiddleware};

    async fn me(user: AuthUser<UserClaims>) -> HttpResponse {
        HttpResponse::Ok().json(json!({ "id": user.user_id, "email": user.claims.email }))
    }

    async fn maybe(user: Option<AuthUser<UserClaims>>) -> HttpResponse {
        HttpResponse::Ok().json(match user {
            Some(user) => json!({ "id": user.user_id }),
            None => json!({ "anonymous": true }),
        })
    }

    pub(super) fn serve(
        bind: Bind,
        reissue: Reissue<Users>,
        options: Options,
        ready: mpsc::Sender<()>,
        stop: oneshot::Receiver<()>,
    ) {
        let mount = options.mount;
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                let verifier = reissue.verifier().clone();
                let app = App::new()
                    .service(
                        web::scope("/required")
                            .wrap(ReissueMiddleware::from(&reissue))
                            .route("/me", web::get().to(me)),
                    )
                    .service(
                        web::scope("/optional")
                            .wrap(ReissueMiddleware::new(verifier.clone()).optional())
                            .route("/me", web::get().to(maybe))
                            .route("/strict-me", web::get().to(me)),
                    )
                    .service(
                        web::scope("/admin")
                            .wrap(ReissueMiddleware::new(verifier).require_role("admin"))
                            .route("/me", web::get().to(me)),
                    )
                    .route("/bare/me", web::get().to(me))
                    .route("/bare/maybe", web::get().to(maybe));
                match mount {
                    Mount::Default => app.configure(reissue_actix::configure(reissue.clone())),
                    Mount::At(prefix) => app.service(reissue_actix::scope(prefix, reissue.clone())),
                    Mount::Nested(outer, inner) => app.service(
                        web::scope(outer).service(reissue_actix::scope(inner, reissue.clone())),
                    ),
                }
            })
            .workers(1)
            .disable_signals();
            let server = match bind {
                Bind::Tcp(listener) => server.listen(listener).unwrap(),
                Bind::Unix(path) => server.bind_uds(path).unwrap(),
            }
            .run();
            let handle = server.handle();
            actix_web::rt::spawn(server);
            let _ = ready.send(());
            let _ = stop.await;
            handle.stop(false).await;
        });
    }
}
