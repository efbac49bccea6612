//! The cost of copying a frame's input bytes once on this machine: the floor under what a
//! node spends receiving them.
//!
//! A ROS 2 subscription of an unbounded type (`Image`, `PointCloud2`) gets each message as a
//! copy: the middleware deserialises it into the subscriber's message. `bench node` measures
//! a plain `memcpy` of buffers of the same sizes in the same run, so that its `receive` stage
//! reads as a multiple of what the machine's memory allows, and camera-size images can be
//! judged against the hardware rather than against a fixed number of milliseconds.

use std::time::Instant;

/// Median time (ms) of copying one buffer of each of `sizes` bytes, over `reps` rounds. The
/// buffers are written before timing (no page faults are measured) and every round copies
/// different bytes, as the middleware does frame after frame.
pub fn copy_ms(sizes: &[usize], reps: usize) -> f64 {
    let mut src: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, &n)| vec![i as u8; n]).collect();
    let mut dst: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![0xff; n]).collect();
    let mut times = Vec::with_capacity(reps);
    for round in 0..reps.max(1) {
        // a fresh first byte per round: the copies cannot be skipped or merged
        for s in src.iter_mut().filter(|s| !s.is_empty()) {
            s[0] = round as u8;
        }
        let t = Instant::now();
        for (d, s) in dst.iter_mut().zip(&src) {
            d.copy_from_slice(s);
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(&dst);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copying_more_bytes_takes_longer() {
        // 64 MiB against 64 KiB, medians of 5: a thousand times the bytes, so the order holds
        // however busy the machine (this checks the measurement, not the machine's speed)
        let big = copy_ms(&[32 << 20, 32 << 20], 5);
        let small = copy_ms(&[64 << 10], 5);
        assert!(big.is_finite() && small >= 0.0, "{big} {small}");
        assert!(big > small, "64 MiB took {big} ms, 64 KiB {small} ms");
        assert!(copy_ms(&[], 3) >= 0.0 && copy_ms(&[0, 5], 0) >= 0.0);
    }
}
