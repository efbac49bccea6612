//! The world frozen at one capture time, in the LiDAR frame: every object part as an
//! oriented box, the ground surface with its materials, and the scene's conditions. The
//! LiDAR and camera simulators both render a [`Snapshot`], so they see the same world.
//!
//! The ego drives along the layout's +x axis, so the LiDAR frame's axes are parallel to the
//! layout frame's: layout (x, y) = LiDAR (x, y) + `lidar_xy`, and the road surface is at
//! LiDAR z = -`lidar_height`.
//!
//! Surface appearance lives here too: the camera colour of each ground material (with
//! position-keyed texture so it is stable from frame to frame) and its LiDAR reflectivity.
//! Paint is bright white/yellow in the camera but only slightly more reflective than asphalt
//! for the LiDAR (about one noise sigma), on purpose: painted map classes (crossings, stop
//! lines, dividers) are a camera strength.

use crate::data::layout::{Layout, Material, KERB_HEIGHT};
use crate::data::tokens::hash01;

/// Owner id of scenery (not annotated).
pub const NO_OWNER: u32 = u32::MAX;

/// Camera weather and light.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Weather {
    Clear,
    /// Dark, noisy images; the LiDAR is unaffected.
    Night,
    /// Contrast falls off with distance (`visibility` metres); the LiDAR is unaffected.
    Fog {
        visibility: f64,
    },
}

/// LiDAR degradations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LidarCondition {
    Normal,
    /// Extra random dropout of every return with probability `p`.
    Dropout {
        p: f64,
    },
    /// Returns beyond `beyond` metres survive with probability `keep`.
    SparseFar {
        beyond: f64,
        keep: f64,
    },
    /// Every other beam is dead.
    BeamLoss,
}

/// Per-scene conditions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conditions {
    pub weather: Weather,
    pub lidar: LidarCondition,
    /// Unit vector towards the sun (layout/LiDAR axes).
    pub sun: [f64; 3],
}

impl Conditions {
    /// Short human description (nuScenes `scene.description` style).
    pub fn describe(&self) -> String {
        let w = match self.weather {
            Weather::Clear => "day, clear".to_string(),
            Weather::Night => "night".to_string(),
            Weather::Fog { visibility } => format!("fog ({visibility:.0} m visibility)"),
        };
        let l = match self.lidar {
            LidarCondition::Normal => String::new(),
            LidarCondition::Dropout { p } => format!(", lidar dropout {:.0}%", p * 100.0),
            LidarCondition::SparseFar { beyond, keep } => format!(
                ", lidar sparse beyond {beyond:.0} m ({:.0}% kept)",
                keep * 100.0
            ),
            LidarCondition::BeamLoss => ", lidar half the beams lost".to_string(),
        };
        format!("{w}{l}")
    }
}

/// One part of an object as an oriented box (rotation about z only) in the LiDAR frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimBox {
    pub center: [f64; 3],
    /// Half extents along the box's own x, y, z.
    pub half: [f64; 3],
    pub cos: f64,
    pub sin: f64,
    pub color: [u8; 3],
    pub intensity: f32,
    /// Actor index in the scene, or [`NO_OWNER`].
    pub owner: u32,
}

impl SimBox {
    /// Ray-box intersection (slab test in the box frame): the entry distance along `d` and
    /// the outward normal of the face hit (LiDAR frame). `d` need not be unit length; `t`
    /// is in units of `d`. Rays starting inside the box report no hit.
    #[inline]
    pub fn intersect(&self, o: [f64; 3], d: [f64; 3]) -> Option<(f64, [f64; 3])> {
        let (c, s) = (self.cos, self.sin);
        let px = o[0] - self.center[0];
        let py = o[1] - self.center[1];
        let lo = [c * px + s * py, -s * px + c * py, o[2] - self.center[2]];
        let ld = [c * d[0] + s * d[1], -s * d[0] + c * d[1], d[2]];
        let mut t_in = f64::NEG_INFINITY;
        let mut t_out = f64::INFINITY;
        let mut axis = 0usize;
        let mut sign = 1.0;
        for k in 0..3 {
            if ld[k].abs() < 1e-12 {
                if lo[k].abs() > self.half[k] {
                    return None;
                }
                continue;
            }
            let inv = 1.0 / ld[k];
            let mut t0 = (-self.half[k] - lo[k]) * inv;
            let mut t1 = (self.half[k] - lo[k]) * inv;
            let mut sg = -1.0;
            if t0 > t1 {
                std::mem::swap(&mut t0, &mut t1);
                sg = 1.0;
            }
            if t0 > t_in {
                t_in = t0;
                axis = k;
                sign = sg;
            }
            t_out = t_out.min(t1);
            if t_in > t_out {
                return None;
            }
        }
        if t_in <= 0.0 || t_out < t_in {
            return None;
        }
        let n = match axis {
            0 => [sign * c, sign * s, 0.0],
            1 => [-sign * s, sign * c, 0.0],
            _ => [0.0, 0.0, sign],
        };
        Some((t_in, n))
    }

    /// Corners: bottom four counter-clockwise from (+x, +y), then the top four.
    pub fn corners(&self) -> [[f64; 3]; 8] {
        let [hx, hy, hz] = self.half;
        let xs = [hx, -hx, -hx, hx];
        let ys = [hy, hy, -hy, -hy];
        let mut out = [[0.0; 3]; 8];
        for k in 0..8 {
            let (x, y) = (xs[k % 4], ys[k % 4]);
            let z = if k < 4 { -hz } else { hz };
            out[k] = [
                self.center[0] + self.cos * x - self.sin * y,
                self.center[1] + self.sin * x + self.cos * y,
                self.center[2] + z,
            ];
        }
        out
    }

    /// Radius of the bounding circle in the ground plane.
    pub fn bev_radius(&self) -> f64 {
        self.half[0].hypot(self.half[1])
    }
}

/// The world at one capture time.
#[derive(Clone, Debug)]
pub struct Snapshot<'a> {
    pub layout: &'a Layout,
    pub lidar_xy: [f64; 2],
    pub lidar_height: f64,
    pub boxes: Vec<SimBox>,
    pub conditions: Conditions,
    /// Seed of this frame's sensor noise.
    pub noise_seed: u64,
}

/// A ground hit.
#[derive(Clone, Copy, Debug)]
pub struct GroundHit {
    pub t: f64,
    pub material: Material,
    /// Layout-frame coordinates of the hit (texture lookups).
    pub lx: f64,
    pub ly: f64,
}

impl Snapshot<'_> {
    /// Intersect a ray (LiDAR frame) with the ground: the road surface and the raised
    /// sidewalks/verges. `t` is in units of `d`.
    #[inline]
    pub fn ray_ground(&self, o: [f64; 3], d: [f64; 3]) -> Option<GroundHit> {
        if d[2] > -1e-9 {
            return None;
        }
        let z_road = -self.lidar_height;
        let z_raised = z_road + KERB_HEIGHT;
        let tr = (z_raised - o[2]) / d[2];
        let (xr, yr) = (
            o[0] + tr * d[0] + self.lidar_xy[0],
            o[1] + tr * d[1] + self.lidar_xy[1],
        );
        let mr = self.layout.material(xr, yr);
        if mr.raised() && tr > 0.0 {
            return Some(GroundHit {
                t: tr,
                material: mr,
                lx: xr,
                ly: yr,
            });
        }
        let t0 = (z_road - o[2]) / d[2];
        if t0 <= 0.0 {
            return None;
        }
        let (x0, y0) = (
            o[0] + t0 * d[0] + self.lidar_xy[0],
            o[1] + t0 * d[1] + self.lidar_xy[1],
        );
        let m0 = self.layout.material(x0, y0);
        // Between the two planes the ray went through a kerb's side face.
        let material = if m0.raised() { Material::Kerb } else { m0 };
        Some(GroundHit {
            t: t0,
            material,
            lx: x0,
            ly: y0,
        })
    }
}

/// LiDAR reflectivity (0..255 scale) of a ground material.
pub fn ground_intensity(m: Material) -> f32 {
    match m {
        Material::Grass => 4.0,
        Material::Asphalt => 6.0,
        Material::CarparkAsphalt => 7.0,
        Material::WhitePaint => 9.0,
        Material::YellowPaint => 8.5,
        Material::Sidewalk => 16.0,
        Material::Kerb => 22.0,
    }
}

/// Camera colour (linear 0..255) of the ground at a layout-frame point, with texture.
#[inline]
pub fn ground_color(m: Material, lx: f64, ly: f64) -> [f32; 3] {
    let fine = hash01(0xA5, (lx * 4.0).floor() as i64, (ly * 4.0).floor() as i64) - 0.5;
    let coarse = hash01(0x5A, (lx * 0.5).floor() as i64, (ly * 0.5).floor() as i64) - 0.5;
    let (base, tex) = match m {
        Material::Asphalt => ([70.0, 70.0, 73.0], 16.0 * fine + 10.0 * coarse),
        Material::CarparkAsphalt => ([104.0, 103.0, 100.0], 14.0 * fine + 8.0 * coarse),
        Material::WhitePaint => ([232.0, 232.0, 226.0], 14.0 * fine),
        Material::YellowPaint => ([230.0, 188.0, 40.0], 12.0 * fine),
        Material::Sidewalk => {
            let joint = (lx.rem_euclid(1.5) < 0.05) || (ly.rem_euclid(1.5) < 0.05);
            let j = if joint { -35.0 } else { 0.0 };
            ([172.0, 166.0, 156.0], 10.0 * fine + j)
        }
        Material::Kerb => ([205.0, 205.0, 200.0], 8.0 * fine),
        Material::Grass => ([70.0, 118.0, 50.0], 30.0 * fine + 14.0 * coarse),
    };
    [base[0] + tex, base[1] + tex, base[2] + tex]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_box(yaw: f64) -> SimBox {
        SimBox {
            center: [10.0, 0.0, 0.0],
            half: [2.0, 1.0, 0.5],
            cos: yaw.cos(),
            sin: yaw.sin(),
            color: [0; 3],
            intensity: 0.0,
            owner: 0,
        }
    }

    #[test]
    fn ray_hits_the_near_face_with_outward_normal() {
        let b = unit_box(0.0);
        let (t, n) = b.intersect([0.0, 0.0, 0.0], [1.0, 0.0, 0.0]).unwrap();
        assert!(
            (t - 8.0).abs() < 1e-12 && (n[0] + 1.0).abs() < 1e-12,
            "{t} {n:?}"
        );
        // Rotated by 90 degrees the box is 1 m deep along x.
        let b = unit_box(std::f64::consts::FRAC_PI_2);
        let (t, n) = b.intersect([0.0, 0.0, 0.0], [1.0, 0.0, 0.0]).unwrap();
        assert!(
            (t - 9.0).abs() < 1e-9 && (n[0] + 1.0).abs() < 1e-9,
            "{t} {n:?}"
        );
        assert!(b.intersect([0.0, 0.0, 0.0], [0.0, 1.0, 0.0]).is_none());
        assert!(b.intersect([0.0, 0.0, 0.0], [-1.0, 0.0, 0.0]).is_none());
        let (t, n) = b.intersect([10.0, 0.0, 5.0], [0.0, 0.0, -1.0]).unwrap();
        assert!((t - 4.5).abs() < 1e-12 && (n[2] - 1.0).abs() < 1e-12);
        // Corners lie on the box surface.
        for c in unit_box(0.7).corners() {
            let b = unit_box(0.7);
            let (px, py) = (c[0] - b.center[0], c[1] - b.center[1]);
            let lx = b.cos * px + b.sin * py;
            let ly = -b.sin * px + b.cos * py;
            assert!((lx.abs() - 2.0).abs() < 1e-9 && (ly.abs() - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn paint_is_bright_in_the_camera_and_faint_for_the_lidar() {
        let cam = |m| {
            let c = ground_color(m, 0.3, 0.3);
            (c[0] + c[1] + c[2]) / 3.0
        };
        assert!(cam(Material::WhitePaint) > 2.5 * cam(Material::Asphalt));
        let contrast = ground_intensity(Material::WhitePaint) - ground_intensity(Material::Asphalt);
        assert!(contrast > 0.0 && contrast < 4.0);
    }
}
