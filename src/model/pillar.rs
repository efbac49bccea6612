//! PointPillars-style voxel feature encoder and scatter to the BEV canvas.
//!
//! Each point of a voxel gets 10 features: x, y, z, intensity, offsets to the mean of its
//! voxel's points, offsets to the voxel centre. A shared linear-BN-ReLU layer embeds them,
//! max-pooling over the voxel's points gives one vector per voxel, and the vectors are
//! scattered (index_add) into a `[B, C * NZ, NX, NY]` canvas (NZ = 1 for pillars). Training
//! runs the layer on every padded slot (batch-norm statistics count the empty ones, as in
//! PointPillars); inference runs it on the points present only, with the same result.
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
        let dev = v.points.device();
        if v.is_empty() {
            return Tensor::zeros([batch_size, c * nz, nx, ny], (Kind::Float, dev));
        }
        let opts = (Kind::Float, dev);
        let y = if train { self.voxel_features_padded(v, true) } else { self.voxel_features_compact(v) }; // [V, C]
        let lin = ((v.coords.select(1, 0) * nz + v.coords.select(1, 1)) * nx
            + v.coords.select(1, 2))
            * ny
            + v.coords.select(1, 3);
        // (under FP16 autocast the layer's output is half; the canvas stays float32)
        let canvas = Tensor::zeros([batch_size * nz * nx * ny, c], opts).index_add(0, &lin, &y.to_kind(Kind::Float));
        canvas
            .view([batch_size, nz, nx, ny, c])
            .permute([0, 1, 4, 2, 3])
            .reshape([batch_size, nz * c, nx, ny])
    }

    /// Voxel centres `[V, 3]` (x, y, z) from the voxels' coordinates.
    fn centres(&self, v: &VoxelTensors) -> Tensor {
        let coords = v.coords.to_kind(Kind::Float);
        Tensor::stack(
            &[
                coords.select(1, 2) * self.size[0] + (self.origin[0] + 0.5 * self.size[0]),
                coords.select(1, 3) * self.size[1] + (self.origin[1] + 0.5 * self.size[1]),
                coords.select(1, 1) * self.size[2] + (self.origin[2] + 0.5 * self.size[2]),
            ],
            1,
        )
    }

    /// Training: the layer runs on every slot of the padded `[V, P, ...]` features, the empty
    /// slots masked to zero (so batch-norm statistics count them, as PointPillars' layer does).
    /// The voxel means are computed here, over the padded slots, as PointPillars does.
    fn voxel_features_padded(&self, v: &VoxelTensors, train: bool) -> Tensor {
        let f = v.padded_features(); // [V, P, 4]
        let (nv, p) = (f.size()[0], f.size()[1]);
        let present = Tensor::arange(p, (Kind::Int64, f.device())).unsqueeze(0).lt_tensor(&v.num_points.unsqueeze(1));
        let mask = present.to_kind(Kind::Float).unsqueeze(2); // [V, P, 1]
        let xyz = f.narrow(2, 0, 3);
        let n = v.num_points.to_kind(Kind::Float).clamp_min(1.0);
        let means = (&xyz * &mask).sum_dim_intlist(1, false, Kind::Float) / n.unsqueeze(1);
        let cluster = &xyz - means.unsqueeze(1);
        let to_centre = &xyz - self.centres(v).unsqueeze(1);
        let feat = Tensor::cat(&[f.shallow_clone(), cluster, to_centre], 2) * &mask;
        debug_assert_eq!(f.size()[2], VOXEL_POINT_DIMS as i64);
        let y = self
            .pfn
            .forward_t(&feat.view([nv * p, PILLAR_POINT_FEATURES]), train)
            .view([nv, p, self.channels])
            * &mask;
        y.amax([1], false)
    }

    /// Inference: the layer runs only on the points present (about 2 per voxel against P = 12
    /// or 16 slots), with the voxel means the voxeliser computed, and each voxel's vector is
    /// the maximum over its points' outputs (`index_reduce` amax into zeros; in the node, with
    /// about two points per voxel, faster than writing the outputs back into zeroed padded
    /// slots and taking the maximum over those). The same result as the padded form: there an
    /// empty slot's output is masked to zero, and the layer ends in a ReLU, so no point's value
    /// is below zero. A maximum does not depend on the order of the points, so the result is
    /// the same on every device and run.
    fn voxel_features_compact(&self, v: &VoxelTensors) -> Tensor {
        let rows = &v.points; // [N, 4]
        let voxel = v.slots.floor_divide_scalar(v.max_points); // [N]
        let xyz = rows.narrow(1, 0, 3);
        let cluster = &xyz - v.means.index_select(0, &voxel);
        let to_centre = &xyz - self.centres(v).index_select(0, &voxel);
        let feat = Tensor::cat(&[rows.shallow_clone(), cluster, to_centre], 1); // [N, 10]
        let y = self.pfn.forward_t(&feat, false); // [N, C]
        Tensor::zeros([v.len(), self.channels], (y.kind(), y.device())).index_reduce(0, &voxel, &y, "amax", true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::voxelize::Voxelizer;

    /// Inference on the points present equals the padded form in inference, for voxels from
    /// one point to full, with batch-norm running statistics and a shift that leaves some
    /// channels at zero after the ReLU (ties with the empty slots).
    #[test]
    fn compact_inference_equals_padded_inference() {
        let cfg = ModelConfig::load(concat!(env!("CARGO_MANIFEST_DIR"), "/config/model/tiny.yaml")).expect("tiny");
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let mut slots = Slots::new(&cfg.widths);
        let enc = tch::no_grad(|| {
            let _g = crate::seed::seed_generator(7);
            let enc = PillarEncoder::new(&(vs.root() / "enc"), &cfg, &mut slots);
            let c = enc.channels;
            let bn = &enc.pfn.bn;
            bn.running_mean.shallow_clone().copy_(&Tensor::randn([c], (Kind::Float, tch::Device::Cpu)));
            bn.running_var.shallow_clone().copy_(&(Tensor::rand([c], (Kind::Float, tch::Device::Cpu)) + 0.5));
            let shift = Tensor::randn([c], (Kind::Float, tch::Device::Cpu));
            let _ = shift.narrow(0, 0, 3).fill_(-100.0); // three channels always zero
            bn.bias.shallow_clone().copy_(&shift);
            enc
        });
        // clustered points: some voxels full (12 points), many with one or two
        let mut pts = Vec::new();
        for k in 0..3000 {
            let k = k as f32;
            let (x, y) = if k < 600.0 { (1.2 + (k % 7.0) * 0.01, -3.3 + (k % 5.0) * 0.01) } else { ((k * 0.37) % 60.0 - 30.0, (k * 0.61) % 60.0 - 30.0) };
            pts.extend_from_slice(&[x, y, (k % 11.0) * 0.3 - 2.0, k % 255.0, 0.0]);
        }
        let mut vox = Voxelizer::new(&cfg);
        let v = vox.voxelize_tensors(std::iter::once((0, pts.as_slice(), (false, false))), 1);
        let counts: Vec<i64> = Vec::try_from(&v.num_points).unwrap();
        assert!(counts.contains(&(vox.max_points as i64)) && counts.contains(&1), "{counts:?}");
        let _g = tch::no_grad_guard();
        let padded = enc.voxel_features_padded(&v, false);
        let compact = enc.voxel_features_compact(&v);
        assert_eq!(padded.size(), compact.size());
        let diff = (&padded - &compact).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "max |padded - compact| = {diff}");
        assert!(padded.narrow(1, 0, 3).abs().max().double_value(&[]) == 0.0, "shifted channels are zero");
        assert!(padded.abs().max().double_value(&[]) > 0.1);
    }
}
