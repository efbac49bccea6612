//! Tiny hand-checkable camera-LiDAR fusion models implementing [`PrunableModel`], so every
//! pruning algorithm can be unit-tested against a closed-form computation.
//!
//! - [`ToyFusion`]: two linear "backbones" and a linear fusion layer,
//!   `y = W_f [act(W_c x_c) ; act(W_l x_l)]` with loss `mean((y - t)^2)`. With one input
//!   and one output per backbone its gradients are written by hand in the tests.
//! - [`ToyConvFusion`]: conv + BN + ReLU backbones with a residual block each, a fuser conv
//!   on the concatenation, a 1x1 head: it exercises BN handling (SynFlow) and structured
//!   pruning (conv out channels, BN, next layer's inputs, residual and concat slots).
//!
//! Their [`PrunableModel::fit`] is a minimal masked Adam loop standing in for the real
//! trainer (the BEVFusion adapter delegates to the model's trainer instead).

use crate::model::ModalityMask;
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use tch::nn::{self, Module, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use super::masks::MaskSet;
use super::model_api::{ChannelGroup, ChannelMember, FitConfig, PrunableModel};

/// One batch of a toy model: camera input, LiDAR input, regression target.
#[derive(Debug)]
pub struct ToyBatch {
    pub camera: Tensor,
    pub lidar: Tensor,
    pub target: Tensor,
}

impl ToyBatch {
    pub fn new(camera: Tensor, lidar: Tensor, target: Tensor) -> Self {
        Self {
            camera,
            lidar,
            target,
        }
    }
}

/// Samples per training batch of the toy models' [`PrunableModel::fit`].
pub const TOY_BATCH: i64 = 4;

/// Sizes of [`ToyFusion`].
#[derive(Clone, Debug)]
pub struct ToyFusionConfig {
    pub camera_in: i64,
    pub lidar_in: i64,
    pub hidden: i64,
    pub out: i64,
    /// ReLU after each backbone (off: a purely linear, closed-form model).
    pub relu: bool,
    /// Biases on every layer.
    pub bias: bool,
    pub kind: Kind,
}

impl Default for ToyFusionConfig {
    fn default() -> Self {
        Self {
            camera_in: 4,
            lidar_in: 4,
            hidden: 6,
            out: 2,
            relu: true,
            bias: true,
            kind: Kind::Float,
        }
    }
}

/// Linear two-backbone fusion model (see the module docs).
pub struct ToyFusion {
    pub vs: nn::VarStore,
    pub cfg: ToyFusionConfig,
    camera: nn::Linear,
    lidar: nn::Linear,
    fuser: nn::Linear,
}

impl ToyFusion {
    pub fn new(cfg: ToyFusionConfig, seed: i64) -> Self {
        let _generator = crate::seed::seed_generator(seed);
        let mut vs = nn::VarStore::new(Device::Cpu);
        let lc = nn::LinearConfig {
            bias: cfg.bias,
            ..Default::default()
        };
        let root = vs.root();
        let camera = nn::linear(&root / "camera" / "fc", cfg.camera_in, cfg.hidden, lc);
        let lidar = nn::linear(&root / "lidar" / "fc", cfg.lidar_in, cfg.hidden, lc);
        let fuser = nn::linear(&root / "fuser" / "fc", 2 * cfg.hidden, cfg.out, lc);
        if cfg.kind == Kind::Double {
            vs.double();
        }
        Self {
            vs,
            cfg,
            camera,
            lidar,
            fuser,
        }
    }

    /// Set a variable's value (tests build hand-checkable weights this way).
    pub fn set(&self, name: &str, values: &[f64]) {
        let vars = self.vs.variables();
        let mut v = vars
            .get(name)
            .unwrap_or_else(|| panic!("no variable {name}"))
            .shallow_clone();
        let t = Tensor::from_slice(values)
            .to_kind(v.kind())
            .view(v.size().as_slice());
        tch::no_grad(|| v.copy_(&t));
    }

    fn act(&self, x: Tensor) -> Tensor {
        if self.cfg.relu {
            x.relu()
        } else {
            x
        }
    }

    pub fn forward(&self, b: &ToyBatch, mask: ModalityMask) -> Tensor {
        let fc = self.act(self.camera.forward(&b.camera));
        let fl = self.act(self.lidar.forward(&b.lidar));
        let fc = if mask.camera { fc } else { fc.zeros_like() };
        let fl = if mask.lidar { fl } else { fl.zeros_like() };
        self.fuser.forward(&Tensor::cat(&[fc, fl], 1))
    }

    /// Random batch of `n` samples whose target is a fixed function of both inputs.
    pub fn random_batch(&self, n: i64, seed: i64) -> ToyBatch {
        let _generator = crate::seed::seed_generator(seed);
        let opts = (self.cfg.kind, Device::Cpu);
        let camera = Tensor::randn([n, self.cfg.camera_in], opts);
        let lidar = Tensor::randn([n, self.cfg.lidar_in], opts);
        let target = Tensor::zeros([n, self.cfg.out], opts);
        for o in 0..self.cfg.out {
            let c = camera.narrow(1, o % self.cfg.camera_in, 1);
            let l = lidar.narrow(1, o % self.cfg.lidar_in, 1);
            target.narrow(1, o, 1).copy_(&(c * 0.7 - l * 0.4 + 0.1));
        }
        ToyBatch {
            camera,
            lidar,
            target,
        }
    }

    /// A batch source cycling through seeded random batches.
    pub fn batches(&self, n: i64, seed: i64) -> impl FnMut() -> Result<ToyBatch> + '_ {
        let mut i = 0;
        move || {
            i += 1;
            Ok(self.random_batch(n, seed * 100_003 + i))
        }
    }
}

/// Minimal masked Adam(W) loop of the toy models (stands in for the real trainer).
/// Batch `i` of a run comes from `batch(i)`.
fn toy_fit(
    vs: &nn::VarStore,
    loss: &dyn Fn(&ToyBatch) -> Result<Tensor>,
    batch: &dyn Fn(i64) -> ToyBatch,
    cfg: &FitConfig,
    masks: Option<&MaskSet>,
) -> Result<()> {
    let mut opt = nn::AdamW {
        wd: cfg.weight_decay,
        ..Default::default()
    }
    .build(vs, cfg.lr)?;
    if let Some(m) = masks {
        m.apply(vs)?;
    }
    for i in 0..cfg.steps {
        let b = batch(i as i64);
        let l = loss(&b)?;
        opt.zero_grad();
        l.backward();
        if let Some(m) = masks {
            m.mask_grads(vs);
        }
        if cfg.clip_grad_norm > 0.0 {
            opt.clip_grad_norm(cfg.clip_grad_norm);
        }
        opt.step();
        if let Some(m) = masks {
            m.apply(vs)?;
        }
    }
    Ok(())
}

impl PrunableModel for ToyFusion {
    type Batch = ToyBatch;

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn loss(&self, b: &ToyBatch, mask: ModalityMask) -> Result<Tensor> {
        let y = self.forward(b, mask);
        Ok((y - &b.target).square().mean(self.cfg.kind))
    }

    fn ones_batch(&self) -> Result<ToyBatch> {
        let o = (self.cfg.kind, Device::Cpu);
        Ok(ToyBatch {
            camera: Tensor::ones([1, self.cfg.camera_in], o),
            lidar: Tensor::ones([1, self.cfg.lidar_in], o),
            target: Tensor::zeros([1, self.cfg.out], o),
        })
    }

    fn output_sum(&self, b: &ToyBatch, mask: ModalityMask, _train: bool) -> Result<Tensor> {
        Ok(self.forward(b, mask).sum(self.cfg.kind))
    }

    /// Trains on seeded random batches (`TOY_BATCH` samples, seeds from `cfg.seed`).
    fn fit(&mut self, cfg: &FitConfig, masks: Option<&MaskSet>) -> Result<()> {
        let me = &*self;
        let seed = 1_000_000 + cfg.seed as i64 * 100_003;
        toy_fit(
            &me.vs,
            &|b| me.loss(b, ModalityMask::FUSION),
            &|i| me.random_batch(TOY_BATCH, seed + i),
            cfg,
            masks,
        )
    }

    fn gflops(&self) -> f64 {
        let c = &self.cfg;
        2.0 * (c.camera_in * c.hidden + c.lidar_in * c.hidden + 2 * c.hidden * c.out) as f64 / 1e9
    }
}

/// Channel widths of [`ToyConvFusion`], keyed by slot name (the `widths` override).
pub fn toy_conv_default_widths() -> BTreeMap<String, i64> {
    [
        ("camera.c", 8),
        ("camera.m", 6),
        ("lidar.c", 8),
        ("lidar.m", 6),
        ("fuser.f", 10),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl ConvBn {
    fn new(p: nn::Path, name: &str, cin: i64, cout: i64, k: i64) -> Self {
        let cc = nn::ConvConfig {
            padding: k / 2,
            bias: false,
            ..Default::default()
        };
        let conv = nn::conv2d(&p / format!("conv_{name}"), cin, cout, k, cc);
        let bn = nn::batch_norm2d(&p / format!("bn_{name}"), cout, Default::default());
        Self { conv, bn }
    }
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.bn.forward_t(&self.conv.forward(x), train)
    }
}

struct ToyBranch {
    stem: ConvBn,
    a: ConvBn,
    b: ConvBn,
}

impl ToyBranch {
    fn new(p: nn::Path, cin: i64, c: i64, m: i64) -> Self {
        Self {
            stem: ConvBn::new(&p / "stem", "0", cin, c, 3),
            a: ConvBn::new(&p / "block", "a", c, m, 3),
            b: ConvBn::new(&p / "block", "b", m, c, 3),
        }
    }
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let x = self.stem.forward(x, train).relu();
        let h = self.a.forward(&x, train).relu();
        (x + self.b.forward(&h, train)).relu()
    }
}

/// Conv + BN + residual fusion model for BN and structured-pruning tests.
pub struct ToyConvFusion {
    pub vs: nn::VarStore,
    pub widths: BTreeMap<String, i64>,
    camera: ToyBranch,
    lidar: ToyBranch,
    fuser: ConvBn,
    head: nn::Conv2D,
    pub size: i64,
}

/// Input channels of the toy conv model's camera and LiDAR images, and its outputs.
pub const TOY_CONV_CAMERA_IN: i64 = 3;
pub const TOY_CONV_LIDAR_IN: i64 = 2;
pub const TOY_CONV_OUT: i64 = 2;

impl ToyConvFusion {
    /// Build with the given widths (missing slots take their defaults).
    pub fn new(widths: &BTreeMap<String, i64>, seed: i64) -> Result<Self> {
        let mut w = toy_conv_default_widths();
        for (k, v) in widths {
            if !w.contains_key(k) {
                bail!("unknown width slot `{k}`");
            }
            if *v < 1 {
                bail!("width `{k}` must be at least 1, got {v}");
            }
            w.insert(k.clone(), *v);
        }
        let _generator = crate::seed::seed_generator(seed);
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let camera = ToyBranch::new(
            &root / "camera",
            TOY_CONV_CAMERA_IN,
            w["camera.c"],
            w["camera.m"],
        );
        let lidar = ToyBranch::new(
            &root / "lidar",
            TOY_CONV_LIDAR_IN,
            w["lidar.c"],
            w["lidar.m"],
        );
        let fuser = ConvBn::new(
            &root / "fuser",
            "0",
            w["camera.c"] + w["lidar.c"],
            w["fuser.f"],
            3,
        );
        let head = nn::conv2d(
            &root / "heads" / "out",
            w["fuser.f"],
            TOY_CONV_OUT,
            1,
            Default::default(),
        );
        Ok(Self {
            vs,
            widths: w,
            camera,
            lidar,
            fuser,
            head,
            size: 8,
        })
    }

    pub fn forward_t(&self, b: &ToyBatch, mask: ModalityMask, train: bool) -> Tensor {
        let c = self.camera.forward(&b.camera, train);
        let l = self.lidar.forward(&b.lidar, train);
        let c = if mask.camera { c } else { c.zeros_like() };
        let l = if mask.lidar { l } else { l.zeros_like() };
        let f = self.fuser.forward(&Tensor::cat(&[c, l], 1), train).relu();
        self.head.forward(&f)
    }

    /// Random batch: smooth-ish images whose target mixes both modalities.
    pub fn random_batch(&self, n: i64, seed: i64) -> ToyBatch {
        let _generator = crate::seed::seed_generator(seed);
        let o = (Kind::Float, Device::Cpu);
        let s = self.size;
        let camera = Tensor::randn([n, TOY_CONV_CAMERA_IN, s, s], o);
        let lidar = Tensor::randn([n, TOY_CONV_LIDAR_IN, s, s], o);
        let t0 = camera.narrow(1, 0, 1) * 0.5 + lidar.narrow(1, 0, 1).relu();
        let t1 = (camera.narrow(1, 1, 1) - lidar.narrow(1, 1, 1)).tanh();
        ToyBatch {
            camera,
            lidar,
            target: Tensor::cat(&[t0, t1], 1),
        }
    }

    pub fn batches(&self, n: i64, seed: i64) -> impl FnMut() -> Result<ToyBatch> + '_ {
        let mut i = 0;
        move || {
            i += 1;
            Ok(self.random_batch(n, seed * 100_003 + i))
        }
    }
}

fn bn_members(prefix: &str, out: &mut Vec<ChannelMember>) {
    for t in ["weight", "bias", "running_mean", "running_var"] {
        out.push(ChannelMember {
            param: format!("{prefix}.{t}"),
            dim: 0,
            offset: 0,
        });
    }
}

fn member(param: &str, dim: i64, offset: i64) -> ChannelMember {
    ChannelMember {
        param: param.to_string(),
        dim,
        offset,
    }
}

impl PrunableModel for ToyConvFusion {
    type Batch = ToyBatch;

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn loss(&self, b: &ToyBatch, mask: ModalityMask) -> Result<Tensor> {
        let y = self.forward_t(b, mask, true);
        Ok((y - &b.target).square().mean(Kind::Float))
    }

    fn ones_batch(&self) -> Result<ToyBatch> {
        let o = (Kind::Float, Device::Cpu);
        let s = self.size;
        Ok(ToyBatch {
            camera: Tensor::ones([1, TOY_CONV_CAMERA_IN, s, s], o),
            lidar: Tensor::ones([1, TOY_CONV_LIDAR_IN, s, s], o),
            target: Tensor::zeros([1, TOY_CONV_OUT, s, s], o),
        })
    }

    fn output_sum(&self, b: &ToyBatch, mask: ModalityMask, train: bool) -> Result<Tensor> {
        Ok(self.forward_t(b, mask, train).sum(Kind::Float))
    }

    /// Trains on seeded random batches (`TOY_BATCH` samples, seeds from `cfg.seed`).
    fn fit(&mut self, cfg: &FitConfig, masks: Option<&MaskSet>) -> Result<()> {
        let me = &*self;
        let seed = 1_000_000 + cfg.seed as i64 * 100_003;
        toy_fit(
            &me.vs,
            &|b| me.loss(b, ModalityMask::FUSION),
            &|i| me.random_batch(TOY_BATCH, seed + i),
            cfg,
            masks,
        )
    }

    fn channel_groups(&self) -> Vec<ChannelGroup> {
        let w = &self.widths;
        let mut groups = Vec::new();
        for br in ["camera", "lidar"] {
            // The residual slot: stem output, its BN, block conv_b output + BN, the block's
            // first conv input, and the fuser's input at this branch's concat offset.
            let mut m = vec![member(&format!("{br}.stem.conv_0.weight"), 0, 0)];
            bn_members(&format!("{br}.stem.bn_0"), &mut m);
            m.push(member(&format!("{br}.block.conv_a.weight"), 1, 0));
            m.push(member(&format!("{br}.block.conv_b.weight"), 0, 0));
            bn_members(&format!("{br}.block.bn_b"), &mut m);
            let offset = if br == "camera" { 0 } else { w["camera.c"] };
            m.push(member("fuser.conv_0.weight", 1, offset));
            groups.push(ChannelGroup {
                slot: format!("{br}.c"),
                size: w[&format!("{br}.c")],
                members: m,
            });
            let mut m = vec![member(&format!("{br}.block.conv_a.weight"), 0, 0)];
            bn_members(&format!("{br}.block.bn_a"), &mut m);
            m.push(member(&format!("{br}.block.conv_b.weight"), 1, 0));
            groups.push(ChannelGroup {
                slot: format!("{br}.m"),
                size: w[&format!("{br}.m")],
                members: m,
            });
        }
        let mut m = vec![member("fuser.conv_0.weight", 0, 0)];
        bn_members("fuser.bn_0", &mut m);
        m.push(member("heads.out.weight", 1, 0));
        groups.push(ChannelGroup {
            slot: "fuser.f".into(),
            size: w["fuser.f"],
            members: m,
        });
        groups
    }

    fn gflops(&self) -> f64 {
        let w = &self.widths;
        let px = (self.size * self.size) as f64;
        let conv = |cin: i64, cout: i64, k: i64| 2.0 * (cin * cout * k * k) as f64 * px;
        let mut f = 0.0;
        for (br, cin) in [("camera", TOY_CONV_CAMERA_IN), ("lidar", TOY_CONV_LIDAR_IN)] {
            let c = w[&format!("{br}.c")];
            let m = w[&format!("{br}.m")];
            f += conv(cin, c, 3) + conv(c, m, 3) + conv(m, c, 3);
        }
        f += conv(w["camera.c"] + w["lidar.c"], w["fuser.f"], 3)
            + conv(w["fuser.f"], TOY_CONV_OUT, 1);
        f / 1e9
    }
}
