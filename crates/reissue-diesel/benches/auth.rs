//! Login timing on SQLite with the default argon2 parameters: an unknown email
//! must cost what a wrong password costs. Also argon2id's time per hash.
//!
//! `cargo bench -p reissue-diesel --bench auth`
// criterion_group! emits an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use criterion::{Criterion, criterion_group, criterion_main};
use reissue_core::Authenticator;
use reissue_diesel::{Argon2Params, EmailPassword, UserStore};

struct Fixture {
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    store: UserStore,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = UserStore::connect(&url).unwrap();
    rt.block_on(async {
        store.run_migrations().await.unwrap();
        store
            .create_user("known@example.com", "correct horse battery", &[])
            .await
            .unwrap();
        // The first unknown-email login makes the dummy hash; measure after it.
        let _ = store.authenticate(unknown()).await;
    });
    Fixture {
        _dir: dir,
        rt,
        store,
    }
}

fn unknown() -> EmailPassword {
    EmailPassword::new("nobody@example.com", "correct horse battery")
}

fn wrong() -> EmailPassword {
    EmailPassword::new("known@example.com", "wrong horse battery")
}

/// Each measured login follows an unmeasured login of the other kind, so
/// both benchmarks run the same mixed workload (allocator and cache state,
/// load that comes and goes) and differ only in what is timed.
fn timed_after(
    f: &Fixture,
    measured: fn() -> EmailPassword,
    other: fn() -> EmailPassword,
    iters: u64,
) -> Duration {
    f.rt.block_on(async {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let _ = f.store.authenticate(other()).await;
            let start = Instant::now();
            black_box(f.store.authenticate(measured()).await.unwrap_err());
            total += start.elapsed();
        }
        total
    })
}

fn authenticate(c: &mut Criterion) {
    let f = fixture();
    let mut group = c.benchmark_group("authenticate");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(15));
    group.bench_function("unknown_email", |b| {
        b.iter_custom(|iters| timed_after(&f, unknown, wrong, iters))
    });
    group.bench_function("wrong_password", |b| {
        b.iter_custom(|iters| timed_after(&f, wrong, unknown, iters))
    });
    group.finish();
}

/// The ratio straight from 200 alternating pairs of single logins.
fn interleaved_ratio(_: &mut Criterion) {
    let f = fixture();
    let (mut unknown_times, mut wrong_times) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        let t = Instant::now();
        let _ = f.rt.block_on(f.store.authenticate(unknown()));
        unknown_times.push(t.elapsed());
        let t = Instant::now();
        let _ = f.rt.block_on(f.store.authenticate(wrong()));
        wrong_times.push(t.elapsed());
    }
    let (u, w) = (median(&mut unknown_times), median(&mut wrong_times));
    println!(
        "interleaved, 200 pairs: unknown email median {u:?}, wrong password median {w:?}, ratio unknown/wrong {:.3}",
        u.as_secs_f64() / w.as_secs_f64()
    );
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn argon2_hash(c: &mut Criterion) {
    let p = Argon2Params::default();
    let params = Params::new(p.memory_kib(), p.iterations(), p.parallelism(), None).unwrap();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(30);
    group.bench_function("hash_m19456_t2_p1", |b| {
        b.iter(|| {
            argon2
                .hash_password(b"correct horse battery", &salt)
                .unwrap()
                .to_string()
        })
    });
    group.finish();
}

criterion_group!(benches, authenticate, interleaved_ratio, argon2_hash);
criterion_main!(benches);
