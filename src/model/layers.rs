//! The building blocks every part uses: conv (or transposed conv) + BatchNorm + ReLU, and a
//! linear layer + BatchNorm1d. Each registers its tensors with the width slots
//! ([`crate::model::channels`]) and reports its multiply-accumulates to the FLOP counter
//! ([`crate::model::flops`]) when counting is on.

use crate::model::channels::{ChannelSpec, Slots};
use crate::model::flops;
use std::cell::Cell;
use tch::{nn, Tensor};

thread_local! {
    static FAST_INIT: Cell<bool> = const { Cell::new(false) };
}

/// Build with constant (cheap) initialisation: used when only the model's structure is
/// needed (width-slot planning), never for training.
pub fn with_fast_init<T>(f: impl FnOnce() -> T) -> T {
    let prev = FAST_INIT.with(|c| c.replace(true));
    let r = f();
    FAST_INIT.with(|c| c.set(prev));
    r
}

fn fast() -> bool {
    FAST_INIT.with(|c| c.get())
}

fn kaiming(p: &nn::Path, name: &str, dims: &[i64], fan_in: i64) -> Tensor {
    if fast() {
        return p.var(name, dims, nn::Init::Const(0.0));
    }
    // He normal initialisation (fan-in, ReLU gain).
    let std = (2.0 / fan_in.max(1) as f64).sqrt();
    p.var(
        name,
        dims,
        nn::Init::Randn {
            mean: 0.0,
            stdev: std,
        },
    )
}

/// BatchNorm parameters and running statistics (`weight`, `bias`, `running_mean`,
/// `running_var`).
#[derive(Debug)]
pub struct BatchNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
}

impl BatchNorm {
    pub fn new(p: &nn::Path, c: i64) -> Self {
        Self {
            weight: p.var("weight", &[c], nn::Init::Const(1.0)),
            bias: p.var("bias", &[c], nn::Init::Const(0.0)),
            running_mean: p.zeros_no_train("running_mean", &[c]),
            running_var: p.ones_no_train("running_var", &[c]),
        }
    }

    /// Register the four vectors as producers of `slot`.
    pub fn register(p: &nn::Path, slot: &str, slots: &mut Slots) {
        for n in ["weight", "bias", "running_mean", "running_var"] {
            slots.produce(slot, p.path(n), 0, 0);
        }
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        Tensor::batch_norm(
            x,
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            0.1,
            1e-5,
            true,
        )
    }
}

/// Options of a [`ConvBn`].
#[derive(Clone, Copy, Debug)]
pub struct ConvOpts {
    pub kernel: i64,
    pub stride: i64,
    /// BatchNorm after the conv (then the conv has no bias).
    pub bn: bool,
    pub relu: bool,
    /// Transposed conv (upsampling by `stride`, kernel = stride).
    pub transposed: bool,
}

impl ConvOpts {
    /// `k x k` conv, stride `s`, BN + ReLU.
    pub fn cbr(kernel: i64, stride: i64) -> Self {
        Self {
            kernel,
            stride,
            bn: true,
            relu: true,
            transposed: false,
        }
    }
    /// `k x k` conv with bias, no BN, no ReLU (output layers).
    pub fn plain(kernel: i64) -> Self {
        Self {
            kernel,
            stride: 1,
            bn: false,
            relu: false,
            transposed: false,
        }
    }
    pub fn no_relu(mut self) -> Self {
        self.relu = false;
        self
    }
}

/// Conv2d (or ConvTranspose2d) + optional BatchNorm + optional ReLU.
#[derive(Debug)]
pub struct ConvBn {
    pub name: String,
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub bn: Option<BatchNorm>,
    pub opts: ConvOpts,
    pub in_channels: i64,
    pub out_channels: i64,
}

impl ConvBn {
    /// A conv from `input` to `out` channels. When `slot` is given, the output channels are
    /// that width slot; otherwise they are fixed (not prunable).
    pub fn new(
        p: &nn::Path,
        input: &ChannelSpec,
        out: i64,
        slot: Option<&str>,
        opts: ConvOpts,
        slots: &mut Slots,
    ) -> Self {
        let cin = input.size();
        let k = opts.kernel;
        let conv_p = p / "conv";
        let (dims, out_dim, in_dim) = if opts.transposed {
            (vec![cin, out, k, k], 1, 0)
        } else {
            (vec![out, cin, k, k], 0, 1)
        };
        let weight = kaiming(&conv_p, "weight", &dims, cin * k * k);
        let bias = (!opts.bn).then(|| conv_p.var("bias", &[out], nn::Init::Const(0.0)));
        let bn = opts.bn.then(|| BatchNorm::new(&(p / "bn"), out));
        if let Some(s) = slot {
            slots.produce(s, conv_p.path("weight"), out_dim, 0);
            if bias.is_some() {
                slots.produce(s, conv_p.path("bias"), 0, 0);
            }
            if opts.bn {
                BatchNorm::register(&(p / "bn"), s, slots);
            }
        }
        slots.consume(input, conv_p.path("weight"), in_dim);
        Self {
            name: p.path("conv"),
            weight,
            bias,
            bn,
            opts,
            in_channels: cin,
            out_channels: out,
        }
    }

    /// Give the output bias a constant initial value (heatmap prior).
    pub fn init_bias(&self, v: f64) {
        if let Some(b) = &self.bias {
            tch::no_grad(|| {
                let _ = b.shallow_clone().fill_(v);
            });
        }
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let o = &self.opts;
        let y = if o.transposed {
            x.conv_transpose2d(
                &self.weight,
                self.bias.as_ref(),
                [o.stride, o.stride],
                [0, 0],
                [0, 0],
                1,
                [1, 1],
            )
        } else {
            let pad = o.kernel / 2;
            x.conv2d(
                &self.weight,
                self.bias.as_ref(),
                [o.stride, o.stride],
                [pad, pad],
                [1, 1],
                1,
            )
        };
        if flops::counting() {
            let (n_in, n_out) = (x.numel() as i64, y.numel() as i64);
            let kk = o.kernel * o.kernel;
            let macs = if o.transposed {
                n_in * self.out_channels * kk
            } else {
                n_out * self.in_channels * kk
            };
            flops::record(&self.name, macs);
        }
        let y = match &self.bn {
            Some(bn) => bn.forward_t(&y, train),
            None => y,
        };
        if o.relu {
            y.relu()
        } else {
            y
        }
    }
}

/// Linear layer without bias + BatchNorm1d + ReLU, applied to `[..., C]` features.
#[derive(Debug)]
pub struct LinearBn {
    pub name: String,
    pub weight: Tensor,
    pub bn: BatchNorm,
    pub in_features: i64,
    pub out_features: i64,
}

impl LinearBn {
    pub fn new(p: &nn::Path, input: &ChannelSpec, out: i64, slot: &str, slots: &mut Slots) -> Self {
        let cin = input.size();
        let lin = p / "linear";
        let weight = kaiming(&lin, "weight", &[out, cin], cin);
        let bn = BatchNorm::new(&(p / "bn"), out);
        slots.produce(slot, lin.path("weight"), 0, 0);
        BatchNorm::register(&(p / "bn"), slot, slots);
        slots.consume(input, lin.path("weight"), 1);
        Self {
            name: lin.path("weight"),
            weight,
            bn,
            in_features: cin,
            out_features: out,
        }
    }

    /// `x`: `[N, C_in]` -> `[N, C_out]`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let y = x.matmul(&self.weight.tr());
        if flops::counting() {
            flops::record(&self.name, y.numel() as i64 * self.in_features);
        }
        self.bn.forward_t(&y, train).relu()
    }
}
