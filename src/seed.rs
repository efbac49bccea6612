//! libtorch's global random generator, seeded and drawn from under one lock.
//!
//! `tch::manual_seed` seeds a process-wide generator: two threads that each seed it and then
//! draw (parallel tests, or a library user's threads) interleave, and both get numbers that
//! depend on the other's timing. [`seed_generator`] seeds it and holds a process-wide lock
//! until the returned guard is dropped, so a seeded construction is deterministic whatever
//! else runs. (Found as a test that failed one run in three when its binary ran tests on two
//! threads; `tests/pruning_methods.rs::seeded_toy_models_are_identical_while_other_threads_seed_too`
//! is its regression test.)

use std::sync::{Mutex, MutexGuard};

static GENERATOR: Mutex<()> = Mutex::new(());

/// Seed libtorch's global generator with `seed`; no other caller can seed it until the
/// guard is dropped (keep it for as long as the draws that must follow the seed).
#[must_use = "the generator is only reserved while the guard lives"]
pub fn seed_generator(seed: i64) -> MutexGuard<'static, ()> {
    let guard = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed);
    guard
}
