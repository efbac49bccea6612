//! Learning-rate schedule: linear warm-up, then cosine decay to `min_ratio * lr`.

/// Learning rate at `step` (0-based) of `total` steps.
pub fn cosine_with_warmup(
    step: usize,
    total: usize,
    base: f64,
    warmup: usize,
    min_ratio: f64,
) -> f64 {
    if warmup > 0 && step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let t = ((step - warmup.min(step)) as f64 / span).min(1.0);
    let min = base * min_ratio;
    min + 0.5 * (base - min) * (1.0 + (std::f64::consts::PI * t).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays() {
        let lr = |s| cosine_with_warmup(s, 110, 1.0, 10, 0.01);
        assert!((lr(0) - 0.1).abs() < 1e-12);
        assert!((lr(9) - 1.0).abs() < 1e-12);
        assert!((lr(10) - 1.0).abs() < 1e-12);
        assert!((lr(60) - 0.505).abs() < 1e-9);
        assert!((lr(110) - 0.01).abs() < 1e-12);
        assert!(lr(30) > lr(40));
    }
}
