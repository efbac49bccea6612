//! Voxelisation of LiDAR points in Rust: points inside the range fall into voxels of a fixed
//! size; each voxel keeps at most `max_points` points (first come), each sample at most
//! `max_voxels` voxels (first come). A dense cell -> voxel index table is reused between
//! calls (only the touched cells are reset), so there is no allocation per point.
//!
//! The output is compact: the kept points in arrival order, each with its slot in the padded
//! `[V, max_points]` layout (`voxel * max_points + k`), plus per voxel its point count, grid
//! coordinates and point mean. A cloud fills a few of a voxel's 12-16 slots (about two points
//! per voxel), so the padded layout, which training's encoder uses, is built from this where
//! it is needed ([`crate::model::batch::VoxelTensors::padded_features`]) instead of being
//! written and copied to the device every frame.

use crate::data::POINT_DIMS;
use crate::model::batch::{host_tensor_with, VoxelTensors};
use crate::model::config::ModelConfig;
use tch::Tensor;

/// Floats stored per voxel point: x, y, z, scaled intensity.
pub const VOXEL_POINT_DIMS: usize = 4;

/// Voxels of a batch, host-side (see the module documentation for the layout).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Voxels {
    /// The kept points, `[N, VOXEL_POINT_DIMS]` (x, y, z, scaled intensity).
    pub points: Vec<f32>,
    /// Each point's slot in the padded layout, `voxel * max_points + k`, `[N]`.
    pub slots: Vec<i64>,
    /// Points per voxel, `[V]`.
    pub num_points: Vec<i64>,
    /// `(batch index, iz, ix, iy)` per voxel, `[V, 4]`.
    pub coords: Vec<i64>,
    /// Mean x, y, z of each voxel's points, `[V, 3]`.
    pub means: Vec<f32>,
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
        self.points.clear();
        self.slots.clear();
        self.num_points.clear();
        self.coords.clear();
        self.means.clear();
    }

    /// The zero-padded `[V, max_points, VOXEL_POINT_DIMS]` layout, on the host: the tests'
    /// reference for [`crate::model::batch::VoxelTensors::padded_features`].
    #[cfg(test)]
    pub fn padded_features(&self, max_points: usize) -> Vec<f32> {
        let mut f = vec![0f32; self.len() * max_points * VOXEL_POINT_DIMS];
        for (row, &slot) in self.points.chunks_exact(VOXEL_POINT_DIMS).zip(&self.slots) {
            let o = slot as usize * VOXEL_POINT_DIMS;
            f[o..o + VOXEL_POINT_DIMS].copy_from_slice(row);
        }
        f
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
    /// Host vectors for tests and tools; batches use [`Self::voxelize_tensors`].
    pub fn voxelize_into(
        &mut self,
        points: &[f32],
        point_dims: usize,
        b: i64,
        flip: (bool, bool),
        out: &mut Voxels,
    ) {
        let (first, first_point) = (out.len(), out.slots.len());
        let cap = first + self.max_voxels;
        let cap_points = first_point + points.len() / point_dims.max(1);
        out.points.resize(cap_points * VOXEL_POINT_DIMS, 0.0);
        out.slots.resize(cap_points, 0);
        out.num_points.resize(cap, 0);
        out.coords.resize(cap * 4, 0);
        out.means.resize(cap * 3, 0.0);
        let slots = VoxelSlots {
            first_voxel: first,
            points: &mut out.points[first_point * VOXEL_POINT_DIMS..],
            slots: &mut out.slots[first_point..],
            num_points: &mut out.num_points[first..],
            coords: &mut out.coords[first * 4..],
            means: &mut out.means[first * 3..],
        };
        let (n, n_points) = self.voxelize_slots(points, point_dims, b, flip, slots);
        out.points.truncate((first_point + n_points) * VOXEL_POINT_DIMS);
        out.slots.truncate(first_point + n_points);
        out.num_points.truncate(first + n);
        out.coords.truncate((first + n) * 4);
        out.means.truncate((first + n) * 3);
    }

    /// Voxelise `samples` (batch index, points of `POINT_DIMS` floats, flip) straight into the
    /// storage of new CPU tensors: room for `max_voxels` per sample of a batch of
    /// `batch_size` and for every point, narrowed to what was written (no copy from a host
    /// buffer).
    pub fn voxelize_tensors<'a>(
        &mut self,
        samples: impl Iterator<Item = (i64, &'a [f32], (bool, bool))>,
        batch_size: usize,
    ) -> VoxelTensors {
        let samples: Vec<_> = samples.collect();
        assert!(samples.len() <= batch_size, "more samples than the batch size {batch_size}");
        let cap = (batch_size * self.max_voxels) as i64;
        let cap_points = samples.iter().map(|s| s.1.len() / POINT_DIMS).sum::<usize>() as i64;
        let (mut written, mut written_points) = (0usize, 0usize);
        let [mut points_t, mut slots_t, mut num_points_t, mut coords_t] = [None, None, None, None];
        let means_t = host_tensor_with(&[cap, 3], |means: &mut [f32]| {
            points_t = Some(host_tensor_with(&[cap_points, VOXEL_POINT_DIMS as i64], |points: &mut [f32]| {
                slots_t = Some(host_tensor_with(&[cap_points], |slots: &mut [i64]| {
                    num_points_t = Some(host_tensor_with(&[cap], |num_points: &mut [i64]| {
                        coords_t = Some(host_tensor_with(&[cap, 4], |coords: &mut [i64]| {
                            for &(b, pts, flip) in &samples {
                                let out = VoxelSlots {
                                    first_voxel: written,
                                    points: &mut points[written_points * VOXEL_POINT_DIMS..],
                                    slots: &mut slots[written_points..],
                                    num_points: &mut num_points[written..],
                                    coords: &mut coords[written * 4..],
                                    means: &mut means[written * 3..],
                                };
                                let (n, n_points) = self.voxelize_slots(pts, POINT_DIMS, b, flip, out);
                                written += n;
                                written_points += n_points;
                            }
                        }));
                    }));
                }));
            }));
        });
        let (n, np) = (written as i64, written_points as i64);
        let t = |t: Option<Tensor>, len: i64| t.expect("filled above").narrow(0, 0, len);
        VoxelTensors {
            points: t(points_t, np),
            slots: t(slots_t, np),
            num_points: t(num_points_t, n),
            coords: t(coords_t, n),
            means: means_t.narrow(0, 0, n),
            max_points: self.max_points as i64,
        }
    }

    /// [`Self::voxelize_into`] writing into `out` from its start (room for `max_voxels`
    /// voxels and for every point); returns how many voxels and points were written. Slots
    /// past those keep whatever they held: the batch builder voxelises straight into tensor
    /// storage this way and narrows the tensors to what was written.
    pub fn voxelize_slots(
        &mut self,
        points: &[f32],
        point_dims: usize,
        b: i64,
        flip: (bool, bool),
        out: VoxelSlots,
    ) -> (usize, usize) {
        let [nx, ny, nz] = self.dims;
        let p = self.max_points;
        let cap = self.max_voxels;
        let n_in = points.len() / point_dims.max(1);
        assert!(
            out.num_points.len() >= cap && out.coords.len() >= cap * 4 && out.means.len() >= cap * 3,
            "voxel slots hold fewer than max_voxels = {cap} voxels"
        );
        assert!(
            out.points.len() >= n_in * VOXEL_POINT_DIMS && out.slots.len() >= n_in,
            "point slots hold fewer than the {n_in} points"
        );
        let sx = if flip.0 { -1.0f32 } else { 1.0 };
        let sy = if flip.1 { -1.0f32 } else { 1.0 };
        let (ox, oy, oz) = (self.origin[0] as f32, self.origin[1] as f32, self.origin[2] as f32);
        let (vx, vy, vz) = (self.size[0] as f32, self.size[1] as f32, self.size[2] as f32);
        let table = &mut self.table[..nx * ny * nz];
        let (mut count, mut kept) = (0usize, 0usize);
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
                out.means[v * 3..v * 3 + 3].fill(0.0);
                v
            } else {
                slot as usize
            };
            let n = out.num_points[v] as usize;
            if n >= p {
                continue;
            }
            let intensity = if point_dims > 3 { pt[3] * self.intensity_scale } else { 0.0 };
            out.points[kept * VOXEL_POINT_DIMS..(kept + 1) * VOXEL_POINT_DIMS].copy_from_slice(&[x, y, z, intensity]);
            out.slots[kept] = ((out.first_voxel + v) * p + n) as i64;
            kept += 1;
            out.num_points[v] += 1;
            // (sums in arrival order for now, divided once every point is in)
            let m = &mut out.means[v * 3..v * 3 + 3];
            m[0] += x;
            m[1] += y;
            m[2] += z;
        }
        for (m, &n) in out.means[..count * 3].chunks_exact_mut(3).zip(&out.num_points[..count]) {
            let n = n as f32;
            m.iter_mut().for_each(|s| *s /= n);
        }
        for &c in &self.touched {
            table[c] = -1;
        }
        self.touched.clear();
        (count, kept)
    }
}

/// Room for voxels and points, filled from the start by [`Voxelizer::voxelize_slots`]:
/// `points` `[N, VOXEL_POINT_DIMS]` and `slots` `[N]` (see [`Voxels`]), `num_points` `[V]`,
/// `coords` `[V, 4]`, `means` `[V, 3]`. `first_voxel` is the batch-wide index of the first
/// voxel (the slots count from it).
pub struct VoxelSlots<'a> {
    pub first_voxel: usize,
    pub points: &'a mut [f32],
    pub slots: &'a mut [i64],
    pub num_points: &'a mut [i64],
    pub coords: &'a mut [i64],
    pub means: &'a mut [f32],
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
        #[rustfmt::skip]
        assert_eq!(out.points, vec![
            0.5, 0.5, 0.0, 5.0,
            0.6, 0.4, 0.0, 10.0,
            -1.5, 1.5, 0.0, 0.0,
            -0.5, -0.5, 0.0, 0.0,
        ]);
        assert_eq!(out.slots, vec![0, 1, 2, 4]);
        assert_eq!(out.means, vec![(0.5f32 + 0.6) / 2.0, (0.5f32 + 0.4) / 2.0, 0.0, -1.5, 1.5, 0.0, -0.5, -0.5, 0.0]);
        #[rustfmt::skip]
        assert_eq!(out.padded_features(2), vec![
            0.5, 0.5, 0.0, 5.0, 0.6, 0.4, 0.0, 10.0,
            -1.5, 1.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            -0.5, -0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ]);
        // the table is clean again: a second call starts fresh, its slots after the first's
        v.voxelize_into(&pts[0..4], 4, 8, (true, false), &mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(&out.coords[12..16], &[8, 0, 1, 2]);
        assert_eq!(&out.points[16..20], &[-0.5, 0.5, 0.0, 5.0]);
        assert_eq!(out.slots[4], 6);
        assert_eq!(&out.means[9..12], &[-0.5, 0.5, 0.0]);
    }
}
