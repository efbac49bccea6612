//! PointPillars-style voxel feature encoder and scatter to the BEV canvas.
//!
//! Each point of a voxel gets 10 features: x, y, z, intensity, offsets to the mean of its
//! voxel's points, offsets to the voxel centre. A shared linear-BN-ReLU layer embeds them,
//! max-pooling over the voxel's points gives one vector per voxel, and the vectors are
//! scattered (index_add) into a `[B, C * NZ, NX, NY]` canvas (NZ = 1 for pillars).
//!
//! Width slot: `lidar.encoder.pfn`.

use crate::model::batch::VoxelTensors;
use crate::model::channels::{ChannelSpec, Slots};
use crate::model::config::ModelConfig;
use crate::model::layers::LinearBn;
use crate::model::resnet::path_name;
use crate::model::voxelize::VOXEL_POINT_DIMS;
use tch::{nn, Kind, Tensor};

/// Per-point input features of the encoder.
pub const PILLAR_POINT_FEATURES: i64 = 10;

#[derive(Debug)]
pub struct PillarEncoder {
    pfn: LinearBn,
    origin: [f64; 3],
    size: [f64; 3],
    dims: [i64; 3],
    channels: i64,
    pub out_spec: ChannelSpec,
}

impl PillarEncoder {
    pub fn new(p: &nn::Path, cfg: &ModelConfig, slots: &mut Slots) -> Self {
        let vox = crate::model::voxelize::Voxelizer::new(cfg);
        let slot = format!("{}.pfn", path_name(p));
        let c = slots.width(&slot, cfg.lidar.encoder.channels);
        let pfn = LinearBn::new(
            &(p / "pfn"),
            &ChannelSpec::fixed(PILLAR_POINT_FEATURES),
            c,
            &slot,
            slots,
        );
        let nz = vox.dims[2];
        let one = ChannelSpec::slot(&slot, c);
        let out_spec = ChannelSpec::concat(&vec![&one; nz]);
        Self {
            pfn,
            origin: vox.origin,
            size: vox.size,
            dims: [vox.dims[0] as i64, vox.dims[1] as i64, nz as i64],
            channels: c,
            out_spec,
        }
    }

    /// Voxels -> BEV canvas `[batch_size, C * NZ, NX, NY]`.
    pub fn forward_t(&self, v: &VoxelTensors, batch_size: i64, train: bool) -> Tensor {
        let [nx, ny, nz] = self.dims;
        let c = self.channels;
        let dev = v.features.device();
        let nv = v.num_points.size()[0];
        if nv == 0 {
            return Tensor::zeros([batch_size, c * nz, nx, ny], (Kind::Float, dev));
        }
        let f = &v.features; // [V, P, 4]
        let p = f.size()[1];
        let n = v.num_points.to_kind(Kind::Float).clamp_min(1.0);
        let mask = Tensor::arange(p, (Kind::Int64, dev))
            .unsqueeze(0)
            .lt_tensor(&v.num_points.unsqueeze(1));
        let mask = mask.to_kind(Kind::Float).unsqueeze(2); // [V, P, 1]
        let xyz = f.narrow(2, 0, 3);
        let mean = (&xyz * &mask).sum_dim_intlist(1, false, Kind::Float) / n.unsqueeze(1);
        let cluster = &xyz - mean.unsqueeze(1);
        let coords = v.coords.to_kind(Kind::Float);
        let opts = (Kind::Float, dev);
        let centre = Tensor::stack(
            &[
                coords.select(1, 2) * self.size[0] + (self.origin[0] + 0.5 * self.size[0]),
                coords.select(1, 3) * self.size[1] + (self.origin[1] + 0.5 * self.size[1]),
                coords.select(1, 1) * self.size[2] + (self.origin[2] + 0.5 * self.size[2]),
            ],
            1,
        ); // [V, 3]
        let to_centre = &xyz - centre.unsqueeze(1);
        let feat = Tensor::cat(&[f.shallow_clone(), cluster, to_centre], 2) * &mask;
        debug_assert_eq!(f.size()[2], VOXEL_POINT_DIMS as i64);
        let y = self
            .pfn
            .forward_t(&feat.view([nv * p, PILLAR_POINT_FEATURES]), train)
            .view([nv, p, c])
            * &mask;
        let y = y.amax([1], false); // [V, C]
        let lin = ((v.coords.select(1, 0) * nz + v.coords.select(1, 1)) * nx
            + v.coords.select(1, 2))
            * ny
            + v.coords.select(1, 3);
        let canvas = Tensor::zeros([batch_size * nz * nx * ny, c], opts).index_add(0, &lin, &y);
        canvas
            .view([batch_size, nz, nx, ny, c])
            .permute([0, 1, 4, 2, 3])
            .reshape([batch_size, nz * c, nx, ny])
    }
}
