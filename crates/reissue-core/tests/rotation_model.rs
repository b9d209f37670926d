//! Concurrent histories against a model. Each case logs a user in, then runs
//! rounds of one to four operations at once (reissue with the current, a
//! spent or the first refresh token; logout; logout everywhere), spread over
//! two `Reissue` instances sharing one store, with now and then a store fault
//! in the middle (every client connection killed). Every round's answers must
//! be explainable by some order of its operations under the contract's rules
//! ("Rotation, reuse and races"), with a failed operation counted as either
//! done or not done; the session's liveness in the store must agree. So: no
//! fork, no revoked session the model keeps, no ended session that rotates.
//!
//! Grace windows are 0 (strict) or a minute (never elapsing within a case),
//! so that the rules do not depend on the timing of a run; the lifetimes are
//! covered by the store suite.

mod support;

use reissue_core::store::dangerous;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fred::prelude::ClientLike;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use reissue_core::store::{ClientMeta, MemoryStore, RedisStore, RefreshStore};
use reissue_core::{Config, Error, Reissue, RevocationMode, TokenRejection};
use support::{AnyUser, RedisServer, hs256_keys};

#[derive(Debug, Clone, Copy)]
enum Op {
    /// Reissue with the newest refresh token this test has seen.
    ReissueCurrent,
    /// Reissue with the one before it (a spent token; a replay within grace).
    ReissueSpent,
    /// Reissue with the very first refresh token.
    ReissueFirst,
    Logout,
    LogoutAll,
}

#[derive(Debug, Clone)]
struct Round {
    ops: Vec<(Op, bool)>,
    fault: bool,
}

fn round(faults: bool) -> impl Strategy<Value = Round> {
    let op = prop_oneof![
        6 => Just(Op::ReissueCurrent),
        3 => Just(Op::ReissueSpent),
        1 => Just(Op::ReissueFirst),
        1 => Just(Op::Logout),
        1 => Just(Op::LogoutAll),
    ];
    let fault = if faults {
        prop_oneof![9 => Just(false), 1 => Just(true)].boxed()
    } else {
        Just(false).boxed()
    };
    (proptest::collection::vec((op, any::<bool>()), 1..=4), fault)
        .prop_map(|(ops, fault)| Round { ops, fault })
}

fn case(faults: bool) -> impl Strategy<Value = (bool, Vec<Round>)> {
    (
        any::<bool>(),
        proptest::collection::vec(round(faults), 1..10),
    )
}

/// What one operation answered, as far as the model can see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// A new pair whose refresh token has this generation.
    Pair(u64),
    Reused,
    Ended,
    /// Logout, logout-all: 204.
    Done,
    /// The store failed: the operation may or may not have happened.
    Failed,
}

/// The contract's session: live or not, and its current generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Model {
    live: bool,
    generation: u64,
}

impl Model {
    /// Applies a reissue with `presented`; the answer it gives.
    fn reissue(&mut self, presented: u64, grace: bool) -> Seen {
        if !self.live {
            Seen::Ended
        } else if presented == self.generation {
            self.generation += 1;
            Seen::Pair(self.generation)
        } else if presented + 1 == self.generation && grace {
            // the successor (the current generation) was never presented,
            // or the generation would have moved on: replayable, however late
            Seen::Pair(self.generation)
        } else {
            self.live = false;
            Seen::Reused
        }
    }
}

/// Every model state that some order of `ops` (each failed one done or
/// not) explains, starting from any of `states`.
///
/// With a fault in the round, a reissue may also answer "ended" where it
/// reused, rotated or replayed: the store client resends one whose reply was
/// lost, and the resend finds the session revoked, by the first attempt or by
/// another reissue of the round (a reuse that the first attempt's rotation
/// made stale). That explanation holds only if the session ended in the round.
fn explain(
    states: &HashSet<Model>,
    ops: &[(Option<u64>, Seen)],
    grace: bool,
    fault: bool,
) -> HashSet<Model> {
    fn go(
        state: Model,
        left: &mut Vec<(Option<u64>, Seen)>,
        (grace, fault, resent): (bool, bool, bool),
        out: &mut HashSet<Model>,
    ) {
        if left.is_empty() {
            if !(resent && state.live) {
                out.insert(state);
            }
            return;
        }
        for i in 0..left.len() {
            let (presented, seen) = left.remove(i);
            let mut next = state;
            let answer = match presented {
                Some(p) => next.reissue(p, grace),
                None => {
                    next.live = false;
                    Seen::Done
                }
            };
            let lost_reply =
                fault && seen == Seen::Ended && matches!(answer, Seen::Reused | Seen::Pair(_));
            if seen == Seen::Failed {
                go(state, left, (grace, fault, resent), out);
                go(next, left, (grace, fault, resent), out);
            } else if seen == answer {
                go(next, left, (grace, fault, resent), out);
            } else if lost_reply {
                go(next, left, (grace, fault, true), out);
            }
            left.insert(i, (presented, seen));
        }
    }
    let mut out = HashSet::new();
    for &state in states {
        go(state, &mut ops.to_vec(), (grace, fault, false), &mut out);
    }
    out
}

static CASE: AtomicU64 = AtomicU64::new(0);

async fn run_case(
    instances: &[Reissue<AnyUser>; 2],
    fault: &(dyn Fn() -> tokio::task::JoinHandle<()> + Sync),
    strict_grace: bool,
    rounds: &[Round],
) -> Result<(), TestCaseError> {
    let grace = !strict_grace;
    let user = format!("user-{}", CASE.fetch_add(1, Ordering::Relaxed));
    let client = ClientMeta::default();
    let first = instances[0].login(user.clone(), &client).await.unwrap();
    let sid = instances[0]
        .tokens()
        .verify_refresh(&first.refresh_token)
        .unwrap()
        .sid;
    // Refresh tokens seen, by generation.
    let mut tokens = vec![String::new(), first.refresh_token];
    let mut states: HashSet<Model> = [Model {
        live: true,
        generation: 1,
    }]
    .into();
    for (r, round) in rounds.iter().enumerate() {
        let newest = tokens.len() as u64 - 1;
        let mut tasks = Vec::new();
        for &(op, on_b) in &round.ops {
            let reissue = instances[usize::from(on_b)].clone();
            let presented = match op {
                Op::ReissueCurrent => Some(newest),
                Op::ReissueSpent => Some(newest.saturating_sub(1).max(1)),
                Op::ReissueFirst => Some(1),
                Op::Logout | Op::LogoutAll => None,
            };
            let token = presented.map(|g| tokens[g as usize].clone());
            let (user, sid) = (user.clone(), sid.clone());
            tasks.push(tokio::spawn(async move {
                let client = ClientMeta::default();
                let mut minted = None;
                let seen = match (op, token) {
                    (Op::Logout, _) => reissue.logout(&user, &sid).await.map(|()| Seen::Done),
                    (Op::LogoutAll, _) => reissue.logout_all(&user).await.map(|_| Seen::Done),
                    (_, Some(token)) => reissue.reissue(&token, &client).await.map(|pair| {
                        let rt = reissue
                            .tokens()
                            .verify_refresh(&pair.refresh_token)
                            .unwrap();
                        minted = Some(pair.refresh_token);
                        Seen::Pair(rt.generation)
                    }),
                    (_, None) => unreachable!(),
                };
                let seen = match seen {
                    Ok(seen) => seen,
                    Err(Error::InvalidToken(TokenRejection::ReuseDetected)) => Seen::Reused,
                    Err(Error::InvalidToken(TokenRejection::SessionRevoked)) => Seen::Ended,
                    Err(Error::Unavailable(_)) => Seen::Failed,
                    Err(e) => panic!("{op:?}: {e:?}"),
                };
                (presented, seen, minted)
            }));
        }
        // The fault lands within its round: awaited before the answers are read.
        if round.fault {
            fault().await.unwrap();
        }
        let mut answers = Vec::new();
        for task in tasks {
            let (presented, seen, minted) = task.await.unwrap();
            if let (Seen::Pair(g), Some(rt)) = (seen, minted) {
                prop_assert!(
                    g as usize <= tokens.len(),
                    "round {}: generation {} skipped one",
                    r,
                    g
                );
                if g as usize == tokens.len() {
                    tokens.push(rt);
                }
            }
            answers.push((presented, seen));
        }
        let next = explain(&states, &answers, grace, round.fault);
        prop_assert!(
            !next.is_empty(),
            "round {}: {:?} answered {:?}: no order of them explains it from {:?}",
            r,
            round,
            answers,
            states
        );
        let live = instances[1].is_live(&user, &sid).await.unwrap();
        states = next.into_iter().filter(|m| m.live == live).collect();
        prop_assert!(
            !states.is_empty(),
            "round {}: the store says live = {}, the model cannot",
            r,
            live
        );
        let listed = instances[0].sessions(&user).await.unwrap();
        prop_assert!(
            listed.len() <= 1,
            "round {}: the session forked: {:?}",
            r,
            listed
        );
        prop_assert_eq!(listed.len() == 1, live);
        if !live {
            break;
        }
        // A generation the model reached through a failed rotation was never
        // handed to the test: the case cannot go on from there.
        if states.iter().any(|m| m.generation as usize >= tokens.len()) {
            break;
        }
    }
    Ok(())
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

fn instances(store: [Arc<dyn RefreshStore>; 2], strict_grace: bool) -> [Reissue<AnyUser>; 2] {
    store.map(|store| {
        // Replays on: the default, until the successor is used (no time
        // bound; the model has none either). Off: a cap of 0.
        let grace = if strict_grace {
            Some(Duration::ZERO)
        } else {
            None
        };
        let config = Config::new("model", "model")
            .reuse_grace(grace)
            .revocation(RevocationMode::Stateless);
        Reissue::builder(config, hs256_keys(), store, AnyUser)
            .build()
            .unwrap()
    })
}

#[test]
fn memory_store_histories_follow_the_model() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store: Arc<dyn RefreshStore> = Arc::new(MemoryStore::new());
    let by_grace = [false, true].map(|strict| instances([store.clone(), store.clone()], strict));
    runner(400)
        .run(&case(false), |(strict, rounds)| {
            let pair = &by_grace[usize::from(strict)];
            rt.block_on(run_case(pair, &|| tokio::spawn(async {}), strict, &rounds))
        })
        .unwrap();
}

#[test]
fn redis_store_histories_follow_the_model_through_faults() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = RedisServer::shared();
    let connect = || {
        rt.block_on(
            RedisStore::builder(server.url())
                .key_prefix("model:")
                .connect(),
        )
        .unwrap()
    };
    let stores: [Arc<dyn RefreshStore>; 2] = [Arc::new(connect()), Arc::new(connect())];
    let admin = connect();
    let by_grace = [false, true].map(|strict| instances(stores.clone(), strict));
    // A fault in the middle of a round: every other client's connections are
    // cut, with commands in flight.
    let kill = || {
        let pool = dangerous::pool(&admin).clone();
        rt.spawn(async move {
            tokio::time::sleep(Duration::from_micros(300)).await;
            // Cut every connection but this one, wherever the round's commands are.
            let _: fred::prelude::Value = pool
                .next()
                .custom(
                    fred::cmd!("CLIENT"),
                    vec!["KILL", "TYPE", "normal", "SKIPME", "yes"],
                )
                .await
                .unwrap();
        })
    };
    runner(160)
        .run(&case(true), |(strict, rounds)| {
            let pair = &by_grace[usize::from(strict)];
            rt.block_on(run_case(pair, &kill, strict, &rounds))
        })
        .unwrap();
}
