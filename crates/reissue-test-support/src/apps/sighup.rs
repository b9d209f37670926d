//! The SIGHUP test of both example apps, run on the real binary: the GeoIP
//! database file is replaced, SIGHUP makes the running app read it again, a
//! corrupt replacement is refused and the database in use kept.
//!
//! Run by `examples/{axum,actix}-app/tests/sighup.rs` with the path of
//! their binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::geoip::{Place, home, write_mmdb};

fn mmdb(networks: &[(&str, Place)]) -> Vec<u8> {
    let networks: Vec<_> = networks
        .iter()
        .map(|(net, place)| (net.parse().unwrap(), *place))
        .collect();
    write_mmdb(&networks, 1).unwrap()
}

/// Replaces `path` the way geoipupdate does: a new file renamed over it.
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct App {
    child: Child,
    addr: String,
    stderr: mpsc::Receiver<String>,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl App {
    fn start(bin: &str, dir: &Path, db: &Path) -> Self {
        let mut child = Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("REISSUE_ADDR", "127.0.0.1:0")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", dir.join("users.sqlite").display()),
            )
            .env(
                "REISSUE_JWT_SECRET",
                "sighup-test-secret-0123456789abcdef-0123",
            )
            .env("REISSUE_GEOIP_DB", db)
            .env("REISSUE_ALLOWED_COUNTRIES", "GB")
            .env("REISSUE_TRUSTED_PROXIES", "127.0.0.1/32")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| {
                let errors: Vec<String> = rx.try_iter().collect();
                panic!("{bin} did not start: {first:?} {errors:?}")
            })
            .to_owned();
        Self {
            child,
            addr,
            stderr: rx,
        }
    }

    /// One request, `Connection: close`: the status and the body.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        let mut tcp = TcpStream::connect(&self.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
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

    /// The status of a login from `ip` (a client behind the trusted proxy).
    fn login_from(&self, ip: &str) -> u16 {
        let creds = r#"{"email":"hup@example.com","password":"correct horse battery"}"#;
        self.request("POST", "/auth/login", &[("X-Forwarded-For", ip)], creds)
            .0
    }

    fn hangup(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -HUP failed");
    }

    /// Waits for a log line containing `text`.
    fn wait_for_log(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no log line with {text:?} within 10 s");
    }

    fn assert_running(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the app ended on SIGHUP"
        );
    }
}

/// A (81.2.69.0/24 GB, 89.160.20.0/24 SE) → B (FR, GB) on SIGHUP;
/// then a corrupt file on SIGHUP: refused, B kept.
pub fn reloads_geoip_on_sighup(bin: &str) {
    let dir = tempfile_dir();
    let db = dir.join("countries.mmdb");
    std::fs::write(
        &db,
        mmdb(&[("81.2.69.0/24", home("GB")), ("89.160.20.0/24", home("SE"))]),
    )
    .unwrap();
    let mut app = App::start(bin, &dir, &db);
    let (status, body) = app.request(
        "POST",
        "/signup",
        &[],
        r#"{"email":"hup@example.com","password":"correct horse battery"}"#,
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(app.login_from("81.2.69.1"), 200, "GB under A");
    assert_eq!(app.login_from("89.160.20.1"), 403, "SE under A");

    replace(
        &db,
        &mmdb(&[("81.2.69.0/24", home("FR")), ("89.160.20.0/24", home("GB"))]),
    );
    // Nothing changes until the signal.
    assert_eq!(app.login_from("81.2.69.1"), 200, "A until SIGHUP");
    app.hangup();
    app.wait_for_log("GeoIP database reloaded");
    app.assert_running();
    assert_eq!(app.login_from("81.2.69.1"), 403, "FR under B");
    assert_eq!(app.login_from("89.160.20.1"), 200, "GB under B");

    // A broken update: the app says so and keeps B.
    replace(&db, b"\xab\xcd\xefMaxMind.com not really a database");
    app.hangup();
    let line = app.wait_for_log("GeoIP database kept");
    assert!(line.contains(&db.display().to_string()), "{line}");
    app.assert_running();
    assert_eq!(app.login_from("89.160.20.1"), 200, "B kept");
    assert_eq!(app.login_from("81.2.69.1"), 403, "B kept");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "reissue-sighup-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
