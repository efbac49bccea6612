//! Z-buffered rasteriser for the rig's pinhole cameras.
//!
//! Per pixel, a ray from the optical centre meets the ground (road, paint, sidewalks,
//! kerbs, grass; textured by position) or the sky. Every object part is then drawn as six
//! flat-shaded faces (back faces culled, clipped at the near plane, perspective-correct
//! depth) into the z-buffer. Shading is ambient plus a Lambert term towards the scene's
//! sun. Weather post-processing follows: distance haze by day, strong distance fog, or a
//! dark, noisy night exposure. Sensor noise is keyed by (frame seed, camera, pixel).
//!
//! The renderer also measures, for every annotated object, how many of its pixels are
//! visible and how many it would cover without occluders, which gives nuScenes visibility
//! levels, and can return the per-pixel owner buffer (tests check that projected boxes
//! land on their objects with it).

use crate::data::frame::CameraCalib;
use crate::data::snapshot::{ground_color, Snapshot, Weather, NO_OWNER};
use crate::data::tokens::hash_noise3;
use nalgebra::{Matrix3, Vector3};

const NEAR: f64 = 0.05;
const FAR: f64 = 250.0;

/// What one camera saw.
#[derive(Clone, Debug)]
pub struct CameraRender {
    pub image: image::RgbImage,
    /// Per actor index: (visible pixels, pixels covered without occluders).
    pub coverage: Vec<(u32, u32)>,
    /// Row-major owner of every pixel (actor index or [`NO_OWNER`]), when requested.
    pub owners: Option<Vec<u32>>,
}

#[derive(Clone, Copy)]
struct Tri {
    owner: u32,
    /// Screen x, y and camera depth z.
    v: [[f64; 3]; 3],
    color: [f32; 3],
}

/// Face corner indices (cyclic) into [`crate::data::snapshot::SimBox::corners`] and the
/// face's local axis (0 = x, 1 = y, 2 = z) and sign.
const FACES: [([usize; 4], usize, f64); 6] = [
    ([0, 3, 7, 4], 0, 1.0),
    ([1, 2, 6, 5], 0, -1.0),
    ([0, 1, 5, 4], 1, 1.0),
    ([3, 2, 6, 7], 1, -1.0),
    ([4, 5, 6, 7], 2, 1.0),
    ([0, 1, 2, 3], 2, -1.0),
];

/// Render one camera. `n_actors` sizes the coverage table; `cam_index` keys the noise.
pub fn render(
    calib: &CameraCalib,
    snap: &Snapshot,
    n_actors: usize,
    cam_index: usize,
    keep_owners: bool,
) -> CameraRender {
    let (w, h) = (calib.width as usize, calib.height as usize);
    let k = calib.intrinsics;
    let (fx, fy, cx, cy) = (k[(0, 0)], k[(1, 1)], k[(0, 2)], k[(1, 2)]);
    let rot: Matrix3<f64> = *calib.cam_to_lidar.rotation.to_rotation_matrix().matrix();
    let origin = calib.cam_to_lidar.translation.vector;
    let o = [origin.x, origin.y, origin.z];
    let sun = snap.conditions.sun;

    let mut depth = vec![f32::INFINITY; w * h];
    let mut owner = vec![NO_OWNER; w * h];
    let mut color = vec![[0f32; 3]; w * h];

    // 1. Ground and sky.
    let ground_light = (0.62 + 0.38 * sun[2].max(0.0)) as f32;
    for v in 0..h {
        for u in 0..w {
            let rc = Vector3::new((u as f64 + 0.5 - cx) / fx, (v as f64 + 0.5 - cy) / fy, 1.0);
            let dv = rot * rc;
            let d = [dv.x, dv.y, dv.z];
            let idx = v * w + u;
            match snap.ray_ground(o, d) {
                Some(g) if g.t < FAR => {
                    let c = ground_color(g.material, g.lx, g.ly);
                    color[idx] = [
                        c[0] * ground_light,
                        c[1] * ground_light,
                        c[2] * ground_light,
                    ];
                    depth[idx] = g.t as f32;
                }
                _ => {
                    let el = d[2].atan2(d[0].hypot(d[1])).max(0.0) as f32;
                    let t = (el / 0.8).min(1.0);
                    color[idx] = [205.0 - 95.0 * t, 218.0 - 68.0 * t, 232.0 - 22.0 * t];
                }
            }
        }
    }

    // 2. Object faces: cull, shade, clip, project.
    let to_cam = |p: [f64; 3]| -> [f64; 3] {
        let q = rot.transpose() * Vector3::new(p[0] - o[0], p[1] - o[1], p[2] - o[2]);
        [q.x, q.y, q.z]
    };
    let mut tris: Vec<Tri> = Vec::new();
    for b in &snap.boxes {
        let c = to_cam(b.center);
        let rad = (b.half[0] * b.half[0] + b.half[1] * b.half[1] + b.half[2] * b.half[2]).sqrt();
        if c[2] + rad < NEAR || c[2] - rad > FAR {
            continue;
        }
        // Quick frustum test on the bounding sphere (with a generous margin).
        if c[2] > rad {
            let sx = fx * c[0] / c[2] + cx;
            let sy = fy * c[1] / c[2] + cy;
            let sr = fx.max(fy) * rad / (c[2] - rad).max(NEAR);
            if sx + sr < 0.0 || sx - sr > w as f64 || sy + sr < 0.0 || sy - sr > h as f64 {
                continue;
            }
        }
        let corners = b.corners();
        for (idx, axis, sign) in FACES {
            let n = match axis {
                0 => [sign * b.cos, sign * b.sin, 0.0],
                1 => [-sign * b.sin, sign * b.cos, 0.0],
                _ => [0.0, 0.0, sign],
            };
            let fcx = (corners[idx[0]][0] + corners[idx[2]][0]) / 2.0;
            let fcy = (corners[idx[0]][1] + corners[idx[2]][1]) / 2.0;
            let fcz = (corners[idx[0]][2] + corners[idx[2]][2]) / 2.0;
            if n[0] * (fcx - o[0]) + n[1] * (fcy - o[1]) + n[2] * (fcz - o[2]) >= 0.0 {
                continue;
            }
            let lambert = (n[0] * sun[0] + n[1] * sun[1] + n[2] * sun[2]).max(0.0);
            let sky = if axis == 2 && sign > 0.0 { 0.12 } else { 0.0 };
            let light = (0.5 + 0.5 * lambert + sky) as f32;
            let col = [
                b.color[0] as f32 * light,
                b.color[1] as f32 * light,
                b.color[2] as f32 * light,
            ];
            let poly: Vec<[f64; 3]> = idx.iter().map(|&i| to_cam(corners[i])).collect();
            let clipped = clip_near(&poly);
            if clipped.len() < 3 {
                continue;
            }
            let scr: Vec<[f64; 3]> = clipped
                .iter()
                .map(|p| [fx * p[0] / p[2] + cx, fy * p[1] / p[2] + cy, p[2]])
                .collect();
            for t in 1..scr.len() - 1 {
                tris.push(Tri {
                    owner: b.owner,
                    v: [scr[0], scr[t], scr[t + 1]],
                    color: col,
                });
            }
        }
    }

    // 3. Z-buffer pass; remember each actor's screen extent.
    let mut extent: Vec<[i64; 4]> = vec![[i64::MAX, i64::MAX, i64::MIN, i64::MIN]; n_actors];
    for t in &tris {
        raster(t.v, w, h, |px, py, z| {
            let i = py * w + px;
            if (z as f32) < depth[i] {
                depth[i] = z as f32;
                owner[i] = t.owner;
                color[i] = t.color;
            }
        });
        if (t.owner as usize) < n_actors {
            let e = &mut extent[t.owner as usize];
            for v in &t.v {
                e[0] = e[0].min(v[0].floor().max(0.0) as i64);
                e[1] = e[1].min(v[1].floor().max(0.0) as i64);
                e[2] = e[2].max((v[0].ceil() as i64).min(w as i64 - 1));
                e[3] = e[3].max((v[1].ceil() as i64).min(h as i64 - 1));
            }
        }
    }

    // 4. Visible vs unoccluded pixels per actor.
    let mut coverage = vec![(0u32, 0u32); n_actors];
    let mut by_owner: Vec<Vec<usize>> = vec![Vec::new(); n_actors];
    for (i, t) in tris.iter().enumerate() {
        if (t.owner as usize) < n_actors {
            by_owner[t.owner as usize].push(i);
        }
    }
    for a in 0..n_actors {
        let e = extent[a];
        if by_owner[a].is_empty() || e[2] < e[0] || e[3] < e[1] {
            continue;
        }
        let (ew, eh) = ((e[2] - e[0] + 1) as usize, (e[3] - e[1] + 1) as usize);
        let mut mask = vec![false; ew * eh];
        for &ti in &by_owner[a] {
            raster(tris[ti].v, w, h, |px, py, _| {
                let (mx, my) = (px as i64 - e[0], py as i64 - e[1]);
                if mx >= 0 && my >= 0 && (mx as usize) < ew && (my as usize) < eh {
                    mask[my as usize * ew + mx as usize] = true;
                }
            });
        }
        let total = mask.iter().filter(|&&m| m).count() as u32;
        let mut visible = 0u32;
        for my in 0..eh {
            for mx in 0..ew {
                let (px, py) = (e[0] as usize + mx, e[1] as usize + my);
                if owner[py * w + px] == a as u32 {
                    visible += 1;
                }
            }
        }
        coverage[a] = (visible, total);
    }

    // 5. Weather, exposure and sensor noise.
    let seed = snap.noise_seed ^ (0xCA3E_0000 + cam_index as u64);
    let (noise, gain, fog) = match snap.conditions.weather {
        Weather::Clear => (3.5f32, 1.0f32, None),
        Weather::Night => (9.0, 0.24, None),
        Weather::Fog { visibility } => (4.5, 0.95, Some(visibility)),
    };
    let night = matches!(snap.conditions.weather, Weather::Night);
    let mut img = image::RgbImage::new(w as u32, h as u32);
    for (i, px) in img.pixels_mut().enumerate() {
        let mut c = color[i];
        let d = depth[i] as f64;
        let sky = !d.is_finite();
        if night && sky {
            c = [60.0, 70.0, 110.0];
        }
        match fog {
            Some(vis) => {
                let f = if sky { 0.0 } else { (-d / vis).exp() as f32 };
                for ch in 0..3 {
                    c[ch] = 192.0 * (1.0 - f) + c[ch] * f;
                }
            }
            None if !sky => {
                let f = (-d / 450.0).exp() as f32;
                for (ch, hz) in [210.0f32, 218.0, 228.0].iter().enumerate() {
                    c[ch] = hz * (1.0 - f) + c[ch] * f;
                }
            }
            None => {}
        }
        let (u, v) = ((i % w) as i64, (i / w) as i64);
        let n3 = hash_noise3(seed, v, u);
        let mut out = [0u8; 3];
        for ch in 0..3 {
            out[ch] = (c[ch] * gain + noise * n3[ch]).round().clamp(0.0, 255.0) as u8;
        }
        *px = image::Rgb(out);
    }
    CameraRender {
        image: img,
        coverage,
        owners: keep_owners.then_some(owner),
    }
}

/// Clip a convex polygon (camera frame) to z >= NEAR.
fn clip_near(poly: &[[f64; 3]]) -> Vec<[f64; 3]> {
    let mut out = Vec::with_capacity(poly.len() + 2);
    for i in 0..poly.len() {
        let a = poly[i];
        let b = poly[(i + 1) % poly.len()];
        let (ina, inb) = (a[2] >= NEAR, b[2] >= NEAR);
        if ina {
            out.push(a);
        }
        if ina != inb {
            let t = (NEAR - a[2]) / (b[2] - a[2]);
            out.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]), NEAR]);
        }
    }
    out
}

/// Rasterise a screen-space triangle (x, y, camera depth) at pixel centres, calling
/// `frag(px, py, depth)` with perspective-correct depth.
fn raster(v: [[f64; 3]; 3], w: usize, h: usize, mut frag: impl FnMut(usize, usize, f64)) {
    let area =
        (v[1][0] - v[0][0]) * (v[2][1] - v[0][1]) - (v[1][1] - v[0][1]) * (v[2][0] - v[0][0]);
    if area.abs() < 1e-12 {
        return;
    }
    let min_x = v[0][0].min(v[1][0]).min(v[2][0]);
    let max_x = v[0][0].max(v[1][0]).max(v[2][0]);
    let min_y = v[0][1].min(v[1][1]).min(v[2][1]);
    let max_y = v[0][1].max(v[1][1]).max(v[2][1]);
    if max_x < 0.0 || max_y < 0.0 || min_x > w as f64 || min_y > h as f64 {
        return;
    }
    let x0 = (min_x - 0.5).ceil().max(0.0) as usize;
    let x1 = ((max_x - 0.5).floor() as i64).min(w as i64 - 1);
    let y0 = (min_y - 0.5).ceil().max(0.0) as usize;
    let y1 = ((max_y - 0.5).floor() as i64).min(h as i64 - 1);
    if x1 < x0 as i64 || y1 < y0 as i64 {
        return;
    }
    let inv = 1.0 / area;
    let iz = [1.0 / v[0][2], 1.0 / v[1][2], 1.0 / v[2][2]];
    for py in y0..=y1 as usize {
        let sy = py as f64 + 0.5;
        for px in x0..=x1 as usize {
            let sx = px as f64 + 0.5;
            let w0 =
                ((v[2][0] - v[1][0]) * (sy - v[1][1]) - (v[2][1] - v[1][1]) * (sx - v[1][0])) * inv;
            let w1 =
                ((v[0][0] - v[2][0]) * (sy - v[2][1]) - (v[0][1] - v[2][1]) * (sx - v[2][0])) * inv;
            let w2 = 1.0 - w0 - w1;
            if w0 < 0.0 || w1 < 0.0 || w2 < 0.0 {
                continue;
            }
            let z = 1.0 / (w0 * iz[0] + w1 * iz[1] + w2 * iz[2]);
            frag(px, py, z);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triangle_covers_its_area_and_interpolates_depth() {
        let mut n = 0;
        let mut zs = Vec::new();
        raster(
            [[0.0, 0.0, 2.0], [10.0, 0.0, 2.0], [0.0, 10.0, 2.0]],
            20,
            20,
            |_, _, z| {
                n += 1;
                zs.push(z);
            },
        );
        // Half of a 10x10 square, give or take the diagonal.
        assert!((45..=55).contains(&n), "{n}");
        assert!(zs.iter().all(|z| (z - 2.0).abs() < 1e-9));
        // Same triangle with the other winding covers the same pixels.
        let mut m = 0;
        raster(
            [[0.0, 0.0, 2.0], [0.0, 10.0, 2.0], [10.0, 0.0, 2.0]],
            20,
            20,
            |_, _, _| m += 1,
        );
        assert_eq!(n, m);
    }

    #[test]
    fn near_clipping_keeps_the_visible_part() {
        let q = [
            [0.0, 0.0, -1.0],
            [1.0, 0.0, -1.0],
            [1.0, 0.0, 1.0],
            [0.0, 0.0, 1.0],
        ];
        let c = clip_near(&q);
        assert_eq!(c.len(), 4);
        assert!(c.iter().all(|p| p[2] >= NEAR - 1e-12));
    }
}
