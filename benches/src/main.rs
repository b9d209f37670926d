//! reissue beside its peers and the physical limits, in one run.
//!
//! `cargo run --release -p reissue-benches -- [--quick] [--only <substring>] [--redis <url>] [--window <s>]`
//!
//! `cargo run --release -p reissue-benches -- soak --minutes 10`: the soak
//! (two instances on a Redis of its own, mixed traffic; see `soak.rs` and
//! docs/OPERATIONS.md, "Soak").
//!
//! Every HTTP row is a server started in-process on `127.0.0.1:0` (one worker
//! thread) driven by the same load generator (one thread, a fixed number of
//! keep-alive connections, a warm-up then a fixed window), all serving the
//! same `GET /me`. The Redis rows use the Redis at `--redis` (default
//! `$REDIS_URL`, else `redis://127.0.0.1:6379`) under a unique key prefix that
//! is deleted afterwards. Results: a table on stdout and in
//! `benches/out/results.md`, a chart in `benches/out/benchmarks.svg` and, for
//! a full unfiltered run, `docs/benchmarks.svg`. See docs/BENCHMARKS.md.
//!
//! `... -- --instructions [--only <substring>]` counts instead the
//! instructions of one in-process request of each row under callgrind (see
//! `instructions.rs`), into `benches/out/instructions.md`.
#![forbid(unsafe_code)]

mod apps;
mod fixtures;
mod instructions;
mod load;
mod micro;
mod redis;
mod report;
mod rows;
mod server;
mod soak;
mod storm;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use load::Load;
use report::{LoadRow, Outcome};

/// Connections (requests in flight) of every load row.
const CONNECTIONS: usize = 32;

#[derive(Debug)]
struct Args {
    quick: bool,
    only: Option<String>,
    redis: String,
    /// Overrides the measurement window (seconds), e.g. to profile one row.
    window: Option<f64>,
    /// Count instructions per in-process request under callgrind instead.
    instructions: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        quick: false,
        only: None,
        window: None,
        instructions: false,
        redis: std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--instructions" => args.instructions = true,
            // The child of `--instructions`, run under callgrind.
            "--in-process" => {
                let (Some(row), Some(n)) = (it.next(), it.next()) else {
                    return Err("--in-process needs a row and a request count".into());
                };
                let n = n
                    .parse()
                    .map_err(|_| format!("--in-process {n:?}: not a count"))?;
                if let Err(e) = instructions::run_one(&row, n) {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
                std::process::exit(0);
            }
            "--only" => args.only = Some(it.next().ok_or("--only needs a substring")?),
            "--redis" => args.redis = it.next().ok_or("--redis needs a URL")?,
            "--window" => {
                let secs = it.next().ok_or("--window needs seconds")?;
                args.window = Some(
                    secs.parse()
                        .map_err(|_| format!("--window {secs:?}: not a number"))?,
                );
            }
            "-h" | "--help" => {
                println!(
                    "usage: reissue-benches [--quick | --instructions] [--only <substring of a row key or name>] [--redis <url>] \
                     [--window <seconds>]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

/// How often and how long each row runs.
#[derive(Debug, Clone, Copy)]
struct Plan {
    load: Load,
    /// Passes over all rows; each row reports its best pass.
    passes: usize,
    verify_rounds: usize,
    verify_budget: Duration,
    argon2_hashes: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                load: Load {
                    connections: CONNECTIONS,
                    warmup: Duration::from_millis(250),
                    measure: Duration::from_millis(750),
                },
                passes: 1,
                verify_rounds: 1,
                verify_budget: Duration::from_millis(60),
                argon2_hashes: 2,
            }
        } else {
            Self {
                load: Load {
                    connections: CONNECTIONS,
                    warmup: Duration::from_millis(300),
                    measure: Duration::from_millis(2000),
                },
                passes: 4,
                verify_rounds: 3,
                verify_budget: Duration::from_millis(250),
                argon2_hashes: 5,
            }
        }
    }
}

/// The 1-minute load average: how busy the machine was besides this run.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn write(path: &Path, contents: &str) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(path, contents) {
        Ok(()) => eprintln!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("soak") {
        std::process::exit(soak::main(&argv[1..]));
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if args.instructions {
        let md = format!(
            "Instructions per in-process `GET /me` (callgrind, {} cores, {}):\n\n{}",
            std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model(),
            instructions::table(args.only.as_deref())
        );
        println!("{md}");
        write(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("out/instructions.md"),
            &md,
        );
        return;
    }
    let started = Instant::now();
    let mut plan = Plan::new(args.quick);
    if let Some(secs) = args.window {
        plan.load.measure = Duration::from_secs_f64(secs);
    }
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let redis_ok = redis::reachable(&args.redis);
    let prefix = format!(
        "reissue-bench:{}-{}:",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    let mode = if args.quick { "quick" } else { "full" };
    let setup = format!(
        "mode {mode}; {cores} cores ({}); {} connections, warm-up {:?}, window {:?}, best of {} pass(es); \
         each server on 1 worker thread, the load generator on 1 thread, Redis ({}) a separate process",
        cpu_model(),
        plan.load.connections,
        plan.load.warmup,
        plan.load.measure,
        plan.passes,
        match &redis_ok {
            Ok(()) => args.redis.clone(),
            Err(e) => format!("unavailable: {e}"),
        }
    );
    eprintln!("{setup}");
    let load_before = load_average();

    let mut specs = rows::specs(&args.redis, &prefix, &redis_ok);
    if let Some(only) = &args.only {
        specs.retain(|s| s.key.contains(only.as_str()) || s.name.contains(only.as_str()));
    }
    let mut loads = rows::run_loads(&specs, &plan);
    loads.extend(storm::rows(&plan, args.only.as_deref()));
    let micro = micro::rows(&plan, args.only.as_deref(), &args.redis, &prefix, &redis_ok);
    if redis_ok.is_ok() {
        match redis::clean(&args.redis, &prefix) {
            Ok(n) => eprintln!("deleted {n} Redis keys under {prefix}"),
            Err(e) => eprintln!("could not delete the Redis keys under {prefix}: {e}"),
        }
    }

    let missed: Vec<&LoadRow> = loads
        .iter()
        .filter(|r| r.ratios.iter().any(|q| q.met() == Some(false)))
        .collect();
    let failed: Vec<&LoadRow> = loads
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
        .collect();
    let mut md = format!(
        "Setup: {setup}; 1-minute load average {load_before} at the start, {} at the end.\n\n\
         ### Load\n\n{}",
        load_average(),
        report::load_table(&loads)
    );
    if !micro.is_empty() {
        md.push_str(&format!("\n### Micro\n\n{}", report::micro_table(&micro)));
    }
    md.push_str(&format!(
        "\n{} goal(s) missed, {} row(s) failed; took {:.0} s.\n",
        missed.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    ));
    println!("{md}");

    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    write(&manifest.join("out/results.md"), &md);
    let title = "reissue beside its peers: GET /me throughput, and ratios against goals";
    let subtitle = format!(
        "{mode} run; {cores} cores, {}; {} connections, 1 server thread, 1 load thread; \
         peers are compared with reissue's verified-token cache off (with it on, see the table)",
        cpu_model(),
        plan.load.connections
    );
    let chart = report::svg(&loads, title, &subtitle);
    write(&manifest.join("out/benchmarks.svg"), &chart);
    if !args.quick && args.only.is_none() {
        write(&manifest.join("../docs/benchmarks.svg"), &chart);
    }
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
