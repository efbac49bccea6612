//! Side-by-side latency: two forward functions timed interleaved (A, B, A, B, ...) in the
//! same process on the same machine after a warm-up, so that load changes hit both equally;
//! the medians are compared.

use super::results::median;
use std::time::Instant;

/// Per-run milliseconds of `a` and `b`, interleaved.
pub fn interleaved(
    warmup: usize,
    runs: usize,
    mut a: impl FnMut(),
    mut b: impl FnMut(),
) -> (Vec<f64>, Vec<f64>) {
    for _ in 0..warmup {
        a();
        b();
    }
    let (mut ta, mut tb) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for i in 0..runs {
        // Alternate which goes first so neither always follows the other.
        let time = |f: &mut dyn FnMut(), out: &mut Vec<f64>| {
            let t0 = Instant::now();
            f();
            out.push(t0.elapsed().as_secs_f64() * 1e3);
        };
        if i % 2 == 0 {
            time(&mut a, &mut ta);
            time(&mut b, &mut tb);
        } else {
            time(&mut b, &mut tb);
            time(&mut a, &mut ta);
        }
    }
    (ta, tb)
}

/// Median milliseconds of `a` and `b` (see [`interleaved`]).
pub fn median_pair(warmup: usize, runs: usize, a: impl FnMut(), b: impl FnMut()) -> (f64, f64) {
    let (ta, tb) = interleaved(warmup, runs, a, b);
    (median(&ta), median(&tb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_runs_of_both() {
        let (mut na, mut nb) = (0, 0);
        let (ta, tb) = interleaved(2, 5, || na += 1, || nb += 1);
        assert_eq!((ta.len(), tb.len(), na, nb), (5, 5, 7, 7));
    }
}
