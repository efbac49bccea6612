//! Voxelisation of LiDAR points in Rust: points inside the range fall into voxels of a fixed
//! size; each voxel keeps at most `max_points` points (first come), each sample at most
//! `max_voxels` voxels (first come). A dense cell -> voxel index table is reused between
//! calls (only the touched cells are reset), so there is no allocation per point.

use crate::model::config::ModelConfig;

/// Floats stored per voxel point: x, y, z, scaled intensity.
pub const VOXEL_POINT_DIMS: usize = 4;

/// Voxels of a batch, host-side.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Voxels {
    /// `[V, max_points, VOXEL_POINT_DIMS]`, zero-padded.
    pub features: Vec<f32>,
    /// Points per voxel, `[V]`.
    pub num_points: Vec<i64>,
    /// `(batch index, iz, ix, iy)` per voxel, `[V, 4]`.
    pub coords: Vec<i64>,
}

impl Voxels {
    pub fn len(&self) -> usize {
        self.num_points.len()
    }
    pub fn is_empty(&self) -> bool {
        self.num_points.is_empty()
    }
    /// No voxels (the buffers keep their capacity).
    pub fn clear(&mut self) {
        self.features.clear();
        self.num_points.clear();
        self.coords.clear();
    }
}

/// Reusable voxeliser for one configuration.
#[derive(Clone, Debug)]
pub struct Voxelizer {
    pub origin: [f64; 3],
    pub size: [f64; 3],
    pub dims: [usize; 3],
    pub max_points: usize,
    pub max_voxels: usize,
    intensity_scale: f32,
    table: Vec<i32>,
    touched: Vec<usize>,
}

impl Voxelizer {
    pub fn new(cfg: &ModelConfig) -> Self {
        let (origin, size, dims) = Self::geometry(cfg);
        let v = &cfg.lidar.voxel;
        Self {
            origin,
            size,
            dims,
            max_points: v.max_points,
            max_voxels: v.max_voxels,
            intensity_scale: v.intensity_scale as f32,
            table: vec![-1; dims.iter().product()],
            touched: Vec::new(),
        }
    }

    /// Origin, voxel size and grid dimensions (x, y, z) of `cfg`.
    fn geometry(cfg: &ModelConfig) -> ([f64; 3], [f64; 3], [usize; 3]) {
        let v = &cfg.lidar.voxel;
        let g = cfg.bev.grid();
        let nx = ((g.x_max - g.x_min) / v.size[0]).round() as usize;
        let ny = ((g.y_max - g.y_min) / v.size[1]).round() as usize;
        ([g.x_min, g.y_min, v.z_range[0]], v.size, [nx, ny, v.nz()])
    }

    /// Whether this voxeliser is the one [`Self::new`] would make for `cfg`.
    pub fn matches(&self, cfg: &ModelConfig) -> bool {
        let v = &cfg.lidar.voxel;
        (self.origin, self.size, self.dims) == Self::geometry(cfg)
            && (self.max_points, self.max_voxels, self.intensity_scale)
                == (v.max_points, v.max_voxels, v.intensity_scale as f32)
    }

    /// Voxelise one sample's points (`point_dims` floats each: x, y, z, intensity, ...),
    /// mirrored by `flip` (negate x, negate y), appending to `out` with batch index `b`.
    pub fn voxelize_into(
        &mut self,
        points: &[f32],
        point_dims: usize,
        b: i64,
        flip: (bool, bool),
        out: &mut Voxels,
    ) {
        let [nx, ny, nz] = self.dims;
        let p = self.max_points;
        let sx = if flip.0 { -1.0f32 } else { 1.0 };
        let sy = if flip.1 { -1.0f32 } else { 1.0 };
        let first = out.num_points.len();
        let mut count = 0usize;
        let (ox, oy, oz) = (
            self.origin[0] as f32,
            self.origin[1] as f32,
            self.origin[2] as f32,
        );
        let (vx, vy, vz) = (
            self.size[0] as f32,
            self.size[1] as f32,
            self.size[2] as f32,
        );
        for pt in points.chunks_exact(point_dims) {
            let (x, y, z) = (pt[0] * sx, pt[1] * sy, pt[2]);
            let fx = (x - ox) / vx;
            let fy = (y - oy) / vy;
            let fz = (z - oz) / vz;
            if !(fx >= 0.0 && fy >= 0.0 && fz >= 0.0) {
                continue; // also rejects NaN
            }
            let (ix, iy, iz) = (fx as usize, fy as usize, fz as usize);
            if ix >= nx || iy >= ny || iz >= nz {
                continue;
            }
            let cell = (iz * nx + ix) * ny + iy;
            let slot = self.table[cell];
            let v = if slot < 0 {
                if count >= self.max_voxels {
                    continue;
                }
                let v = first + count;
                count += 1;
                self.table[cell] = v as i32;
                self.touched.push(cell);
                out.num_points.push(0);
                out.coords
                    .extend_from_slice(&[b, iz as i64, ix as i64, iy as i64]);
                out.features
                    .resize(out.features.len() + p * VOXEL_POINT_DIMS, 0.0);
                v
            } else {
                slot as usize
            };
            let n = out.num_points[v] as usize;
            if n >= p {
                continue;
            }
            let o = (v * p + n) * VOXEL_POINT_DIMS;
            let intensity = if point_dims > 3 {
                pt[3] * self.intensity_scale
            } else {
                0.0
            };
            out.features[o..o + VOXEL_POINT_DIMS].copy_from_slice(&[x, y, z, intensity]);
            out.num_points[v] += 1;
        }
        for &c in &self.touched {
            self.table[c] = -1;
        }
        self.touched.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vox() -> Voxelizer {
        Voxelizer {
            origin: [-2.0, -2.0, -1.0],
            size: [1.0, 1.0, 2.0],
            dims: [4, 4, 1],
            max_points: 2,
            max_voxels: 3,
            intensity_scale: 0.5,
            table: vec![-1; 16],
            touched: vec![],
        }
    }

    #[test]
    fn caps_points_and_voxels_and_drops_outside() {
        let mut v = vox();
        let mut out = Voxels::default();
        #[rustfmt::skip]
        let pts = [
            0.5, 0.5, 0.0, 10.0,   // cell (2,2)
            0.6, 0.4, 0.0, 20.0,   // cell (2,2)
            0.7, 0.3, 0.0, 30.0,   // cell (2,2): over max_points, dropped
            -1.5, 1.5, 0.0, 0.0,   // cell (0,3)
            5.0, 0.0, 0.0, 0.0,    // outside x
            0.0, 0.0, 3.0, 0.0,    // outside z
            f32::NAN, 0.0, 0.0, 0.0,
            -0.5, -0.5, 0.0, 0.0,  // cell (1,1)
            1.5, 1.5, 0.0, 0.0,    // fourth voxel: over max_voxels, dropped
        ];
        v.voxelize_into(&pts, 4, 7, (false, false), &mut out);
        assert_eq!(out.num_points, vec![2, 1, 1]);
        assert_eq!(out.coords, vec![7, 0, 2, 2, 7, 0, 0, 3, 7, 0, 1, 1]);
        assert_eq!(
            &out.features[0..8],
            &[0.5, 0.5, 0.0, 5.0, 0.6, 0.4, 0.0, 10.0]
        );
        // the table is clean again: a second call starts fresh
        v.voxelize_into(&pts[0..4], 4, 8, (true, false), &mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(&out.coords[12..16], &[8, 0, 1, 2]);
        assert_eq!(out.features[3 * 8], -0.5);
    }
}
