//! The rotation state machine against a model: random interleavings of
//! reissues with the current, a spent or a never-issued refresh token, logouts
//! and the passing of time (grace window, idle and absolute lifetimes), with
//! every outcome compared to what CONTRACT.md says ("Rotation, reuse and
//! races"). Time is driven through `RotateRequest::now_ms`.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reissue_core::SessionId;
use reissue_core::store::{
    ClientMeta, MemoryStore, NewSession, RedisStore, RefreshStore, RotateRequest, Rotation,
};
use support::{RedisServer, now_ms};

const IDLE: u64 = 30_000;
const LIFETIME: u64 = 100_000;

/// Which refresh token is presented, relative to the session's current one.
#[derive(Debug, Clone, Copy)]
enum Presented {
    Current,
    /// `n` generations back (skipped while the session has no such generation).
    Spent(u64),
    /// A generation never issued.
    Future,
}

#[derive(Debug, Clone)]
enum Op {
    Reissue(Presented, u64),
    Logout(u64),
    Wait(u64),
}

/// Milliseconds between operations, biased to the edges that matter.
fn delay(grace: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => Just(0u64),
        2 => 1..1_000u64,
        2 => Just(grace.saturating_sub(1)),
        3 => Just(grace),
        2 => Just(grace + 1),
        1 => 1_000..IDLE,
        1 => Just(IDLE),
        1 => IDLE..LIFETIME,
    ]
}

fn op(grace: u64) -> impl Strategy<Value = Op> {
    let presented = prop_oneof![
        4 => Just(Presented::Current),
        3 => (1..=3u64).prop_map(Presented::Spent),
        1 => Just(Presented::Future),
    ];
    prop_oneof![
        8 => (presented, delay(grace)).prop_map(|(p, dt)| Op::Reissue(p, dt)),
        1 => delay(grace).prop_map(Op::Logout),
        2 => delay(grace).prop_map(Op::Wait),
    ]
}

fn case() -> impl Strategy<Value = (u64, Vec<Op>)> {
    prop_oneof![Just(0u64), Just(5_000u64)]
        .prop_flat_map(|grace| (Just(grace), proptest::collection::vec(op(grace), 1..24)))
}

/// What a rotation should answer: the successor's numbers, or the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Rotated {
        generation: u64,
        rotated_at: u64,
        expires_at: u64,
        absolute: u64,
    },
    Replayed {
        generation: u64,
        rotated_at: u64,
        expires_at: u64,
        absolute: u64,
    },
    Reused,
    NotFound,
}

fn outcome(r: &Rotation) -> Outcome {
    match r {
        Rotation::Rotated(s) => Outcome::Rotated {
            generation: s.generation,
            rotated_at: s.rotated_at_ms,
            expires_at: s.expires_at_ms,
            absolute: s.absolute_expiry_ms,
        },
        Rotation::Replayed(s) => Outcome::Replayed {
            generation: s.generation,
            rotated_at: s.rotated_at_ms,
            expires_at: s.expires_at_ms,
            absolute: s.absolute_expiry_ms,
        },
        Rotation::Reused => Outcome::Reused,
        Rotation::NotFound => Outcome::NotFound,
        other => panic!("a rotation outcome the model does not know: {other:?}"),
    }
}

/// One session as the contract describes it.
#[derive(Debug)]
struct Model {
    live: bool,
    generation: u64,
    rotated_at: u64,
    expires_at: u64,
    absolute: u64,
}

impl Model {
    fn expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    fn rotate(&mut self, presented: u64, now: u64, grace: u64) -> Outcome {
        if !self.live {
            return Outcome::NotFound;
        }
        if self.expired(now) {
            self.live = false;
            return Outcome::NotFound;
        }
        if presented == self.generation {
            self.generation += 1;
            self.rotated_at = now;
            self.expires_at = (now + IDLE).min(self.absolute);
            Outcome::Rotated {
                generation: self.generation,
                rotated_at: now,
                expires_at: self.expires_at,
                absolute: self.absolute,
            }
        } else if presented + 1 == self.generation && grace > 0 && now - self.rotated_at <= grace {
            Outcome::Replayed {
                generation: self.generation,
                rotated_at: self.rotated_at,
                expires_at: self.expires_at,
                absolute: self.absolute,
            }
        } else {
            self.live = false;
            Outcome::Reused
        }
    }
}

static CASE: AtomicU64 = AtomicU64::new(0);

async fn run_case(store: &dyn RefreshStore, grace: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let n = CASE.fetch_add(1, Ordering::Relaxed);
    let (user, bystander) = (format!("user-{n}"), format!("bystander-{n}"));
    let t0 = now_ms();
    let (sid, other) = (SessionId::random(), SessionId::random());
    let idle = Duration::from_millis(IDLE);
    store
        .create(&NewSession::new(
            &user,
            sid.clone(),
            t0,
            t0 + LIFETIME,
            idle,
        ))
        .await
        .unwrap();
    store
        .create(&NewSession::new(
            &bystander,
            other.clone(),
            t0,
            t0 + LIFETIME,
            idle,
        ))
        .await
        .unwrap();
    let mut model = Model {
        live: true,
        generation: 1,
        rotated_at: t0,
        expires_at: t0 + IDLE,
        absolute: t0 + LIFETIME,
    };
    let client = ClientMeta::default();
    let mut now = t0;
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Reissue(presented, dt) => {
                now += dt;
                let generation = match presented {
                    Presented::Current => model.generation,
                    Presented::Spent(back) if back < model.generation => model.generation - back,
                    Presented::Spent(_) => continue,
                    Presented::Future => model.generation + 1,
                };
                let request = RotateRequest::new(
                    &user,
                    &sid,
                    generation,
                    now,
                    Duration::from_millis(grace),
                    idle,
                    &client,
                );
                let got = outcome(&store.rotate(&request).await.unwrap());
                let expected = model.rotate(generation, now, grace);
                prop_assert_eq!(got, expected, "op {} {:?} at +{} ms", i, op, now - t0);
            }
            Op::Logout(dt) => {
                now += dt;
                let revoked = store.revoke(&user, &sid).await.unwrap();
                // A session past its idle lifetime in model time may still be in
                // the store (whose TTLs run on the wall clock): either answer.
                if !model.expired(now) || !model.live {
                    prop_assert_eq!(revoked, model.live, "op {} {:?}", i, op);
                }
                model.live = false;
            }
            Op::Wait(dt) => now += dt,
        }
        if !model.expired(now) || !model.live {
            prop_assert_eq!(
                store.is_live(&user, &sid).await.unwrap(),
                model.live,
                "after op {} {:?}",
                i,
                op
            );
        }
    }
    if model.live && !model.expired(now) {
        let list = store.list(&user).await.unwrap();
        prop_assert_eq!(list.len(), 1);
        prop_assert_eq!(&list[0].sid, &sid);
        prop_assert_eq!(list[0].last_used_at, model.rotated_at / 1000);
    }
    prop_assert!(
        store.is_live(&bystander, &other).await.unwrap(),
        "another user's session is untouched"
    );
    Ok(())
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn memory_store_follows_the_model() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = MemoryStore::new();
    runner(1024)
        .run(&case(), |(grace, ops)| {
            rt.block_on(run_case(&store, grace, &ops))
        })
        .unwrap();
}

#[test]
fn redis_store_follows_the_model() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = RedisServer::start();
    let store = rt
        .block_on(
            RedisStore::builder(server.url())
                .key_prefix("model:")
                .connect(),
        )
        .unwrap();
    runner(256)
        .run(&case(), |(grace, ops)| {
            rt.block_on(run_case(&store, grace, &ops))
        })
        .unwrap();
}
