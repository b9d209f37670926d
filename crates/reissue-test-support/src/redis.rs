//! The one `redis-server` spawner of the workspace's tests: a server on a
//! free port of 127.0.0.1, in a directory of its own, that dies with the
//! test process however that ends, and that a test may pause, kill and
//! restart. The deployments ([`crate::deploy`]) are built of these.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Each server's log, in its own directory.
const LOG: &str = "redis.log";

/// Runs `redis-server "$@"` in the background, prints its pid, and exits
/// when it exits (so that a server which could not bind its port is seen at
/// once); a second background job reads the shell's stdin, a pipe from the
/// test process, and kills the server when that pipe closes: when the test
/// process drops the handle or exits, however it exits.
const WATCHDOG: &str = r#"exec 3<&0
redis-server "$@" 3<&- </dev/null >/dev/null 2>&1 &
pid=$!
echo $pid
{ cat <&3 >/dev/null; kill -9 $pid 2>/dev/null; } >/dev/null 2>&1 &
exec 3<&-
wait $pid"#;

/// A free port of 127.0.0.1 (free when asked: [`RedisServer`] retries
/// another when a parallel test takes it first).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Whether a server answers `PING` on `port`.
pub fn ping(port: u16) -> bool {
    command(port, &["PING"]).as_deref() == Some("PONG")
}

/// One command over RESP, its reply as text: a simple or bulk string
/// (`None` for no answer, an error or another type).
fn command(port: u16, args: &[&str]) -> Option<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(100)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    let mut request = format!("*{}\r\n", args.len());
    for a in args {
        request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(request.as_bytes()).ok()?;
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    reader.read_line(&mut head).ok()?;
    let head = head.trim_end();
    if let Some(simple) = head.strip_prefix('+') {
        return Some(simple.to_owned());
    }
    let len: usize = head.strip_prefix('$')?.parse().ok()?;
    let mut body = vec![0; len + 2];
    reader.read_exact(&mut body).ok()?;
    body.truncate(len);
    String::from_utf8(body).ok()
}

/// `redis-cli -p <port> <args>`, its output trimmed ("" when it failed).
pub fn cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// One field of `INFO <section>`.
pub fn info(port: u16, section: &str, field: &str) -> Option<String> {
    command(port, &["INFO", section])?.lines().find_map(|l| {
        l.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    })
}

/// The arguments every test server runs with: no persistence, reachable on
/// 127.0.0.1 only, and replicas that sync at once rather than after the
/// default 5 s.
pub fn server_args(port: u16, extra: &[&str]) -> Vec<String> {
    let port = port.to_string();
    let base = [
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        "--repl-diskless-sync-delay",
        "0",
    ];
    base.iter().chain(extra).map(|s| (*s).to_owned()).collect()
}

/// A `redis-server` of the test's own (see the [module](self)). Dropping it
/// stops the server.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    pid: Option<u32>,
    dir: PathBuf,
    args: Vec<String>,
    watchdog: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

impl RedisServer {
    /// Starts a server on a free port, in a temporary directory of its
    /// own, and waits until it answers `PING`.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`start`](Self::start) with extra `redis-server` arguments, e.g.
    /// `["--maxmemory-policy", "allkeys-lru"]` (a later argument wins over
    /// the defaults of [`server_args`]).
    pub fn start_with(extra: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let dir = tmp.path().to_owned();
        let mut server = Self::launch(dir, |port| server_args(port, extra));
        server._tmp = Some(tmp);
        server
    }

    /// [`start_with`](Self::start_with) in `dir`, where relative paths in
    /// `extra` (certificates, say) are found.
    pub fn start_in(dir: &Path, extra: &[&str]) -> Self {
        Self::launch(dir.to_owned(), |port| server_args(port, extra))
    }

    /// The one server a test binary shares between its tests (each under a
    /// key prefix of its own), started on first use.
    pub fn shared() -> &'static RedisServer {
        static SHARED: OnceLock<RedisServer> = OnceLock::new();
        SHARED.get_or_init(Self::start)
    }

    /// Starts `redis-server` with `args(port)` in `dir` on a free port,
    /// trying another port when a parallel test took the first before the
    /// server bound it.
    pub fn launch(dir: PathBuf, args: impl Fn(u16) -> Vec<String>) -> Self {
        std::fs::create_dir_all(&dir).expect("a server directory");
        for _ in 0..10 {
            let port = free_port();
            let mut server = Self {
                port,
                pid: None,
                dir: dir.clone(),
                args: args(port),
                watchdog: None,
                _tmp: None,
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("could not start redis-server on a free port");
    }

    /// Spawns the server; `false` if it exited or never answered.
    fn spawn(&mut self) -> bool {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .args(&self.args)
            .args(["--logfile", LOG])
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh and redis-server must be on PATH");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("the watchdog's stdout");
        let _ = BufReader::new(stdout).read_line(&mut line);
        self.pid = line.trim().parse().ok();
        self.watchdog = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let exited = self
                .watchdog
                .as_mut()
                .is_some_and(|w| matches!(w.try_wait(), Ok(Some(_))));
            if exited {
                self.reap();
                return false;
            }
            // Our server, not another that took the port meanwhile.
            if ping(self.port) && self.reported_pid() == self.pid {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        false
    }

    fn reported_pid(&self) -> Option<u32> {
        info(self.port, "server", "process_id").and_then(|p| p.parse().ok())
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.pid.filter(|_| self.watchdog.is_some())
    }

    /// Whether the server was started and not killed since.
    pub fn is_running(&self) -> bool {
        self.watchdog.is_some()
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
        let pid = self.pid().expect("a running server");
        let ok = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {signal} {pid}");
    }

    /// SIGKILL: an outage, not a shutdown. Returns once the port is closed.
    pub fn kill(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        self.reap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while ping(self.port) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Closes the watchdog's pipe (which kills the server if it still runs)
    /// and waits for the shell.
    fn reap(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            drop(w.stdin.take());
            let _ = w.wait();
        }
    }

    /// Starts the server again on the same port, in the same directory: a
    /// cluster node rejoins with its `nodes.conf`, a killed primary comes
    /// back as a replica; a plain server comes back empty.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of the server's log (every run of it: a restart
    /// appends), headed by its port.
    pub fn log_tail(&self) -> String {
        const LINES: usize = 15;
        let log = std::fs::read_to_string(self.dir.join(LOG)).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(LINES)..].join("\n");
        format!("--- node {} ---\n{tail}\n", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.reap();
    }
}
