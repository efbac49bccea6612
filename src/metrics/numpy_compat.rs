//! The few numpy routines the nuScenes devkit's metrics rest on, reproduced operation for
//! operation so that our numbers agree with the devkit's to the last bits where it matters.
//!
//! Exactness is not cosmetic here: `np.interp(.., right=0)` is discontinuous at the last
//! recall point, and `np.linspace(0, 1, 101)` gives `7 * 0.01 = 0.07000000000000001`, not
//! `0.07`. A recall of exactly 7/100 therefore interpolates to 0 at that point, which changes
//! AP and the index of the maximum recall. Summation order (numpy's pairwise sum) only moves
//! the last bits, e.g. perfect predictions give AP `1.0000000000000004` as in the devkit.

/// `np.linspace(start, stop, num)` with `endpoint=True`: `start + i * step`, last = `stop`.
pub fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 0 {
        return Vec::new();
    }
    if num == 1 {
        return vec![start];
    }
    let div = (num - 1) as f64;
    let delta = stop - start;
    let step = delta / div;
    let mut y: Vec<f64> = (0..num)
        .map(|i| {
            if step == 0.0 {
                (i as f64) / div * delta + start
            } else {
                (i as f64) * step + start
            }
        })
        .collect();
    y[num - 1] = stop;
    y
}

/// Index of the last element of the non-decreasing `xp` that is `<= x` (numpy's
/// `binary_search_with_guess` result for sorted input), -1 when `x < xp[0]`, `xp.len()` when
/// `x > xp[last]`.
fn search(xp: &[f64], x: f64) -> isize {
    let n = xp.len();
    if x > xp[n - 1] {
        return n as isize;
    }
    if x < xp[0] {
        return -1;
    }
    // upper bound: first index with xp[i] > x
    xp.partition_point(|&v| v <= x) as isize - 1
}

/// `np.interp(x, xp, fp, left, right)` for one point; `xp` non-decreasing and non-empty.
/// `left`/`right` default to `fp[0]`/`fp[last]` in numpy.
pub fn interp_one(x: f64, xp: &[f64], fp: &[f64], left: f64, right: f64) -> f64 {
    debug_assert_eq!(xp.len(), fp.len());
    if x.is_nan() {
        return x;
    }
    let n = xp.len();
    let j = search(xp, x);
    if j == -1 {
        return left;
    }
    if j == n as isize {
        return right;
    }
    let j = j as usize;
    if j == n - 1 || xp[j] == x {
        return fp[j];
    }
    let slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    let mut r = slope * (x - xp[j]) + fp[j];
    if r.is_nan() {
        r = slope * (x - xp[j + 1]) + fp[j + 1];
        if r.is_nan() && fp[j] == fp[j + 1] {
            r = fp[j];
        }
    }
    r
}

/// `np.interp(x, xp, fp, left=left, right=right)` over a vector of points.
pub fn interp(
    x: &[f64],
    xp: &[f64],
    fp: &[f64],
    left: Option<f64>,
    right: Option<f64>,
) -> Vec<f64> {
    assert!(
        !xp.is_empty() && xp.len() == fp.len(),
        "interp needs matching non-empty xp and fp"
    );
    let l = left.unwrap_or(fp[0]);
    let r = right.unwrap_or(fp[fp.len() - 1]);
    x.iter().map(|&v| interp_one(v, xp, fp, l, r)).collect()
}

/// numpy's pairwise summation of a contiguous float64 array (`np.sum`, `np.mean`).
pub fn pairwise_sum(a: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    let n = a.len();
    if n < 8 {
        // numpy starts from -0.0 and adds in order
        let mut res = -0.0;
        for &v in a {
            res += v;
        }
        res
    } else if n <= BLOCK {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for k in 0..8 {
                r[k] += a[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `np.mean` of a float64 array (NaN for an empty one, as numpy).
pub fn mean(a: &[f64]) -> f64 {
    pairwise_sum(a) / a.len() as f64
}

/// `np.nanmean`: the sum with NaNs replaced by 0 over the count of non-NaN values.
pub fn nanmean(a: &[f64]) -> f64 {
    let replaced: Vec<f64> = a
        .iter()
        .map(|v| if v.is_nan() { 0.0 } else { *v })
        .collect();
    let count = a.iter().filter(|v| !v.is_nan()).count();
    pairwise_sum(&replaced) / count as f64
}

/// The devkit's `cummean`: running mean ignoring NaNs (0 before the first non-NaN value);
/// all ones when every value is NaN.
pub fn cummean(x: &[f64]) -> Vec<f64> {
    if x.iter().all(|v| v.is_nan()) {
        return vec![1.0; x.len()];
    }
    let mut sum = 0.0;
    let mut count = 0usize;
    x.iter()
        .map(|&v| {
            if !v.is_nan() {
                sum += v;
                count += 1;
            }
            if count == 0 {
                0.0
            } else {
                sum / count as f64
            }
        })
        .collect()
}

/// Python's `round()` on a float (ties to even), as an index.
pub fn py_round(x: f64) -> i64 {
    x.round_ties_even() as i64
}

/// Python's float `%` (result has the sign of the divisor).
pub fn py_mod(a: f64, b: f64) -> f64 {
    let m = a % b;
    if m != 0.0 {
        if (b < 0.0) != (m < 0.0) {
            m + b
        } else {
            m
        }
    } else {
        0.0f64.copysign(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_matches_numpy_bits() {
        let r = linspace(0.0, 1.0, 101);
        assert_eq!(r.len(), 101);
        assert_eq!(r[7], 0.07000000000000001);
        assert_eq!(r[100], 1.0);
        assert_eq!(r[0], 0.0);
    }

    #[test]
    fn interp_follows_numpy_edges_and_repeats() {
        let xp = [0.1, 0.2, 0.2, 0.5];
        let fp = [1.0, 2.0, 3.0, 4.0];
        // below range -> left, above -> right, exact repeat -> last of the run
        assert_eq!(interp_one(0.0, &xp, &fp, 9.0, -9.0), 9.0);
        assert_eq!(interp_one(0.6, &xp, &fp, 9.0, -9.0), -9.0);
        assert_eq!(interp_one(0.2, &xp, &fp, 9.0, -9.0), 3.0);
        assert_eq!(interp_one(0.5, &xp, &fp, 9.0, -9.0), 4.0);
        // between the run's last element and the next
        assert!((interp_one(0.35, &xp, &fp, 9.0, -9.0) - 3.5).abs() < 1e-12);
        assert!((interp_one(0.15, &xp, &fp, 9.0, -9.0) - 1.5).abs() < 1e-12);
    }

    #[test]
    fn pairwise_mean_of_perfect_precision_is_the_devkit_value() {
        let prec = vec![1.0 - 0.1; 90];
        assert_eq!(mean(&prec) / (1.0 - 0.1), 1.0000000000000004);
    }

    #[test]
    fn cummean_and_nanmean_skip_nans() {
        let c = cummean(&[f64::NAN, 1.0, f64::NAN, 3.0]);
        assert_eq!(c, vec![0.0, 1.0, 1.0, 2.0]);
        assert_eq!(cummean(&[f64::NAN, f64::NAN]), vec![1.0, 1.0]);
        assert_eq!(nanmean(&[1.0, f64::NAN, 3.0]), 2.0);
        assert_eq!(py_mod(-1.0, 3.0), 2.0);
        assert_eq!(py_round(10.000000000000002), 10);
    }
}
