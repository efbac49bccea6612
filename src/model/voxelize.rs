//! Voxelisation of LiDAR points in Rust: points inside the range fall into voxels of a fixed
//! size; each voxel keeps at most `max_points` points (first come), each sample at most
//! `max_voxels` voxels (first come). A dense cell -> voxel index table is reused between
//! calls (only the touched cells are reset), so there is no allocation per point.

use crate::data::POINT_DIMS;
use crate::model::batch::{host_tensor_with, VoxelTensors};
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
    /// Host vectors for tests and tools (each call zero-fills room for `max_voxels`); batches
    /// use [`Self::voxelize_tensors`].
    pub fn voxelize_into(
        &mut self,
        points: &[f32],
        point_dims: usize,
        b: i64,
        flip: (bool, bool),
        out: &mut Voxels,
    ) {
        let first = out.len();
        let cap = first + self.max_voxels;
        let p = self.max_points;
        out.features.resize(cap * p * VOXEL_POINT_DIMS, 0.0);
        out.num_points.resize(cap, 0);
        out.coords.resize(cap * 4, 0);
        let slots = VoxelSlots {
            features: &mut out.features[first * p * VOXEL_POINT_DIMS..],
            num_points: &mut out.num_points[first..],
            coords: &mut out.coords[first * 4..],
        };
        let n = self.voxelize_slots(points, point_dims, b, flip, slots);
        out.features.truncate((first + n) * p * VOXEL_POINT_DIMS);
        out.num_points.truncate(first + n);
        out.coords.truncate((first + n) * 4);
    }

    /// Voxelise `samples` (batch index, points of `POINT_DIMS` floats, flip) straight into the
    /// storage of new CPU tensors: room for `max_voxels` per sample of a batch of
    /// `batch_size`, narrowed to the voxels written (no copy from a host buffer).
    pub fn voxelize_tensors<'a>(
        &mut self,
        samples: impl Iterator<Item = (i64, &'a [f32], (bool, bool))>,
        batch_size: usize,
    ) -> VoxelTensors {
        let (p, per) = (self.max_points, self.max_voxels);
        let cap = (batch_size * per) as i64;
        let mut written = 0usize;
        let (mut num_points_t, mut coords_t) = (None, None);
        let features_t = host_tensor_with(&[cap, p as i64, VOXEL_POINT_DIMS as i64], |features: &mut [f32]| {
            num_points_t = Some(host_tensor_with(&[cap], |num_points: &mut [i64]| {
                coords_t = Some(host_tensor_with(&[cap, 4], |coords: &mut [i64]| {
                    for (k, (b, points, flip)) in samples.enumerate() {
                        assert!(k < batch_size, "more samples than the batch size {batch_size}");
                        let slots = VoxelSlots {
                            features: &mut features[written * p * VOXEL_POINT_DIMS..],
                            num_points: &mut num_points[written..],
                            coords: &mut coords[written * 4..],
                        };
                        written += self.voxelize_slots(points, POINT_DIMS, b, flip, slots);
                    }
                }));
            }));
        });
        let n = written as i64;
        VoxelTensors {
            features: features_t.narrow(0, 0, n),
            num_points: num_points_t.expect("filled above").narrow(0, 0, n),
            coords: coords_t.expect("filled above").narrow(0, 0, n),
        }
    }

    /// [`Self::voxelize_into`] writing into `out`'s slots from the first one on (room for
    /// `max_voxels` voxels); returns how many voxels were written. Slots past that keep
    /// whatever they held: the batch builder voxelises straight into tensor storage this way
    /// and narrows the tensors to the voxels written.
    pub fn voxelize_slots(
        &mut self,
        points: &[f32],
        point_dims: usize,
        b: i64,
        flip: (bool, bool),
        out: VoxelSlots,
    ) -> usize {
        let [nx, ny, nz] = self.dims;
        let p = self.max_points;
        let stride = p * VOXEL_POINT_DIMS;
        let cap = self.max_voxels;
        assert!(
            out.features.len() >= cap * stride && out.num_points.len() >= cap && out.coords.len() >= cap * 4,
            "voxel slots hold fewer than max_voxels = {cap} voxels"
        );
        let sx = if flip.0 { -1.0f32 } else { 1.0 };
        let sy = if flip.1 { -1.0f32 } else { 1.0 };
        let (ox, oy, oz) = (self.origin[0] as f32, self.origin[1] as f32, self.origin[2] as f32);
        let (vx, vy, vz) = (self.size[0] as f32, self.size[1] as f32, self.size[2] as f32);
        let table = &mut self.table[..nx * ny * nz];
        let mut count = 0usize;
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
            let slot = table[cell];
            let v = if slot < 0 {
                if count >= cap {
                    continue;
                }
                let v = count;
                count += 1;
                table[cell] = v as i32;
                self.touched.push(cell);
                out.num_points[v] = 0;
                out.coords[v * 4..v * 4 + 4].copy_from_slice(&[b, iz as i64, ix as i64, iy as i64]);
                out.features[v * stride..(v + 1) * stride].fill(0.0);
                v
            } else {
                slot as usize
            };
            let n = out.num_points[v] as usize;
            if n >= p {
                continue;
            }
            let o = v * stride + n * VOXEL_POINT_DIMS;
            let intensity = if point_dims > 3 { pt[3] * self.intensity_scale } else { 0.0 };
            out.features[o..o + VOXEL_POINT_DIMS].copy_from_slice(&[x, y, z, intensity]);
            out.num_points[v] += 1;
        }
        for &c in &self.touched {
            table[c] = -1;
        }
        self.touched.clear();
        count
    }
}

/// Room for voxels, filled from the first slot on by [`Voxelizer::voxelize_slots`]:
/// `features` `[V, max_points, VOXEL_POINT_DIMS]`, `num_points` `[V]`, `coords` `[V, 4]`.
pub struct VoxelSlots<'a> {
    pub features: &'a mut [f32],
    pub num_points: &'a mut [i64],
    pub coords: &'a mut [i64],
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
