//! Deterministic tokens and hash noise for the synthetic world.
//!
//! nuScenes tokens are 32 lowercase hex digits. Ours are a 128-bit hash of what the record
//! is (`kind`), the dataset seed and the record's indices, so the same seed gives the same
//! tokens byte for byte and different seeds give different ones. Class-like records
//! (category, attribute, visibility, sensor) use [`stable_token`], independent of the seed,
//! so datasets generated with different seeds share them.
//!
//! The same mixer also gives position-keyed noise ([`hash01`]) used for textures and
//! per-pixel sensor noise, so they are identical whichever thread renders a frame.

/// splitmix64 finaliser: a fast, well-mixing 64-bit permutation.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small streaming 128-bit hasher (two mixed 64-bit lanes). Not cryptographic; stable
/// across platforms and releases, unlike `std::hash::DefaultHasher`.
#[derive(Clone, Copy, Debug)]
pub struct Hasher128 {
    a: u64,
    b: u64,
}

impl Default for Hasher128 {
    fn default() -> Self {
        Self {
            a: 0x6A09_E667_F3BC_C908,
            b: 0xBB67_AE85_84CA_A73B,
        }
    }
}

impl Hasher128 {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn u64(mut self, v: u64) -> Self {
        self.a = mix64(self.a ^ v);
        self.b = mix64(self.b.rotate_left(17) ^ v ^ 0x3C6E_F372_FE94_F82B);
        self
    }
    pub fn bytes(mut self, bytes: &[u8]) -> Self {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self = self.u64(u64::from_le_bytes(w));
        }
        self.u64(bytes.len() as u64)
    }
    pub fn str(self, s: &str) -> Self {
        self.bytes(s.as_bytes())
    }
    pub fn finish(self) -> (u64, u64) {
        (
            mix64(self.a ^ self.b.rotate_left(32)),
            mix64(self.b ^ self.a.rotate_left(7)),
        )
    }
    /// 32 lowercase hex digits.
    pub fn hex(self) -> String {
        let (a, b) = self.finish();
        format!("{a:016x}{b:016x}")
    }
}

/// Token of a record that belongs to one generated dataset (seed) and position.
pub fn token(kind: &str, seed: u64, ids: &[u64]) -> String {
    let mut h = Hasher128::new().str(kind).u64(seed);
    for &i in ids {
        h = h.u64(i);
    }
    h.hex()
}

/// Token of a class-like record (category, attribute, sensor, ...): independent of the seed.
pub fn stable_token(kind: &str, name: &str) -> String {
    Hasher128::new()
        .str("altermoma-stable")
        .str(kind)
        .str(name)
        .hex()
}

/// One well-mixed 64-bit hash of a seed and two integer coordinates.
#[inline]
pub fn hash2(seed: u64, a: i64, b: i64) -> u64 {
    mix64(
        seed ^ (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (b as u64)
                .wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
                .rotate_left(31),
    )
}

/// Uniform noise in [0, 1) keyed by a seed and two integer coordinates.
#[inline]
pub fn hash01(seed: u64, a: i64, b: i64) -> f32 {
    (hash2(seed, a, b) >> 40) as f32 / (1u64 << 24) as f32
}

/// Approximately standard-normal noise keyed like [`hash01`] (sum of four uniforms, scaled).
#[inline]
pub fn hash_normal(seed: u64, a: i64, b: i64) -> f32 {
    let h = hash2(seed ^ 0x5555_AAAA_5555_AAAA, a, b);
    let s = (h & 0xFFFF) as f32
        + ((h >> 16) & 0xFFFF) as f32
        + ((h >> 32) & 0xFFFF) as f32
        + (h >> 48) as f32;
    // Sum of 4 U(0, 65536): mean 131070, std 65536 * sqrt(4/12).
    (s - 131_070.0) / (65_536.0 * 0.577_350_3)
}

/// Three independent zero-mean, unit-variance noise values (triangular distribution) from
/// one hash: cheap per-pixel colour noise.
#[inline]
pub fn hash_noise3(seed: u64, a: i64, b: i64) -> [f32; 3] {
    let h = hash2(seed, a, b);
    let u = |k: u32| ((h >> (10 * k)) & 0x3FF) as f32 / 1024.0;
    // (U1 + U2 - 1) has variance 1/6.
    let s = 2.449_489_7;
    [
        (u(0) + u(1) - 1.0) * s,
        (u(2) + u(3) - 1.0) * s,
        (u(4) + u(5) - 1.0) * s,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stable_hex_and_distinct() {
        let t = token("sample", 7, &[1, 2]);
        assert_eq!(t.len(), 32);
        assert!(t
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(t, token("sample", 7, &[1, 2]));
        assert_ne!(t, token("sample", 8, &[1, 2]));
        assert_ne!(t, token("sample", 7, &[2, 1]));
        assert_ne!(t, token("sample_data", 7, &[1, 2]));
        assert_eq!(
            stable_token("category", "vehicle.car"),
            stable_token("category", "vehicle.car")
        );
        assert_ne!(
            stable_token("category", "vehicle.car"),
            stable_token("category", "vehicle.bus")
        );
    }

    #[test]
    fn noise_statistics_are_sane() {
        let n = 20_000;
        let (mut s, mut s2, mut u) = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..n {
            let v = hash_normal(3, i, -i) as f64;
            s += v;
            s2 += v * v;
            u += hash01(3, i, 5) as f64;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
        assert!((u / n as f64 - 0.5).abs() < 0.01);
        let (mut m, mut v) = ([0.0f64; 3], [0.0f64; 3]);
        for i in 0..n {
            let x = hash_noise3(9, i, 2 * i);
            for c in 0..3 {
                m[c] += x[c] as f64;
                v[c] += (x[c] as f64).powi(2);
            }
        }
        for c in 0..3 {
            assert!(
                (m[c] / n as f64).abs() < 0.03 && (v[c] / n as f64 - 1.0).abs() < 0.06,
                "{m:?} {v:?}"
            );
        }
    }
}
