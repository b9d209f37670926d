//! The one load generator every HTTP row is measured with: a minimal
//! HTTP/1.1 keep-alive client on a single-threaded tokio runtime, a fixed
//! number of connections each with one request in flight (closed loop), a
//! warm-up, then a fixed measurement window. Every response is checked; one
//! wrong answer fails the row.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How a row is driven.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    /// Connections, each with one request in flight.
    pub(crate) connections: usize,
    /// Not measured: connections are opened, caches and pools filled.
    pub(crate) warmup: Duration,
    /// Measured.
    pub(crate) measure: Duration,
}

/// Hard cap per connection, so that a row is bounded in count as well as time.
const MAX_REQUESTS_PER_CONNECTION: u64 = 5_000_000;
/// A response larger than this is an error (token responses are ~1 KiB).
const MAX_RESPONSE: usize = 64 * 1024;

/// What was measured: completions inside the window, and their latencies.
#[derive(Debug, Clone)]
pub(crate) struct Measurement {
    pub(crate) completed: u64,
    pub(crate) window: Duration,
    /// Sorted latencies, nanoseconds.
    latencies: Vec<u64>,
}

impl Measurement {
    pub(crate) fn new(completed: u64, window: Duration, mut latencies: Vec<u64>) -> Self {
        latencies.sort_unstable();
        Self {
            completed,
            window,
            latencies,
        }
    }

    /// Completions per second.
    pub(crate) fn rate(&self) -> f64 {
        self.completed as f64 / self.window.as_secs_f64()
    }

    /// A latency percentile (`q` in 0..=1).
    pub(crate) fn percentile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i =
            ((self.latencies.len() as f64 * q).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        Duration::from_nanos(self.latencies[i])
    }
}

/// One connection's conversation: the next request, and whether a response
/// is the right one. State lives here (e.g. the current refresh token).
pub(crate) trait Exchange: Send + 'static {
    /// Writes the next request into `out` (cleared by the caller).
    fn request(&mut self, out: &mut Vec<u8>);
    /// Checks a response; `Err` describes what was wrong.
    fn check(&mut self, status: u16, body: &[u8]) -> Result<(), String>;
}

/// The same request every time, expecting 200 and exactly `body`.
#[derive(Debug, Clone)]
pub(crate) struct Fixed {
    request: Vec<u8>,
    expect_body: Vec<u8>,
}

impl Fixed {
    /// `GET <path>` with the given extra header lines (`name: value`).
    pub(crate) fn get(path: &str, headers: &[(&str, &str)], expect_body: &str) -> Self {
        let mut request = format!("GET {path} HTTP/1.1\r\nhost: bench\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        Self {
            request: request.into_bytes(),
            expect_body: expect_body.as_bytes().to_vec(),
        }
    }
}

impl Exchange for Fixed {
    fn request(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.request);
    }

    fn check(&mut self, status: u16, body: &[u8]) -> Result<(), String> {
        if status != 200 {
            return Err(format!(
                "status {status}: {}",
                String::from_utf8_lossy(body)
            ));
        }
        if body != self.expect_body {
            return Err(format!(
                "unexpected body {:?}",
                String::from_utf8_lossy(body)
            ));
        }
        Ok(())
    }
}

/// A POST request with a JSON body.
pub(crate) fn post_json(out: &mut Vec<u8>, path: &str, headers: &[(&str, &str)], body: &str) {
    out.extend_from_slice(format!("POST {path} HTTP/1.1\r\nhost: bench\r\n").as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if !body.is_empty() {
        out.extend_from_slice(b"content-type: application/json\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n{body}", body.len()).as_bytes());
}

/// Drives `connections` connections to `addr`, each with its own exchange.
/// Blocks the calling thread (its own single-threaded runtime).
pub(crate) fn run(
    addr: SocketAddr,
    load: Load,
    make: impl Fn(usize) -> Box<dyn Exchange>,
) -> Result<Measurement, String> {
    run_paced(addr, load, None, make)
}

/// As [`run`], but with `interval` each connection starts a request at most
/// that often: a light, steady load whose latency shows how quickly the
/// server answers, not how much it can do. Latency is still from write to
/// the last body byte (the wait between requests is not counted).
pub(crate) fn run_paced(
    addr: SocketAddr,
    load: Load,
    interval: Option<Duration>,
    make: impl Fn(usize) -> Box<dyn Exchange>,
) -> Result<Measurement, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let exchanges: Vec<_> = (0..load.connections).map(make).collect();
    rt.block_on(async move {
        let start = Instant::now();
        let window_start = start + load.warmup;
        let window_end = window_start + load.measure;
        let mut tasks = tokio::task::JoinSet::new();
        for exchange in exchanges {
            tasks.spawn(connection(
                addr,
                exchange,
                interval,
                window_start,
                window_end,
            ));
        }
        let mut completed = 0;
        let mut latencies = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let (n, mut l) = done.map_err(|e| format!("load task: {e}"))??;
            completed += n;
            latencies.append(&mut l);
        }
        Ok(Measurement::new(completed, load.measure, latencies))
    })
}

/// Closed loop on one connection until `window_end`: counts and times the
/// requests that complete inside the window.
async fn connection(
    addr: SocketAddr,
    mut exchange: Box<dyn Exchange>,
    interval: Option<Duration>,
    window_start: Instant,
    window_end: Instant,
) -> Result<(u64, Vec<u64>), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut request = Vec::with_capacity(2048);
    let mut buf = Vec::with_capacity(8192);
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut completed = 0;
    for _ in 0..MAX_REQUESTS_PER_CONNECTION {
        let sent = Instant::now();
        if sent >= window_end {
            break;
        }
        request.clear();
        exchange.request(&mut request);
        stream
            .write_all(&request)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let (status, body_range) = read_response(&mut stream, &mut buf).await?;
        exchange.check(status, &buf[body_range.clone()])?;
        buf.drain(..body_range.end);
        let done = Instant::now();
        if done >= window_start && done < window_end {
            completed += 1;
            latencies.push((done - sent).as_nanos() as u64);
        }
        if let Some(interval) = interval {
            tokio::time::sleep_until((sent + interval).into()).await;
        }
    }
    Ok((completed, latencies))
}

/// Reads one response with a `content-length` (every server here sends one
/// for these routes); returns the status and where its body is in `buf`.
async fn read_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<(u16, std::ops::Range<usize>), String> {
    loop {
        if let Some(head_end) = find(buf, b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..head_end])
                .map_err(|_| "non-UTF-8 response head".to_owned())?;
            let status = head
                .strip_prefix("HTTP/1.1 ")
                .and_then(|s| s.get(..3))
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or_else(|| format!("bad status line in {head:?}"))?;
            let mut length = None;
            for line in head.split("\r\n").skip(1) {
                let (name, value) = line.split_once(':').unwrap_or((line, ""));
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    return Err("chunked responses are not supported by the load generator".into());
                }
            }
            let length = length.unwrap_or(0);
            let body_start = head_end + 4;
            if length > MAX_RESPONSE {
                return Err(format!("response body of {length} bytes"));
            }
            while buf.len() < body_start + length {
                read_more(stream, buf).await?;
            }
            return Ok((status, body_start..body_start + length));
        }
        if buf.len() > MAX_RESPONSE {
            return Err("response head too large".into());
        }
        read_more(stream, buf).await?;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    buf.reserve(4096);
    match stream.read_buf(buf).await {
        Ok(0) => Err("the server closed the connection".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("read: {e}")),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let m = Measurement::new(100, Duration::from_secs(1), (1..=100).rev().collect());
        assert_eq!(m.percentile(0.5), Duration::from_nanos(50));
        assert_eq!(m.percentile(0.99), Duration::from_nanos(99));
        assert_eq!(m.percentile(1.0), Duration::from_nanos(100));
        assert_eq!(m.rate(), 100.0);
    }
}
