//! Ray-cast spinning LiDAR.
//!
//! Beams are spread evenly between `elevation_min_deg` and `elevation_max_deg` (ring 0 is
//! the lowest beam); one column of rays is fired every `azimuth_step_deg`, starting at
//! azimuth -180 deg. Each ray returns the nearest hit among the ground (road, raised
//! sidewalks and kerbs) and every object/scenery part within `max_range`; rays shorter
//! than `min_range` are dropped (the car's own body).
//!
//! A return carries the material's reflectivity scaled by the incidence angle plus noise,
//! rounded to an integer like nuScenes intensities; its range gets Gaussian noise; it is
//! dropped at random with the rig's dropout (and the scene's LiDAR degradation). All noise
//! is keyed by (frame seed, column, beam), so the output does not depend on threading.
//!
//! Points are `[x, y, z, intensity, ring]` float32 in the LiDAR frame, column by column.

use crate::data::frame::{Points, POINT_DIMS};
use crate::data::rig::LidarSpec;
use crate::data::snapshot::{ground_intensity, LidarCondition, Snapshot};
use crate::data::tokens::{hash01, hash_normal};
use std::f64::consts::PI;

/// Noise of the returned intensity (one sigma, 0..255 scale).
pub const INTENSITY_NOISE: f32 = 2.5;

/// Simulate one sweep.
pub fn simulate(spec: &LidarSpec, snap: &Snapshot) -> Points {
    let step = spec.azimuth_step_deg.to_radians();
    let n_cols = (2.0 * PI / step).round() as usize;
    let step = 2.0 * PI / n_cols as f64;
    let beams = spec.beams;
    let elev: Vec<f64> = (0..beams)
        .map(|b| {
            if beams == 1 {
                spec.elevation_min_deg.to_radians()
            } else {
                (spec.elevation_min_deg
                    + (spec.elevation_max_deg - spec.elevation_min_deg) * b as f64
                        / (beams - 1) as f64)
                    .to_radians()
            }
        })
        .collect();

    // Candidate boxes per column from each box's azimuth interval.
    let mut cols: Vec<Vec<u32>> = vec![Vec::new(); n_cols];
    for (k, b) in snap.boxes.iter().enumerate() {
        let r = b.bev_radius();
        let dist = b.center[0].hypot(b.center[1]);
        if dist - r > spec.max_range {
            continue;
        }
        if dist <= r + 0.05 {
            for c in cols.iter_mut() {
                c.push(k as u32);
            }
            continue;
        }
        let ac = b.center[1].atan2(b.center[0]);
        let (mut lo, mut hi) = (0.0f64, 0.0f64);
        for c in b.corners().iter().take(4) {
            let d = wrap(c[1].atan2(c[0]) - ac);
            lo = lo.min(d);
            hi = hi.max(d);
        }
        let c0 = ((ac + lo + PI) / step).floor() as i64 - 1;
        let c1 = ((ac + hi + PI) / step).floor() as i64 + 1;
        for c in c0..=c1 {
            cols[c.rem_euclid(n_cols as i64) as usize].push(k as u32);
        }
    }

    let o = [0.0f64; 3];
    let seed = snap.noise_seed;
    let mut data: Vec<f32> = Vec::with_capacity(n_cols * beams * POINT_DIMS / 2);
    for (ci, cand) in cols.iter().enumerate() {
        let a = -PI + (ci as f64 + 0.5) * step;
        let (sa, ca) = a.sin_cos();
        for (b, &e) in elev.iter().enumerate() {
            if matches!(snap.conditions.lidar, LidarCondition::BeamLoss) && b % 2 == 1 {
                continue;
            }
            let (se, ce) = e.sin_cos();
            let d = [ce * ca, ce * sa, se];
            let mut best = spec.max_range;
            let mut inten = -1.0f32;
            let mut cos_inc = 1.0f64;
            if let Some(g) = snap.ray_ground(o, d) {
                if g.t < best {
                    best = g.t;
                    inten = ground_intensity(g.material);
                    cos_inc = -d[2];
                }
            }
            for &k in cand {
                let bx = &snap.boxes[k as usize];
                if let Some((t, n)) = bx.intersect(o, d) {
                    if t < best {
                        best = t;
                        inten = bx.intensity;
                        cos_inc = -(n[0] * d[0] + n[1] * d[1] + n[2] * d[2]);
                    }
                }
            }
            if inten < 0.0 || best < spec.min_range {
                continue;
            }
            let (ci64, b64) = (ci as i64, b as i64);
            // Random dropout (rig) and the scene's degradation.
            let u = hash01(seed ^ 0x0D0D, ci64, b64) as f64;
            let mut keep = 1.0 - spec.dropout;
            match snap.conditions.lidar {
                LidarCondition::Dropout { p } => keep *= 1.0 - p,
                LidarCondition::SparseFar { beyond, keep: k } if best > beyond => keep *= k,
                _ => {}
            }
            if u >= keep {
                continue;
            }
            let r = best + spec.range_noise_std * hash_normal(seed ^ 0x4A4A, ci64, b64) as f64;
            let i = (inten * (0.55 + 0.45 * cos_inc.clamp(0.0, 1.0) as f32)
                + INTENSITY_NOISE * hash_normal(seed ^ 0x1717, ci64, b64))
            .round()
            .clamp(0.0, 255.0);
            data.extend_from_slice(&[
                (r * d[0]) as f32,
                (r * d[1]) as f32,
                (r * d[2]) as f32,
                i,
                b as f32,
            ]);
        }
    }
    Points { data }
}

fn wrap(a: f64) -> f64 {
    let mut a = a % (2.0 * PI);
    if a > PI {
        a -= 2.0 * PI;
    } else if a <= -PI {
        a += 2.0 * PI;
    }
    a
}

/// Number of points inside each box (nuScenes `num_lidar_pts`).
pub fn count_points_in_boxes(points: &Points, boxes: &[crate::geometry::Box3D]) -> Vec<u32> {
    let mut out = vec![0u32; boxes.len()];
    // Pre-compute the boxes' BEV circles to skip far points quickly.
    let circles: Vec<(f64, f64, f64)> = boxes
        .iter()
        .map(|b| {
            (
                b.center[0],
                b.center[1],
                0.5 * b.size[0].hypot(b.size[1]) + 1e-6,
            )
        })
        .collect();
    for p in points.iter() {
        let (x, y, z) = (p[0] as f64, p[1] as f64, p[2] as f64);
        for (k, b) in boxes.iter().enumerate() {
            let (cx, cy, r) = circles[k];
            if (x - cx).abs() > r || (y - cy).abs() > r {
                continue;
            }
            if b.contains([x, y, z]) {
                out[k] += 1;
            }
        }
    }
    out
}
