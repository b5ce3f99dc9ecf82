//! VMamba (Liu et al., "VMamba: Visual State Space Model"), as `VSSM` / `SS2D` in the released
//! `vmamba.py`. SS2D, on a feature map `[B, H, W, D]`:
//!
//! ```text
//! [x, z]  = in_proj(h)                                  (D → 2E)
//! x       = silu(conv2d(x))                             (depthwise 3×3)
//! xs      = cross-scan(x): row-major, column-major, and both reversed   → [B, 4, E, HW]
//! [Δ̃,B,C] = x_proj_weight[k] · xs[k]                    (per direction k)
//! Δ       = dt_projs_weight[k] · Δ̃ + dt_projs_bias[k]   (softplus in the scan)
//! y_k     = selective-scan(xs[k], Δ, A = −exp(A_logs), B, C, Ds)   (one scan, 4E channels)
//! y       = cross-merge(y): un-reverse and un-transpose each direction, sum
//! out     = out_proj(out_norm(y) · silu(z))
//! ```
//!
//! Blocks `h + SS2D(LN(h))`, `h + MLP(LN(h))`; stages joined by `PatchMerging2D` (2×2
//! neighbours concatenated, LayerNorm(4C), Linear 4C → 2C); head: LN, average pool, Linear.
//! The scan orders are [`super::scans`]'s; LocalVMamba is this model with other directions per
//! block and a channel gate per direction (see [`super::local_vmamba`]).

#![allow(non_snake_case)] // A_logs and Ds: the released code's parameter names

use super::scans::{Scan, gather, merge};
use super::{InputShape, PatchEmbed, global_pool};
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::{gelu, sigmoid, silu};
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};
use ssm_core::kernels::{ScanArgs, selective_scan};
use ssm_core::mixers::mamba::dt_bias_init;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmambaConfig {
    pub input: InputShape,
    pub classes: usize,
    pub patch: usize,
    /// Width of each stage (doubling after each patch merging).
    pub dims: Vec<usize>,
    /// Blocks per stage.
    pub depths: Vec<usize>,
    pub d_state: usize,
    /// E = ssm_ratio · D.
    pub ssm_ratio: usize,
    pub mlp_ratio: usize,
    /// Scan directions of each block in order across the stages, cycled if there are more
    /// blocks (LocalVMamba); empty: VMamba's cross-scan in every block.
    #[serde(default)]
    pub directions: Vec<Vec<Scan>>,
    /// LocalVMamba's channel gate on each direction ([`BiAttn`]).
    #[serde(default)]
    pub gate: bool,
}

impl VmambaConfig {
    /// Two stages (the first at patch-2 resolution), VMamba's block structure at a CPU-sized width.
    pub fn new(input: InputShape, classes: usize) -> Self {
        Self {
            input,
            classes,
            patch: 2,
            dims: vec![32, 64],
            depths: vec![2, 2],
            d_state: 8,
            ssm_ratio: 2,
            mlp_ratio: 2,
            directions: Vec::new(),
            gate: false,
        }
    }

    /// The scans of block `i` (counted across the stages).
    fn scans(&self, i: usize) -> Vec<Scan> {
        match self.directions.len() {
            0 => Scan::CROSS.to_vec(),
            n => self.directions[i % n].clone(),
        }
    }

    pub fn init(&self, device: &Device) -> Vmamba {
        assert!(!self.input.is_video(), "VMamba is an image model");
        assert_eq!(self.dims.len(), self.depths.len(), "VMamba: dims and depths differ in length");
        let ln = |d| LayerNormConfig::new(d).init(device);
        let first: Vec<usize> = self.depths.iter().scan(0, |acc, &n| Some(std::mem::replace(acc, *acc + n))).collect();
        let stages = self
            .dims
            .iter()
            .zip(&self.depths)
            .enumerate()
            .map(|(i, (&d, &depth))| VssStage {
                blocks: (0..depth)
                    .map(|j| VssBlock {
                        norm: ln(d),
                        op: Ss2d::with_scans(
                            d,
                            d * self.ssm_ratio,
                            self.d_state,
                            self.scans(first[i] + j),
                            self.gate,
                            device,
                        ),
                        norm2: ln(d),
                        fc1: LinearConfig::new(d, d * self.mlp_ratio).init(device),
                        fc2: LinearConfig::new(d * self.mlp_ratio, d).init(device),
                    })
                    .collect(),
                downsample: self.dims.get(i + 1).map(|&next| PatchMerging2d {
                    norm: ln(4 * d),
                    reduction: LinearConfig::new(4 * d, next).with_bias(false).init(device),
                }),
            })
            .collect();
        let last = *self.dims.last().expect("VMamba needs at least one stage");
        Vmamba {
            patch_embed: PatchEmbed::new(self.input, self.dims[0], self.patch, 1, device),
            patch_norm: ln(self.dims[0]),
            layers: stages,
            norm: ln(last),
            head: LinearConfig::new(last, self.classes).init(device),
        }
    }
}

/// The SS2D operator.
#[derive(Module, Debug)]
pub struct Ss2d {
    pub in_proj: Linear,
    pub conv2d: Conv2d,
    /// `[K, dt_rank + 2N, E]`
    pub x_proj_weight: Param<Tensor<3>>,
    /// `[K, E, dt_rank]`
    pub dt_projs_weight: Param<Tensor<3>>,
    /// `[K, E]`
    pub dt_projs_bias: Param<Tensor<2>>,
    /// `[KE, N]`
    pub A_logs: Param<Tensor<2>>,
    /// `[KE]`
    pub Ds: Param<Tensor<1>>,
    pub out_norm: LayerNorm,
    pub out_proj: Linear,
    /// The scan orders, one per direction k (VMamba: [`Scan::CROSS`]).
    #[module(skip)]
    pub scans: Vec<Scan>,
    /// LocalVMamba's channel gate on each direction's output before they are summed.
    pub attn: Option<BiAttn>,
}

/// LocalVMamba's `BiAttn` (its spatial branch is disabled in the released code, so only the
/// channel gate remains): for one direction's output y `[B, E, L]`,
/// g = σ(W₂ GELU(W₁ mean_t LN(y)ₜ)) `[B, E]`, y ← g ⊙ y.
#[derive(Module, Debug)]
pub struct BiAttn {
    pub norm: LayerNorm,
    pub global_reduce: Linear,
    pub channel_select: Linear,
}

impl BiAttn {
    pub fn new(e: usize, device: &Device) -> Self {
        let r = (e / 8).max(1);
        Self {
            norm: LayerNormConfig::new(e).init(device),
            global_reduce: LinearConfig::new(e, r).init(device),
            channel_select: LinearConfig::new(r, e).init(device),
        }
    }

    /// `y` `[B, K, E, L]` gated per direction (the mean over L does not depend on the order).
    pub fn forward(&self, y: Tensor<4>) -> Tensor<4> {
        let [b, k, e, _] = y.dims();
        let pooled = self.norm.forward(y.clone().swap_dims(2, 3)).mean_dim(2); // [B, K, 1, E]
        let g = sigmoid(self.channel_select.forward(gelu(self.global_reduce.forward(pooled))));
        y * g.reshape([b, k, e, 1])
    }
}

impl Ss2d {
    /// SS2D over `scans` (K directions), with LocalVMamba's channel gate when `gate`.
    pub fn with_scans(d: usize, e: usize, n: usize, scans: Vec<Scan>, gate: bool, device: &Device) -> Self {
        let k = scans.len();
        let r = d.div_ceil(16);
        let lin = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        let u = |fan_in: usize| Initializer::Uniform {
            min: -1.0 / (fan_in as f64).sqrt(),
            max: 1.0 / (fan_in as f64).sqrt(),
        };
        let a_log =
            Tensor::<1, Int>::arange(1..n as i64 + 1, device).float().log().reshape([1, n]).repeat_dim(0, k * e);
        let std = (r as f64).powf(-0.5);
        Self {
            in_proj: lin(d, 2 * e),
            conv2d: Conv2dConfig::new([e, e], [3, 3])
                .with_groups(e)
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            x_proj_weight: u(e).init([k, r + 2 * n, e], device),
            dt_projs_weight: Initializer::Uniform { min: -std, max: std }.init([k, e, r], device),
            dt_projs_bias: Param::from_tensor(dt_bias_init(k * e, 0.001, 0.1, 1e-4, device).reshape([k, e])),
            A_logs: Param::from_tensor(a_log),
            Ds: Param::from_tensor(Tensor::ones([k * e], device)),
            out_norm: LayerNormConfig::new(e).init(device),
            out_proj: lin(e, d),
            scans,
            attn: gate.then(|| BiAttn::new(e, device)),
        }
    }

    /// `x` `[B, H, W, D]` → `[B, H, W, D]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, w, _] = x.dims();
        let xz = self.in_proj.forward(x);
        let e = xz.dims()[3] / 2;
        let (xi, z) = (xz.clone().narrow(3, 0, e), xz.narrow(3, e, e));
        let xi = silu(self.conv2d.forward(xi.permute([0, 3, 1, 2]))); // [B, E, H, W]
        let l = h * w;
        let orders: Vec<Vec<usize>> = self.scans.iter().map(|s| s.order(h, w)).collect();
        let k = orders.len();
        let xs = gather(xi.reshape([b, e, l]), &orders); // [B, K, E, L]
        let [_, c, _] = self.x_proj_weight.dims();
        let r = self.dt_projs_weight.dims()[2];
        let n = (c - r) / 2;
        let x_dbl = self.x_proj_weight.val().unsqueeze_dim::<4>(0).expand([b, k, c, e]).matmul(xs.clone());
        let dts =
            self.dt_projs_weight.val().unsqueeze_dim::<4>(0).expand([b, k, e, r]).matmul(x_dbl.clone().narrow(2, 0, r));
        let (bs, cs) = (x_dbl.clone().narrow(2, r, n), x_dbl.narrow(2, r + n, n)); // [B, K, N, L]
        let args = ScanArgs::grouped(
            xs.reshape([b, k * e, l]),
            dts.reshape([b, k * e, l]),
            self.A_logs.val().exp().neg(),
            bs,
            cs,
        )
        .d(self.Ds.val())
        .delta_bias(self.dt_projs_bias.val().reshape([k * e]))
        .softplus(true);
        let mut y = selective_scan(args).y.reshape([b, k, e, l]);
        if let Some(attn) = &self.attn {
            y = attn.forward(y);
        }
        let y = merge(y, &orders).swap_dims(1, 2).reshape([b, h, w, e]);
        self.out_proj.forward(self.out_norm.forward(y) * silu(z))
    }
}

#[derive(Module, Debug)]
pub struct VssBlock {
    pub norm: LayerNorm,
    pub op: Ss2d,
    pub norm2: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
}

impl VssBlock {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = x.clone() + self.op.forward(self.norm.forward(x));
        x.clone() + self.fc2.forward(gelu(self.fc1.forward(self.norm2.forward(x))))
    }
}

/// 2×2 neighbours → one token: `[B, H, W, C]` → `[B, ⌈H/2⌉, ⌈W/2⌉, C']` (odd sizes zero-padded).
#[derive(Module, Debug)]
pub struct PatchMerging2d {
    pub norm: LayerNorm,
    pub reduction: Linear,
}

impl PatchMerging2d {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, w, c] = x.dims();
        let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
        let mut x = x;
        if h % 2 == 1 {
            x = Tensor::cat(vec![x.clone(), Tensor::zeros([b, 1, w, c], &x.device())], 1);
        }
        if w % 2 == 1 {
            x = Tensor::cat(vec![x.clone(), Tensor::zeros([b, 2 * h2, 1, c], &x.device())], 2);
        }
        let x = x.reshape([b, h2, 2, w2, 2, c]);
        let part = |i: usize, j: usize| x.clone().narrow(2, i, 1).narrow(4, j, 1).reshape([b, h2, w2, c]);
        // x0 = [0::2, 0::2], x1 = [1::2, 0::2], x2 = [0::2, 1::2], x3 = [1::2, 1::2]
        let cat = Tensor::cat(vec![part(0, 0), part(1, 0), part(0, 1), part(1, 1)], 3);
        self.reduction.forward(self.norm.forward(cat))
    }
}

#[derive(Module, Debug)]
pub struct VssStage {
    pub blocks: Vec<VssBlock>,
    pub downsample: Option<PatchMerging2d>,
}

#[derive(Module, Debug)]
pub struct Vmamba {
    pub patch_embed: PatchEmbed,
    pub patch_norm: LayerNorm,
    pub layers: Vec<VssStage>,
    pub norm: LayerNorm,
    pub head: Linear,
}

impl Vmamba {
    pub fn forward(&self, x: Tensor<5>) -> Tensor<2> {
        let f = self.patch_embed.forward(x); // [B, D, 1, h, w]
        let [b, d, _, h, w] = f.dims();
        let mut x = self.patch_norm.forward(f.reshape([b, d, h, w]).permute([0, 2, 3, 1]));
        for stage in &self.layers {
            for blk in &stage.blocks {
                x = blk.forward(x);
            }
            if let Some(m) = &stage.downsample {
                x = m.forward(x);
            }
        }
        let x = self.norm.forward(x).permute([0, 3, 1, 2]).unsqueeze_dim::<5>(2);
        self.head.forward(global_pool(x))
    }
}
