//! Strict revocation across processes: three app processes on one Redis,
//! in strict mode; one is stopped (SIGSTOP) across a logout made on another.
//! The logout returns (once the stopped instance's lease has run out in the
//! store); resumed (SIGCONT), the stopped instance refuses the logged-out
//! session's access token from its first request, knowing by its own clock
//! that its lease lapsed.
//!
//! Run by `examples/{axum,actix}-app/tests/strict_stop.rs` with the path of
//! their binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::RedisServer;

struct App {
    child: Child,
    addr: String,
}

impl Drop for App {
    fn drop(&mut self) {
        signal(&self.child, "-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill {sig} failed");
}

impl App {
    fn start(bin: &str, db: &Path, redis: &str, prefix: &str) -> Self {
        let mut child = Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("REISSUE_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", format!("sqlite://{}", db.display()))
            .env(
                "REISSUE_JWT_SECRET",
                "strict-stop-test-secret-0123456789abcdef",
            )
            .env("REDIS_URL", redis)
            .env("REISSUE_REDIS_PREFIX", prefix)
            .env("REISSUE_STRICT_REVOCATION", "1")
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("{bin} did not start: {first:?}"))
            .to_owned();
        Self { child, addr }
    }

    /// One request, `Connection: close`: the status and the body.
    fn request(&self, method: &str, path: &str, bearer: Option<&str>, body: &str) -> (u16, String) {
        let mut tcp = TcpStream::connect(&self.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some(token) = bearer {
            req.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        tcp.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        tcp.read_to_string(&mut resp).unwrap();
        let status = resp
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {resp:?}"));
        let body = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    fn me(&self, access: &str) -> u16 {
        self.request("GET", "/me", Some(access), "").0
    }
}

fn access_token(body: &str) -> String {
    let start = body
        .find("\"access_token\":\"")
        .unwrap_or_else(|| panic!("no access token in {body:?}"))
        + "\"access_token\":\"".len();
    body[start..].split('"').next().unwrap().to_owned()
}

/// The scenario, on the app binary `bin`.
pub fn stopped_instance_refuses_after_resume(bin: &str) {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("strict-stop:{}:", std::process::id());
    let apps: Vec<App> = (0..3)
        .map(|i| {
            App::start(
                bin,
                &dir.path().join(format!("users{i}.sqlite")),
                &redis.url(),
                &prefix,
            )
        })
        .collect();
    let [a, b, c] = [&apps[0], &apps[1], &apps[2]];
    let creds = r#"{"email":"stop@example.com","password":"correct horse battery"}"#;
    assert_eq!(a.request("POST", "/signup", None, creds).0, 201);
    for round in 0..2 {
        if round > 0 {
            // Set-up, not a condition of the assertions (they hold either
            // way): the resumed instance finds its lease lapsed in the store,
            // re-syncs and takes a new one, so that this round stops a
            // holder again.
            std::thread::sleep(Duration::from_secs(1));
        }
        let (status, body) = a.request("POST", "/auth/login", None, creds);
        assert_eq!(status, 200, "{body}");
        let access = access_token(&body);
        // The apps take their leases as they start; until then they ask the
        // store. Either way the session is live on every one.
        let started = Instant::now();
        for app in [a, b, c] {
            assert_eq!(app.me(&access), 200);
        }
        signal(&b.child, "-STOP");
        let logout = Instant::now();
        assert_eq!(
            a.request("POST", "/auth/logout", Some(&access), "").0,
            204,
            "round {round}: the logout returns with an instance stopped"
        );
        let took = logout.elapsed();
        assert_eq!(c.me(&access), 401, "round {round}: the healthy instance");
        signal(&b.child, "-CONT");
        assert_eq!(
            b.me(&access),
            401,
            "round {round}: the resumed instance's first request"
        );
        println!(
            "round {round}: logout with one of three instances stopped took {took:?} ({:?} after login)",
            started.elapsed()
        );
    }
}
