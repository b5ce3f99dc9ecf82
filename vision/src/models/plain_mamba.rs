//! PlainMamba (Yang et al., "PlainMamba: Improving Non-Hierarchical Mamba in Visual
//! Recognition", 2024), as `PlainMamba` / `PlainMamba2D` in ChenhongyiYang/PlainMamba
//! (`mmcls/plain_mamba_dev/models/plain_mamba/`): a plain (non-hierarchical) stack of one block
//! type at one resolution. Each block, on tokens h `[B, L, D]` of an H×W grid:
//!
//! ```text
//! [x, z]   = in_proj(LN(h))                                  (D → 2E)
//! x        = silu(dwconv2d(x))                               (k×k depthwise on the grid)
//! [Δ̃,B,C]  = x_proj(x);  Δ = dt_proj(Δ̃)                     (shared by the four scans)
//! for each continuous scan s (row snakes from the top and the bottom, column snakes from the
//! left and the right; consecutive tokens are neighbours, so no jumps break the scan):
//!   B̃ₛ,t  = Bₛ,t + Θ[dₛ,t]        direction-aware updating: dₛ,t the move (start, right, left,
//!                                   up, down) that reached token t, Θ ∈ R^{5×N} learned
//!   yₛ    = selective-scan(xₛ, Δₛ, A, B̃ₛ, Cₛ, D)              read in scan s's order
//! y        = Σₛ unscan(yₛ) ⊙ silu(z);   h ← h + out_proj(y)
//! ```
//!
//! then LayerNorm, the mean over tokens and a linear head. A learned position embedding is added
//! after the patch embedding, as in the reference. One difference from the released code: it
//! reorders x for each scan but leaves Δ, B and C in raster order, so token t of a scan is
//! updated with another token's Δ, B and C; here all four follow the scan, as the paper's
//! equations do. The first layer's optional extra depthwise convolution (L1 only) is left out.

use super::scans::{Scan, gather, index, merge, moves};
use super::{InputShape, PatchEmbed};
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Distribution, Int, Tensor};
use serde::{Deserialize, Serialize};
use ssm_core::kernels::{ScanArgs, selective_scan};
use ssm_core::mixers::mamba::dt_bias_init;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlainMambaConfig {
    pub input: InputShape,
    pub classes: usize,
    pub patch: usize,
    pub d_model: usize,
    pub depth: usize,
    pub d_state: usize,
    pub expand: usize,
    /// Side of the depthwise convolution (7 in the paper's 14×14 grids).
    pub conv: usize,
}

impl PlainMambaConfig {
    /// PlainMamba-L1's block at a CPU-sized width: d 64, 4 layers, N = 16, E = 2D, 3×3 conv.
    pub fn new(input: InputShape, classes: usize) -> Self {
        Self { input, classes, patch: 4, d_model: 64, depth: 4, d_state: 16, expand: 2, conv: 3 }
    }

    pub fn grid(&self) -> (usize, usize) {
        (self.input.height / self.patch, self.input.width / self.patch)
    }

    pub fn init(&self, device: &Device) -> PlainMamba {
        assert!(!self.input.is_video(), "PlainMamba is an image model");
        let (h, w) = self.grid();
        assert!(h * w > 0, "PlainMamba: input {:?} is smaller than one patch of {}", self.input, self.patch);
        let d = self.d_model;
        let e = self.expand * d;
        let trunc = Distribution::Normal(0.0, 0.02);
        PlainMamba {
            patch_embed: PatchEmbed::new(self.input, d, self.patch, 1, device),
            pos_embed: Param::from_tensor(Tensor::random([1, h * w, d], trunc, device)),
            layers: (0..self.depth)
                .map(|_| PlainMambaLayer {
                    norm: LayerNormConfig::new(d).init(device),
                    mamba: self.mixer(d, e, device),
                })
                .collect(),
            norm: LayerNormConfig::new(d).init(device),
            head: LinearConfig::new(d, self.classes).init(device),
        }
    }

    fn mixer(&self, d: usize, e: usize, device: &Device) -> PlainMamba2d {
        let (n, r) = (self.d_state, d.div_ceil(16));
        let std = (r as f64).powf(-0.5);
        let a_log = Tensor::<1, Int>::arange(1..n as i64 + 1, device).float().log().reshape([1, n]).repeat_dim(0, e);
        let pad = self.conv / 2;
        PlainMamba2d {
            in_proj: LinearConfig::new(d, 2 * e).init(device),
            conv2d: Conv2dConfig::new([e, e], [self.conv, self.conv])
                .with_groups(e)
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .init(device),
            x_proj: LinearConfig::new(e, r + 2 * n).with_bias(false).init(device),
            dt_proj: LinearConfig::new(r, e)
                .with_bias(false)
                .with_initializer(Initializer::Uniform { min: -std, max: std })
                .init(device),
            dt_bias: Param::from_tensor(dt_bias_init(e, 0.001, 0.1, 1e-4, device)),
            a_log: Param::from_tensor(a_log),
            d: Param::from_tensor(Tensor::ones([e], device)),
            direction_bs: Param::from_tensor(Tensor::random([5, n], Distribution::Normal(0.0, 0.02), device)),
            out_proj: LinearConfig::new(e, d).init(device),
        }
    }
}

/// PlainMamba's token mixer.
#[derive(Module, Debug)]
pub struct PlainMamba2d {
    pub in_proj: Linear,
    pub conv2d: Conv2d,
    pub x_proj: Linear,
    pub dt_proj: Linear,
    /// `[E]`
    pub dt_bias: Param<Tensor<1>>,
    /// `[E, N]`
    pub a_log: Param<Tensor<2>>,
    /// `[E]`
    pub d: Param<Tensor<1>>,
    /// Θ `[5, N]`: one row per move (start, right, left, up, down).
    pub direction_bs: Param<Tensor<2>>,
    pub out_proj: Linear,
}

impl PlainMamba2d {
    /// `x` `[B, L, D]` on an `h × w` grid → `[B, L, D]`.
    pub fn forward(&self, x: Tensor<3>, h: usize, w: usize) -> Tensor<3> {
        let [b, l, _] = x.dims();
        let xz = self.in_proj.forward(x);
        let e = xz.dims()[2] / 2;
        let (xi, z) = (xz.clone().narrow(2, 0, e), xz.narrow(2, e, e));
        let grid = xi.swap_dims(1, 2).reshape([b, e, h, w]);
        let xc = silu(self.conv2d.forward(grid)).reshape([b, e, l]).swap_dims(1, 2); // [B, L, E]
        let x_dbl = self.x_proj.forward(xc.clone());
        let n = self.direction_bs.dims()[1];
        let r = x_dbl.dims()[2] - 2 * n;
        let dt = self.dt_proj.forward(x_dbl.clone().narrow(2, 0, r));
        // Every per-token quantity read in the four scan orders at once: [B, 4, 2E + 2N, L].
        let orders: Vec<Vec<usize>> = Scan::SNAKES.iter().map(|s| s.order(h, w)).collect();
        let all = Tensor::cat(vec![xc, dt, x_dbl.narrow(2, r, 2 * n)], 2).swap_dims(1, 2);
        let seq = gather(all, &orders);
        let part = |at: usize, len: usize| seq.clone().narrow(2, at, len);
        let (u, delta, bs, cs) = (part(0, e), part(e, e), part(2 * e, n), part(2 * e + n, n));
        let bs = bs + self.direction_terms(&orders, w);
        let k = orders.len();
        let args = ScanArgs::grouped(
            u.reshape([b, k * e, l]),
            delta.reshape([b, k * e, l]),
            self.a_log.val().exp().neg().repeat_dim(0, k),
            bs,
            cs,
        )
        .d(self.d.val().repeat_dim(0, k))
        .delta_bias(self.dt_bias.val().repeat_dim(0, k))
        .softplus(true);
        let y = merge(selective_scan(args).y.reshape([b, k, e, l]), &orders).swap_dims(1, 2); // [B, L, E]
        self.out_proj.forward(y * silu(z))
    }

    /// Θ[dₛ,t] for every scan s and step t, `[1, K, N, L]`.
    fn direction_terms(&self, orders: &[Vec<usize>], w: usize) -> Tensor<4> {
        let l = orders[0].len();
        let idx = index(orders.iter().flat_map(|o| moves(o, w)).collect(), &self.d.device());
        let n = self.direction_bs.dims()[1];
        self.direction_bs.val().select(0, idx).reshape([1, orders.len(), l, n]).swap_dims(2, 3)
    }
}

#[derive(Module, Debug)]
pub struct PlainMambaLayer {
    pub norm: LayerNorm,
    pub mamba: PlainMamba2d,
}

#[derive(Module, Debug)]
pub struct PlainMamba {
    pub patch_embed: PatchEmbed,
    /// `[1, L, D]`
    pub pos_embed: Param<Tensor<3>>,
    pub layers: Vec<PlainMambaLayer>,
    pub norm: LayerNorm,
    pub head: Linear,
}

impl PlainMamba {
    pub fn forward(&self, x: Tensor<5>) -> Tensor<2> {
        let f = self.patch_embed.forward(x); // [B, D, 1, h, w]
        let [b, d, _, h, w] = f.dims();
        let expected = self.pos_embed.dims()[1];
        assert_eq!(
            h * w,
            expected,
            "PlainMamba: the input gives {} patches, the model was built for {expected}",
            h * w
        );
        let mut x = f.reshape([b, d, h * w]).swap_dims(1, 2) + self.pos_embed.val();
        for layer in &self.layers {
            x = x.clone() + layer.mamba.forward(layer.norm.forward(x), h, w);
        }
        self.head.forward(self.norm.forward(x).mean_dim(1).reshape([b, d]))
    }
}
