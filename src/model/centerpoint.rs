//! CenterPoint-style detection head: class heatmaps (Gaussian focal loss) and, at each object
//! centre cell, a 10-code box regression (L1): centre offset x/y inside the cell, z, log
//! width/length/height, sin/cos yaw, velocity x/y. Decoding: 3x3 peak extraction, top-k over
//! classes and cells, score threshold, circle NMS per class.
//!
//! Width slots: `heads.det.shared`, `heads.det.<branch>.0` (not prunable: the output convs,
//! whose channels are classes and box codes).

use crate::classes::DETECTION_CLASSES;
use crate::geometry::{BevGrid, Box3D};
use crate::model::channels::{ChannelSpec, Slots};
use crate::model::circle_nms::circle_nms;
use crate::model::config::CenterPointConfig;
use crate::model::layers::{ConvBn, ConvOpts};
use crate::model::resnet::path_name;
use tch::{nn, Kind, Tensor};

/// Box codes per object.
pub const CODE_SIZE: usize = 10;

/// Regression branches and their channels, in code order.
pub const BRANCHES: [(&str, i64); 5] = [
    ("reg", 2),
    ("height", 1),
    ("dim", 3),
    ("rot", 2),
    ("vel", 2),
];

/// Raw head outputs.
#[derive(Debug)]
pub struct DetOutput {
    /// Class logits `[B, classes, NX, NY]`.
    pub heatmap: Tensor,
    /// Box codes `[B, 10, NX, NY]`.
    pub codes: Tensor,
}

#[derive(Debug)]
pub struct CenterPointHead {
    shared: ConvBn,
    heatmap: (ConvBn, ConvBn),
    branches: Vec<(ConvBn, ConvBn)>,
}

impl CenterPointHead {
    pub fn new(
        p: &nn::Path,
        cfg: &CenterPointConfig,
        input: &ChannelSpec,
        slots: &mut Slots,
    ) -> Self {
        let prefix = path_name(p);
        let s_shared = format!("{prefix}.shared");
        let ws = slots.width(&s_shared, cfg.shared_channels);
        let shared = ConvBn::new(
            &(p / "shared"),
            input,
            ws,
            Some(&s_shared),
            ConvOpts::cbr(3, 1),
            slots,
        );
        let shared_spec = ChannelSpec::slot(&s_shared, ws);
        let branch = |name: &str, out: i64, slots: &mut Slots| {
            let s = format!("{prefix}.{name}.0");
            let w = slots.width(&s, cfg.head_channels);
            let c0 = ConvBn::new(
                &(p / name / 0),
                &shared_spec,
                w,
                Some(&s),
                ConvOpts::cbr(3, 1),
                slots,
            );
            let c1 = ConvBn::new(
                &(p / name / 1),
                &ChannelSpec::slot(&s, w),
                out,
                None,
                ConvOpts::plain(1),
                slots,
            );
            (c0, c1)
        };
        let heatmap = branch("heatmap", DETECTION_CLASSES.len() as i64, slots);
        // Prior probability 0.1 per cell, as in CenterNet/CenterPoint.
        heatmap.1.init_bias(-2.19);
        let branches = BRANCHES.iter().map(|(n, c)| branch(n, *c, slots)).collect();
        Self {
            shared,
            heatmap,
            branches,
        }
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> DetOutput {
        let s = self.shared.forward_t(x, train);
        let heatmap = self
            .heatmap
            .1
            .forward_t(&self.heatmap.0.forward_t(&s, train), train);
        let codes: Vec<Tensor> = self
            .branches
            .iter()
            .map(|(a, b)| b.forward_t(&a.forward_t(&s, train), train))
            .collect();
        DetOutput {
            heatmap,
            codes: Tensor::cat(&codes, 1),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Targets

/// Detection targets of one frame, host-side.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameDetTargets {
    /// `[classes, NX, NY]`.
    pub heatmap: Vec<f32>,
    /// `[max_objects]` flattened cell index `i * NY + j`.
    pub ind: Vec<i64>,
    /// `[max_objects, 10]` codes.
    pub codes: Vec<f32>,
    /// `[max_objects, 10]` per-code weight (0 for padding and unknown velocity).
    pub weights: Vec<f32>,
}

/// CenterNet's Gaussian radius for a box of `height x width` cells at IoU `min_overlap`.
pub fn gaussian_radius(height: f64, width: f64, min_overlap: f64) -> f64 {
    let b1 = height + width;
    let c1 = width * height * (1.0 - min_overlap) / (1.0 + min_overlap);
    let r1 = (b1 + (b1 * b1 - 4.0 * c1).max(0.0).sqrt()) / 2.0;
    let b2 = 2.0 * (height + width);
    let c2 = (1.0 - min_overlap) * width * height;
    let r2 = (b2 + (b2 * b2 - 16.0 * c2).max(0.0).sqrt()) / 2.0;
    let a3 = 4.0 * min_overlap;
    let b3 = -2.0 * min_overlap * (height + width);
    let c3 = (min_overlap - 1.0) * width * height;
    let r3 = (b3 + (b3 * b3 - 4.0 * a3 * c3).max(0.0).sqrt()) / 2.0;
    r1.min(r2).min(r3)
}

fn draw_gaussian(hm: &mut [f32], nx: usize, ny: usize, ci: usize, cj: usize, radius: i64) {
    let sigma = (2 * radius + 1) as f64 / 6.0;
    let (ci, cj) = (ci as i64, cj as i64);
    for di in -radius..=radius {
        for dj in -radius..=radius {
            let (i, j) = (ci + di, cj + dj);
            if i < 0 || j < 0 || i >= nx as i64 || j >= ny as i64 {
                continue;
            }
            let g = (-((di * di + dj * dj) as f64) / (2.0 * sigma * sigma)).exp() as f32;
            let cell = &mut hm[i as usize * ny + j as usize];
            if g > *cell {
                *cell = g;
            }
        }
    }
}

/// Encode the boxes of one frame (already in the model's LiDAR frame) on `grid`.
pub fn encode_targets(boxes: &[Box3D], cfg: &CenterPointConfig, grid: &BevGrid) -> FrameDetTargets {
    let (nx, ny) = (grid.nx(), grid.ny());
    let nc = DETECTION_CLASSES.len();
    let m = cfg.max_objects;
    let mut t = FrameDetTargets {
        heatmap: vec![0.0; nc * nx * ny],
        ind: vec![0; m],
        codes: vec![0.0; m * CODE_SIZE],
        weights: vec![0.0; m * CODE_SIZE],
    };
    let mut k = 0;
    for b in boxes {
        if k >= m || b.label >= nc {
            continue;
        }
        let fx = (b.center[0] - grid.x_min) / grid.resolution;
        let fy = (b.center[1] - grid.y_min) / grid.resolution;
        if !(fx >= 0.0 && fy >= 0.0) || fx >= nx as f64 || fy >= ny as f64 {
            continue;
        }
        let (i, j) = (fx as usize, fy as usize);
        let [w, l, h] = b.size;
        if !(w > 0.0 && l > 0.0 && h > 0.0) {
            continue;
        }
        let r = gaussian_radius(
            l / grid.resolution,
            w / grid.resolution,
            cfg.gaussian_overlap,
        );
        let r = (r as i64).max(cfg.min_radius);
        draw_gaussian(
            &mut t.heatmap[b.label * nx * ny..(b.label + 1) * nx * ny],
            nx,
            ny,
            i,
            j,
            r,
        );
        t.ind[k] = (i * ny + j) as i64;
        let vel_ok = b.velocity[0].is_finite() && b.velocity[1].is_finite();
        let codes = [
            fx - i as f64,
            fy - j as f64,
            b.center[2],
            w.ln(),
            l.ln(),
            h.ln(),
            b.yaw.sin(),
            b.yaw.cos(),
            if vel_ok { b.velocity[0] } else { 0.0 },
            if vel_ok { b.velocity[1] } else { 0.0 },
        ];
        for c in 0..CODE_SIZE {
            t.codes[k * CODE_SIZE + c] = codes[c] as f32;
            let known = c < 8 || vel_ok;
            t.weights[k * CODE_SIZE + c] = if known {
                cfg.code_weights[c] as f32
            } else {
                0.0
            };
        }
        k += 1;
    }
    t
}

/// Detection targets of a batch, on the model's device.
#[derive(Debug)]
pub struct DetTargets {
    pub heatmap: Tensor,
    pub ind: Tensor,
    pub codes: Tensor,
    pub weights: Tensor,
    /// Number of objects in the batch (f32 scalar).
    pub num_objects: Tensor,
}

impl DetTargets {
    pub fn stack(
        frames: &[FrameDetTargets],
        grid: &BevGrid,
        max_objects: usize,
        device: tch::Device,
    ) -> Self {
        let b = frames.len() as i64;
        let (nx, ny) = (grid.nx() as i64, grid.ny() as i64);
        let nc = DETECTION_CLASSES.len() as i64;
        let m = max_objects as i64;
        let cat = |f: &dyn Fn(&FrameDetTargets) -> &[f32]| -> Vec<f32> {
            frames.iter().flat_map(|t| f(t).iter().copied()).collect()
        };
        let heatmap = Tensor::from_slice(&cat(&|t| &t.heatmap))
            .view([b, nc, nx, ny])
            .to_device(device);
        let ind: Vec<i64> = frames.iter().flat_map(|t| t.ind.iter().copied()).collect();
        let ind = Tensor::from_slice(&ind).view([b, m]).to_device(device);
        let codes = Tensor::from_slice(&cat(&|t| &t.codes))
            .view([b, m, CODE_SIZE as i64])
            .to_device(device);
        let weights = Tensor::from_slice(&cat(&|t| &t.weights))
            .view([b, m, CODE_SIZE as i64])
            .to_device(device);
        let n: usize = frames
            .iter()
            .map(|t| t.weights.chunks(CODE_SIZE).filter(|w| w[0] > 0.0).count())
            .sum();
        Self {
            heatmap,
            ind,
            codes,
            weights,
            num_objects: Tensor::from(n as f32).to_device(device),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Loss

/// CenterNet's Gaussian focal loss, normalised by the number of objects.
pub fn gaussian_focal_loss(logits: &Tensor, target: &Tensor, num_objects: &Tensor) -> Tensor {
    let logits = logits.to_kind(Kind::Float);
    let pos = target.eq(1.0).to_kind(Kind::Float);
    let neg_w = (-target + 1.0).pow_tensor_scalar(4) * (-&pos + 1.0);
    let log_p = logits.log_sigmoid();
    let log_1mp = (-&logits).log_sigmoid();
    let p = logits.sigmoid();
    let pos_loss = (log_p * (-&p + 1.0).square() * &pos).sum(Kind::Float);
    let neg_loss = (log_1mp * p.square() * neg_w).sum(Kind::Float);
    -(pos_loss + neg_loss) / num_objects.clamp_min(1.0)
}

/// Gather `[B, C, NX, NY]` maps at flattened cells `ind` `[B, M]` -> `[B, M, C]`.
pub fn gather_cells(map: &Tensor, ind: &Tensor) -> Tensor {
    let s = map.size();
    let (b, c) = (s[0], s[1]);
    let flat = map.reshape([b, c, -1]);
    let idx = ind.unsqueeze(1).expand([b, c, ind.size()[1]], false);
    flat.gather(2, &idx, false).permute([0, 2, 1])
}

/// `(heatmap loss, box loss)`.
pub fn losses(out: &DetOutput, t: &DetTargets) -> (Tensor, Tensor) {
    let hm = gaussian_focal_loss(&out.heatmap, &t.heatmap, &t.num_objects);
    let pred = gather_cells(&out.codes.to_kind(Kind::Float), &t.ind);
    let l1 = ((pred - &t.codes).abs() * &t.weights).sum(Kind::Float)
        / (t.num_objects.shallow_clone() + 1e-4);
    (hm, l1)
}

// ------------------------------------------------------------------------------------------
// Decoding

/// Boxes from the head's output, per sample: class heatmap peaks (a cell whose logit no 3x3
/// neighbour of the same class exceeds) scoring at least `score_threshold`, the best
/// `pre_max` of them, decoded from their box codes, then circle NMS per class and at most
/// `post_max`. (On the logits rather than the scores, as the sigmoid is monotonic: the two
/// differ only where two neighbours' logits round to the same score, e.g. both 1.0, where a
/// plateau of the scores would give several peaks.) Equal scores keep cell order.
///
/// Where the outputs are: on the CPU [`decode_on_host`], elsewhere (CUDA)
/// [`decode_on_device`], which copies only the best `pre_max` peaks to the host.
pub fn decode(out: &DetOutput, cfg: &CenterPointConfig, grid: &BevGrid) -> Vec<Vec<Box3D>> {
    if out.heatmap.device() == tch::Device::Cpu {
        decode_on_host(out, cfg, grid)
    } else {
        decode_on_device(out, cfg, grid)
    }
}

/// [`decode`] in plain Rust over one copy of the heatmap and the codes: a few thousand cells
/// per class, far cheaper than a dozen small libtorch operators (and their thread-pool
/// hand-offs) on a busy CPU.
pub fn decode_on_host(out: &DetOutput, cfg: &CenterPointConfig, grid: &BevGrid) -> Vec<Vec<Box3D>> {
    let host = |t: &Tensor| -> Vec<f32> {
        let t = t.detach().to_kind(Kind::Float).to_device(tch::Device::Cpu).contiguous();
        Vec::<f32>::try_from(t.reshape([-1])).unwrap_or_default()
    };
    let s = out.heatmap.size();
    let (b, nc, nx, ny) = (s[0] as usize, s[1] as usize, s[2] as usize, s[3] as usize);
    let cells = nx * ny;
    let (heat, codes) = (host(&out.heatmap), host(&out.codes));
    if heat.len() != b * nc * cells || codes.len() != b * CODE_SIZE * cells {
        return vec![Vec::new(); b];
    }
    let k = (cfg.pre_max.max(0) as usize).min(nc * cells);
    let mut logit = vec![0f32; nc * cells];
    let mut row_max = vec![0f32; cells];
    let mut col_max = vec![0f32; ny];
    let mut frames = Vec::with_capacity(b);
    // Peaks are found on the logits (the sigmoid is monotonic), so only peaks pay for an exp.
    // A NaN logit becomes +inf: it suppresses every peak it neighbours and is no peak itself
    // (a genuine +inf becomes f32::MAX, a score of 1). With no NaN left, the maxima below are
    // plain compares, which the compiler vectorises. Logits below `lo` score under the
    // threshold for sure and skip the exp.
    let lo = lowest_logit(cfg.score_threshold);
    for bi in 0..b {
        for (l, &x) in logit.iter_mut().zip(&heat[bi * nc * cells..(bi + 1) * nc * cells]) {
            *l = if x.is_nan() { f32::INFINITY } else { x.min(f32::MAX) };
        }
        // (score, class * cells + cell) of the peaks scoring at least the threshold: a peak is
        // its 3x3 neighbourhood's maximum (a separable max-pool: along rows, then columns)
        let mut cand: Vec<Candidate> = Vec::new();
        for c in 0..nc {
            let hm = &logit[c * cells..(c + 1) * cells];
            for (row, out) in hm.chunks_exact(ny).zip(row_max.chunks_exact_mut(ny)) {
                widen(row, out);
            }
            for i in 0..nx {
                let (up, down) = (i.saturating_sub(1), (i + 1).min(nx - 1));
                let rows = |r: usize| &row_max[r * ny..(r + 1) * ny];
                max_of_rows(rows(up), rows(i), rows(down), &mut col_max);
                for (j, (&x, &m)) in hm[i * ny..(i + 1) * ny].iter().zip(&col_max).enumerate() {
                    if x >= lo && x >= m && x < f32::INFINITY {
                        let cell = i * ny + j;
                        if let Some(score) = peak_score(x, cfg.score_threshold) {
                            cand.push(Candidate { score, q: c * cells + cell, row: cell });
                        }
                    }
                }
            }
        }
        let code = &codes[bi * CODE_SIZE * cells..(bi + 1) * CODE_SIZE * cells];
        frames.push(boxes_from_candidates(cand, k, cells, ny, grid, cfg, |row, ch| code[ch * cells + row] as f64));
    }
    frames
}

/// [`decode`] with the peaks found and ranked where the outputs are (a 3x3 max-pool and a
/// top-k over classes and cells): only the best `pre_max` peaks' logits, indices and box
/// codes are copied to the host, in one copy, instead of the whole heatmap and code maps.
/// The host then applies the threshold, the order and NMS as [`decode_on_host`] does, on
/// the same float values, so the boxes are the same, except where more than `pre_max` peaks
/// score the same at the cut (the top-k may keep other cells of equal score).
pub fn decode_on_device(out: &DetOutput, cfg: &CenterPointConfig, grid: &BevGrid) -> Vec<Vec<Box3D>> {
    let s = out.heatmap.size();
    let (b, nc, nx, ny) = (s[0], s[1], s[2], s[3]);
    let cells = nx * ny;
    let k = cfg.pre_max.max(0).min(nc * cells);
    if k == 0 || out.codes.size() != [b, CODE_SIZE as i64, nx, ny] {
        return vec![Vec::new(); b as usize];
    }
    // as the host path: NaN -> +inf (no peak, suppresses its neighbours), +inf -> f32::MAX;
    // -inf becomes the lowest float, which scores 0 as -inf does
    let logit = out.heatmap.detach().to_kind(Kind::Float).nan_to_num(f64::INFINITY, f32::MAX as f64, None);
    let m = logit.max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false);
    let lo = lowest_logit(cfg.score_threshold) as f64;
    let peak = logit.ge_tensor(&m).logical_and(&logit.ge(lo)).logical_and(&logit.isfinite());
    // non-peaks sink to -inf, below every peak
    let ranked = logit.where_scalarother(&peak, f64::NEG_INFINITY).reshape([b, -1]);
    let (top, idx) = ranked.topk(k, 1, true, true); // [B, K]
    let codes = out.codes.detach().to_kind(Kind::Float).reshape([b, CODE_SIZE as i64, cells]);
    let picked = codes.gather(2, &idx.remainder(cells).unsqueeze(1).expand([b, CODE_SIZE as i64, k], false), false);
    // one copy: per sample 2 + CODE_SIZE rows of K (logit, index, codes), in f64 (exact for
    // the f32 values and for indices below 2^53)
    let packed = Tensor::cat(&[top.unsqueeze(1).to_kind(Kind::Double), idx.unsqueeze(1).to_kind(Kind::Double), picked.to_kind(Kind::Double)], 1);
    let host = Vec::<f64>::try_from(packed.to_device(tch::Device::Cpu).contiguous().reshape([-1])).unwrap_or_default();
    let (k, cells, ny, rows) = (k as usize, cells as usize, ny as usize, 2 + CODE_SIZE);
    if host.len() != b as usize * rows * k {
        return vec![Vec::new(); b as usize];
    }
    host.chunks_exact(rows * k)
        .map(|sample| {
            let cand = (0..k)
                .filter(|&r| sample[r] > f64::NEG_INFINITY)
                .filter_map(|r| {
                    let score = peak_score(sample[r] as f32, cfg.score_threshold)?;
                    let q = sample[k + r] as usize;
                    Some(Candidate { score, q, row: r })
                })
                .collect();
            boxes_from_candidates(cand, k, cells, ny, grid, cfg, |r, ch| sample[(2 + ch) * k + r])
        })
        .collect()
}

/// A heatmap peak: its score, `class * cells + cell`, and where its box codes are.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    score: f32,
    q: usize,
    row: usize,
}

/// Logits below this score under `threshold` for sure (margin 1e-3, far above the
/// sigmoid's rounding).
fn lowest_logit(threshold: f64) -> f32 {
    if threshold > 0.0 && threshold < 1.0 {
        ((threshold / (1.0 - threshold)).ln() - 1e-3) as f32
    } else {
        f32::NEG_INFINITY
    }
}

/// The score of a peak's logit, if it reaches `threshold`.
fn peak_score(x: f32, threshold: f64) -> Option<f32> {
    let score = 1.0 / (1.0 + (-x).exp());
    (score as f64 >= threshold).then_some(score)
}

/// The best `k` candidates (best first, equal scores in `q` order), decoded from their box
/// codes (`code(row, channel)`), circle NMS per class, at most `post_max`.
fn boxes_from_candidates(
    mut cand: Vec<Candidate>,
    k: usize,
    cells: usize,
    ny: usize,
    grid: &BevGrid,
    cfg: &CenterPointConfig,
    code: impl Fn(usize, usize) -> f64,
) -> Vec<Box3D> {
    // select, then sort only those
    let order = |x: &Candidate, y: &Candidate| y.score.total_cmp(&x.score).then(x.q.cmp(&y.q));
    if cand.len() > k && k > 0 {
        cand.select_nth_unstable_by(k - 1, order);
    }
    cand.truncate(k);
    cand.sort_unstable_by(order);
    let boxes: Vec<Box3D> = cand
        .iter()
        .map(|p| {
            let (cls, cell) = (p.q / cells, p.q % cells);
            let c = |ch: usize| code(p.row, ch);
            let (i, j) = (cell / ny, cell % ny);
            Box3D {
                center: [
                    grid.x_min + (i as f64 + c(0)) * grid.resolution,
                    grid.y_min + (j as f64 + c(1)) * grid.resolution,
                    c(2),
                ],
                size: [c(3), c(4), c(5)].map(|v| v.clamp(-5.0, 5.0).exp()),
                yaw: c(6).atan2(c(7)),
                velocity: [c(8), c(9)],
                label: cls,
                score: p.score as f64,
            }
        })
        .collect();
    let keep = circle_nms(&boxes, &cfg.nms_radius);
    let mut kept: Vec<Box3D> = keep.into_iter().map(|i| boxes[i].clone()).collect();
    kept.truncate(cfg.post_max);
    kept
}

/// The larger of two numbers that are not NaN (see [`decode`]): a plain compare, which the
/// compiler vectorises.
fn fmax(x: f32, y: f32) -> f32 {
    if x > y {
        x
    } else {
        y
    }
}

/// `out[j]` = the maximum of `row[j - 1 ..= j + 1]` (clamped at the ends, as a max-pool
/// padded with -inf).
fn widen(row: &[f32], out: &mut [f32]) {
    let n = row.len();
    if n < 2 {
        out.copy_from_slice(row);
        return;
    }
    out[0] = fmax(row[0], row[1]);
    out[n - 1] = fmax(row[n - 2], row[n - 1]);
    for ((o, (&l, &c)), &r) in out[1..n - 1].iter_mut().zip(row.iter().zip(&row[1..])).zip(&row[2..]) {
        *o = fmax(fmax(l, c), r);
    }
}

/// `out[j]` = the maximum of `a[j]`, `b[j]`, `c[j]`.
fn max_of_rows(a: &[f32], b: &[f32], c: &[f32], out: &mut [f32]) {
    for ((o, (&x, &y)), &z) in out.iter_mut().zip(a.iter().zip(b)).zip(c) {
        *o = fmax(fmax(x, y), z);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> CenterPointConfig {
        serde_yaml::from_str(
            "type: centerpoint\nshared_channels: 8\nhead_channels: 8\nmax_objects: 4\n",
        )
        .unwrap()
    }

    /// The same decoding with libtorch operators (max-pool peaks, top-k), as reference.
    fn decode_with_torch(out: &DetOutput, cfg: &CenterPointConfig, grid: &BevGrid) -> Vec<Vec<Box3D>> {
        let heat = out.heatmap.sigmoid();
        let hmax = heat.max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false);
        let heat = &heat * heat.eq_tensor(&hmax).to_kind(Kind::Float);
        let s = heat.size();
        let (b, nc, nx, ny) = (s[0], s[1], s[2], s[3]);
        let k = cfg.pre_max.min(nc * nx * ny);
        let (scores, idx) = heat.reshape([b, -1]).topk(k, 1, true, true);
        let cells = nx * ny;
        let codes = gather_cells(&out.codes, &idx.remainder(cells));
        let scores = Vec::<f32>::try_from(scores.reshape([-1])).unwrap();
        let idx = Vec::<i64>::try_from(idx.reshape([-1])).unwrap();
        let codes = Vec::<f32>::try_from(codes.reshape([-1])).unwrap();
        (0..b as usize)
            .map(|bi| {
                let mut boxes = Vec::new();
                for r in 0..k as usize {
                    let q = bi * k as usize + r;
                    if (scores[q] as f64) < cfg.score_threshold {
                        break;
                    }
                    let c = &codes[q * CODE_SIZE..(q + 1) * CODE_SIZE];
                    let cell = idx[q] % cells;
                    let (i, j) = (cell / ny, cell % ny);
                    boxes.push(Box3D {
                        center: [
                            grid.x_min + (i as f64 + c[0] as f64) * grid.resolution,
                            grid.y_min + (j as f64 + c[1] as f64) * grid.resolution,
                            c[2] as f64,
                        ],
                        size: [c[3] as f64, c[4] as f64, c[5] as f64].map(|v| v.clamp(-5.0, 5.0).exp()),
                        yaw: (c[6] as f64).atan2(c[7] as f64),
                        velocity: [c[8] as f64, c[9] as f64],
                        label: (idx[q] / cells) as usize,
                        score: scores[q] as f64,
                    });
                }
                let keep = circle_nms(&boxes, &cfg.nms_radius);
                let mut kept: Vec<Box3D> = keep.into_iter().map(|i| boxes[i].clone()).collect();
                kept.truncate(cfg.post_max);
                kept
            })
            .collect()
    }

    #[test]
    fn host_decode_equals_the_libtorch_formulation() {
        let grid = BevGrid { x_min: -16.0, x_max: 16.0, y_min: -16.0, y_max: 16.0, resolution: 0.5 };
        let mut c = cfg();
        c.pre_max = 40;
        c.score_threshold = 0.3;
        tch::manual_seed(3);
        for trial in 0..5 {
            // peaky logits: a few hundred local maxima per class, scores spread over (0, 1)
            let out = DetOutput {
                heatmap: Tensor::randn([2, 10, 64, 64], (Kind::Float, tch::Device::Cpu)) * 2.0,
                codes: Tensor::randn([2, CODE_SIZE as i64, 64, 64], (Kind::Float, tch::Device::Cpu)),
            };
            let got = decode(&out, &c, &grid);
            let want = decode_with_torch(&out, &c, &grid);
            assert_eq!(got.len(), 2);
            for (g, w) in got.iter().zip(&want) {
                assert!(!w.is_empty(), "trial {trial}: the reference found no boxes");
                assert_eq!(g.len(), w.len(), "trial {trial}");
                for (a, b) in g.iter().zip(w) {
                    assert_eq!(a.label, b.label, "trial {trial}");
                    assert!((a.score - b.score).abs() < 1e-6, "trial {trial}: {} vs {}", a.score, b.score);
                    for d in 0..3 {
                        assert!((a.center[d] - b.center[d]).abs() < 1e-9 && (a.size[d] - b.size[d]).abs() < 1e-9);
                    }
                    assert!((a.yaw - b.yaw).abs() < 1e-9 && a.velocity == b.velocity);
                }
            }
        }
    }

    /// The device formulation (run here on CPU tensors) gives the host path's boxes exactly:
    /// batches of two, NaN and infinite logits, the top-k cut below and above the number of
    /// peaks, a threshold of 0 (every peak a candidate, -inf logits included).
    #[test]
    fn device_decode_equals_host_decode() {
        let grid = BevGrid { x_min: -16.0, x_max: 16.0, y_min: -16.0, y_max: 16.0, resolution: 0.5 };
        tch::manual_seed(11);
        for (trial, (pre_max, threshold)) in [(40, 0.3), (5000, 0.3), (20_000, 0.0), (1, 0.5), (0, 0.3)].into_iter().enumerate() {
            let mut c = cfg();
            c.pre_max = pre_max;
            c.score_threshold = threshold;
            let heatmap = Tensor::randn([2, 10, 64, 64], (Kind::Float, tch::Device::Cpu)) * 2.0;
            let flat = heatmap.view([-1]);
            for (cell, v) in [(5, f64::NAN), (77, f64::INFINITY), (300, f64::NEG_INFINITY), (40_000, f64::NAN), (41_000, f64::INFINITY)] {
                let _ = flat.get(cell).fill_(v);
            }
            let out = DetOutput {
                heatmap,
                codes: Tensor::randn([2, CODE_SIZE as i64, 64, 64], (Kind::Float, tch::Device::Cpu)),
            };
            let host = decode_on_host(&out, &c, &grid);
            let device = decode_on_device(&out, &c, &grid);
            assert_eq!(host.len(), 2);
            assert_eq!(host, device, "trial {trial}");
            if pre_max > 0 {
                assert!(host.iter().all(|f| !f.is_empty()), "trial {trial}: no boxes");
            }
            if pre_max == 1 {
                assert!(host.iter().all(|f| f.len() == 1), "trial {trial}");
            }
            // with a NaN neighbour and an infinite logit present, boxes still come out finite
            // in position; the +inf logit (f32::MAX) scores 1 and comes first in its sample
            if pre_max >= 5000 {
                assert_eq!(host[0][0].score, 1.0, "trial {trial}");
            }
        }
    }

    #[test]
    fn peaks_at_the_border_count_and_a_nan_neighbour_suppresses_a_peak() {
        let grid = BevGrid { x_min: 0.0, x_max: 4.0, y_min: 0.0, y_max: 4.0, resolution: 1.0 };
        let mut c = cfg();
        c.score_threshold = 0.5;
        let mut heat = vec![-5f32; 10 * 16];
        heat[0] = 3.0; // class 0, corner cell (0, 0): a peak
        heat[16 + 5] = 2.0; // class 1, cell (1, 1): a peak unless its neighbour is NaN
        heat[16 + 10] = f32::NAN; // class 1, cell (2, 2)
        heat[2 * 16 + 15] = 1.0; // class 2, corner (3, 3): a peak
        heat[2 * 16 + 14] = 1.0; // class 2, (3, 2): equal neighbour, also a peak (as max-pool)
        let out = DetOutput {
            heatmap: Tensor::from_slice(&heat).view([1, 10, 4, 4]),
            codes: Tensor::zeros([1, CODE_SIZE as i64, 4, 4], (Kind::Float, tch::Device::Cpu)),
        };
        let mut c0 = c.clone();
        c0.nms_radius = vec![0.0; 10];
        let boxes = &decode(&out, &c0, &grid)[0];
        let found: Vec<(usize, [f64; 2])> = boxes.iter().map(|b| (b.label, [b.center[0], b.center[1]])).collect();
        assert_eq!(found, vec![(0, [0.0, 0.0]), (2, [3.0, 2.0]), (2, [3.0, 3.0])]);
    }

    #[test]
    fn targets_decode_back_to_the_boxes() {
        let grid = BevGrid {
            x_min: -8.0,
            x_max: 8.0,
            y_min: -8.0,
            y_max: 8.0,
            resolution: 0.5,
        };
        let c = cfg();
        let boxes = vec![
            Box3D {
                center: [2.3, -1.1, 0.4],
                size: [1.9, 4.5, 1.6],
                yaw: 0.7,
                velocity: [1.0, -2.0],
                label: 0,
                score: 1.0,
            },
            Box3D {
                center: [-5.2, 6.6, 0.1],
                size: [0.6, 0.7, 1.8],
                yaw: -2.0,
                velocity: [f64::NAN; 2],
                label: 8,
                score: 1.0,
            },
        ];
        let t = encode_targets(&boxes, &c, &grid);
        let (nx, ny) = (grid.nx(), grid.ny());
        // the heatmap peaks at 1 exactly at the centre cells
        let i0 = t.ind[0] as usize;
        assert_eq!(t.heatmap[i0], 1.0);
        assert_eq!(t.heatmap[8 * nx * ny + t.ind[1] as usize], 1.0);
        assert_eq!(
            t.weights[CODE_SIZE + 8],
            0.0,
            "unknown velocity is not trained"
        );
        // feed the targets back as "perfect" outputs: logits +/-, codes at every cell
        let dt = DetTargets::stack(&[t.clone()], &grid, c.max_objects, tch::Device::Cpu);
        let logits = (dt.heatmap.eq(1.0).to_kind(Kind::Float) * 20.0) - 10.0;
        let codes = Tensor::zeros(
            [1, 10, nx as i64, ny as i64],
            (Kind::Float, tch::Device::Cpu),
        );
        let flat = codes.view([10, -1]);
        for k in 0..2 {
            let col = Tensor::from_slice(&t.codes[k * 10..(k + 1) * 10]);
            flat.select(1, t.ind[k]).copy_(&col);
        }
        let out = DetOutput {
            heatmap: logits,
            codes,
        };
        let dec = decode(&out, &c, &grid);
        assert_eq!(dec[0].len(), 2);
        for g in &boxes {
            let d = dec[0]
                .iter()
                .find(|d| d.label == g.label)
                .expect("class decoded");
            for a in 0..3 {
                assert!((d.center[a] - g.center[a]).abs() < 1e-4, "{d:?} {g:?}");
                assert!((d.size[a] - g.size[a]).abs() < 1e-4);
            }
            assert!((d.yaw - g.yaw).abs() < 1e-4);
        }
        let (hm, l1) = losses(&out, &dt);
        assert!(f64::try_from(&hm).unwrap() < 1e-3);
        assert!(f64::try_from(&l1).unwrap() < 1e-5);
    }

    #[test]
    fn radius_grows_with_size() {
        let a = gaussian_radius(4.0, 4.0, 0.1);
        let b = gaussian_radius(20.0, 8.0, 0.1);
        assert!(a > 0.0 && b > a, "{a} {b}");
    }
}
