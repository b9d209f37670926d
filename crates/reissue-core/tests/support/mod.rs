//! Shared test helpers: a private `redis-server` per test, a tiny
//! authenticator, and the keys under `tests/keys/`.
//!
//! Each test binary uses a different subset of these.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reissue_core::{Algorithm, Authenticated, Authenticator, Key, KeySet, Result, UserClaims};

/// A `redis-server` of our own on a free port, with its own empty working
/// directory and no persistence. Killed when dropped, so fault injection never
/// touches the machine's shared Redis.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// The one server a test binary shares between its tests (each under a key
    /// prefix of its own): started once, and stopped when the test process
    /// exits, since its stdin is a pipe that the watchdog shell reads until it closes.
    pub fn shared() -> &'static RedisServer {
        static SHARED: std::sync::OnceLock<RedisServer> = std::sync::OnceLock::new();
        SHARED.get_or_init(|| {
            let mut server = Self::start_with(&["--watchdog-pipe"]);
            server.extra.clear();
            server
        })
    }

    /// Starts a server with extra `redis-server` arguments (e.g.
    /// `["--maxmemory-policy", "allkeys-lru"]`).
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut server = Self {
            child: None,
            port: 0,
            dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        // A port found free can be taken by a parallel test before redis binds
        // it; redis then exits at once, and we try another port.
        for _ in 0..10 {
            server.port = free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!("could not start redis-server on a free port");
    }

    /// Spawns redis-server on `self.port`; `false` if it exited or never answered.
    fn spawn(&mut self) -> bool {
        let watchdog = self.extra.iter().any(|a| a == "--watchdog-pipe");
        let mut args: Vec<String> = vec![
            "--port".into(),
            self.port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
            "--protected-mode".into(),
            "no".into(),
            "--dir".into(),
            self.dir.path().display().to_string(),
        ];
        args.extend(
            self.extra
                .iter()
                .filter(|a| *a != "--watchdog-pipe")
                .cloned(),
        );
        let child = if watchdog {
            // redis runs as long as this shell reads its stdin: the pipe closes
            // when the test process exits, however it exits.
            Command::new("sh")
                .arg("-c")
                .arg(r#"redis-server "$@" & pid=$!; cat >/dev/null; kill -9 $pid"#)
                .arg("sh")
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        } else {
            Command::new("redis-server")
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        }
        .expect("redis-server must be on PATH");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && matches!(child.try_wait(), Ok(Some(_)))
            {
                self.child = None;
                return false;
            }
            if ping(self.port) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.kill();
        false
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server with SIGSTOP: it holds its connections open and
    /// answers nothing, as a hung Redis does.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Continues a paused server (SIGCONT): it then runs what it had received.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("a running server").id();
        let ok = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {signal} {pid}");
    }

    /// Kills the server (SIGKILL: an outage, not a shutdown) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("a local address").port()
}

fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    stream.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// Milliseconds since the Unix epoch, as the stores take it.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// Seconds since the Unix epoch.
pub fn now_s() -> u64 {
    now_ms() / 1000
}

/// Logs anyone in: the credentials are the user id.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyUser;

impl Authenticator for AnyUser {
    type Credentials = String;
    type Claims = UserClaims;

    fn account_key(&self, credentials: &String) -> Result<String> {
        Ok(credentials.clone())
    }

    async fn authenticate(&self, user: String) -> Result<Authenticated<UserClaims>> {
        let claims = UserClaims::new(format!("{user}@example.com"), vec!["user".to_owned()]);
        Ok(Authenticated::new(user, claims))
    }
}

/// A 32-byte HS256 test secret.
pub const HS256_SECRET: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

/// A one-key HS256 set.
pub fn hs256_keys() -> KeySet {
    KeySet::new(Key::hmac("hs-1", Algorithm::HS256, HS256_SECRET).unwrap()).unwrap()
}

/// Whether `alg` signs the same bytes for the same input with the crypto
/// backend this test binary was built with: RSASSA-PSS never does (a random
/// salt), ECDSA only under `rust-crypto` (RFC 6979; aws-lc-rs draws a fresh
/// nonce), everything else always.
pub fn signs_deterministically(alg: Algorithm) -> bool {
    use Algorithm::*;
    match alg {
        PS256 | PS384 | PS512 => false,
        ES256 | ES384 => !cfg!(feature = "aws-lc-rs"),
        _ => true,
    }
}

/// The test PEM keys, embedded so that tests and benches find them from any
/// working directory.
pub mod pem {
    pub const RSA: &[u8] = include_bytes!("../keys/rsa.pem");
    pub const RSA_PUB: &[u8] = include_bytes!("../keys/rsa.pub.pem");
    pub const RSA_ATTACKER: &[u8] = include_bytes!("../keys/rsa-attacker.pem");
    pub const EC: &[u8] = include_bytes!("../keys/ec.pem");
    pub const EC_PUB: &[u8] = include_bytes!("../keys/ec.pub.pem");
    pub const EC_ATTACKER: &[u8] = include_bytes!("../keys/ec-attacker.pem");
    pub const EC384: &[u8] = include_bytes!("../keys/ec384.pem");
    pub const EC384_PUB: &[u8] = include_bytes!("../keys/ec384.pub.pem");
    pub const ED: &[u8] = include_bytes!("../keys/ed25519.pem");
    pub const ED_PUB: &[u8] = include_bytes!("../keys/ed25519.pub.pem");
    pub const ED_ATTACKER: &[u8] = include_bytes!("../keys/ed25519-attacker.pem");
}
