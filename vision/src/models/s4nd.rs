//! S4ND (Nguyen et al., "S4ND: Modeling Images and Videos as Multidimensional Signals Using
//! State Spaces"). One S4D kernel per axis (H×W for images, T×H×W for video), each
//! bidirectional, combined by outer product and applied by N-D FFT convolution:
//!
//! ```text
//! K_a[h, m]    = 2 Re Σ_n C_a[h,n] (e^{Δ_a A_a[h,n]} − 1)/A_a[h,n] · e^{Δ_a A_a[h,n]·|m|}   (C for m ≥ 0,
//!                                                                      C_b for m < 0; a = axis)
//! K[h, m₁, m₂] = K₁[h, m₁] · K₂[h, m₂]                  (· K₀[h, m₀] on the time axis)
//! y            = K ⊛ u + D ⊙ u                           (2-D / 3-D FFT, linear, zero-padded;
//!                                                         factorised per axis, as K is separable)
//! out          = GLU(output_linear(GELU(y)))
//! ```
//!
//! Any resolution: the kernels are continuous-time; for an axis of `X` samples where the model
//! was trained on `X₀`, the step is Δ·X₀/X, so the kernel covers the same extent of the image.
//! Blocks `h + S4ND(LN(h))`, `h + MLP(LN(h))` on the patch grid (isotropic, as S4ND's ViT
//! variant); head: average pool, LN, Linear.

use super::{InputShape, PatchEmbed, global_pool};
use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, glu};
use burn::tensor::{Device, Distribution, Int, Tensor};
use serde::{Deserialize, Serialize};
use ssm_core::ComplexTensor;
use ssm_core::fft::{circular_kernel, conv_fft_len, separable_conv_nd, two_sided_kernel};
use ssm_core::kernels::s4d::s4d_kernel;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct S4ndConfig {
    pub input: InputShape,
    pub classes: usize,
    pub patch: usize,
    /// Frames per tubelet (video only).
    pub tubelet: usize,
    pub d_model: usize,
    pub depth: usize,
    /// State size N per axis (N/2 complex modes).
    pub d_state: usize,
    pub mlp_ratio: usize,
    pub dt_min: f64,
    pub dt_max: f64,
}

impl S4ndConfig {
    pub fn new(input: InputShape, classes: usize) -> Self {
        Self {
            input,
            classes,
            patch: 2,
            tubelet: 2,
            d_model: 64,
            depth: 4,
            d_state: 32,
            mlp_ratio: 2,
            dt_min: 0.01,
            dt_max: 0.1,
        }
    }

    /// The patch grid (t, h, w) the model is trained on.
    pub fn grid(&self) -> Vec<usize> {
        let (h, w) = (self.input.height / self.patch, self.input.width / self.patch);
        if self.input.is_video() { vec![self.input.frames / self.tubelet, h, w] } else { vec![h, w] }
    }

    pub fn init(&self, device: &Device) -> S4nd {
        let grid = self.grid();
        assert!(grid.iter().all(|&g| g > 0), "S4ND: input {:?} is smaller than one patch", self.input);
        let d = self.d_model;
        let ln = |d| LayerNormConfig::new(d).init(device);
        let blocks = (0..self.depth)
            .map(|_| S4ndBlock {
                norm: ln(d),
                layer: S4ndLayer::new(d, self.d_state, &grid, self.dt_min, self.dt_max, device),
                norm2: ln(d),
                fc1: LinearConfig::new(d, d * self.mlp_ratio).init(device),
                fc2: LinearConfig::new(d * self.mlp_ratio, d).init(device),
            })
            .collect();
        S4nd {
            patch_embed: PatchEmbed::new(self.input, d, self.patch, self.tubelet, device),
            blocks,
            norm: ln(d),
            head: LinearConfig::new(d, self.classes).init(device),
        }
    }
}

/// One axis's bidirectional S4D kernel (S4D-Lin init): A `[H, N/2]`, C for positive lags and
/// `c_b` for negative lags.
#[derive(Module, Debug)]
pub struct AxisKernel {
    pub log_dt: Param<Tensor<1>>,
    pub log_a_real: Param<Tensor<2>>,
    pub a_imag: Param<Tensor<2>>,
    pub c_re: Param<Tensor<2>>,
    pub c_im: Param<Tensor<2>>,
    pub c_b_re: Param<Tensor<2>>,
    pub c_b_im: Param<Tensor<2>>,
    /// The axis length the model was built for (samples of the patch grid).
    pub base_len: usize,
}

impl AxisKernel {
    pub fn new(h: usize, d_state: usize, base_len: usize, dt_min: f64, dt_max: f64, device: &Device) -> Self {
        let n2 = (d_state / 2).max(1);
        let c = || Param::from_tensor(Tensor::<2>::random([h, n2], Distribution::Normal(0.0, 0.5f64.sqrt()), device));
        let a_imag = Tensor::<1, Int>::arange(0..n2 as i64, device).float().mul_scalar(std::f64::consts::PI);
        Self {
            log_dt: Param::from_tensor(Tensor::random([h], Distribution::Uniform(dt_min.ln(), dt_max.ln()), device)),
            log_a_real: Param::from_tensor(Tensor::full([h, n2], 0.5f64.ln(), device)),
            a_imag: Param::from_tensor(a_imag.reshape([1, n2]).repeat_dim(0, h)),
            c_re: c(),
            c_im: c(),
            c_b_re: c(),
            c_b_im: c(),
            base_len,
        }
    }

    /// (forward, backward) kernels `[H, len]` for an axis of `len` samples.
    pub fn kernels(&self, len: usize) -> (Tensor<2>, Tensor<2>) {
        let a = ComplexTensor::new(self.log_a_real.val().exp().neg(), self.a_imag.val());
        let log_dt = self.log_dt.val().add_scalar((self.base_len as f64 / len as f64).ln());
        let fwd = s4d_kernel(log_dt.clone(), a.clone(), ComplexTensor::new(self.c_re.val(), self.c_im.val()), len);
        let bwd = s4d_kernel(log_dt, a, ComplexTensor::new(self.c_b_re.val(), self.c_b_im.val()), len);
        (fwd, bwd)
    }

    /// The two-sided kernel `[H, 2·len − 1]` (lag m at index m + len − 1).
    pub fn two_sided(&self, len: usize) -> Tensor<2> {
        let (f, b) = self.kernels(len);
        two_sided_kernel(f, b)
    }

    /// The kernel in circular layout on `conv_fft_len(len)` points, `[H, N]`.
    pub fn circular(&self, len: usize) -> Tensor<2> {
        let (f, b) = self.kernels(len);
        circular_kernel(f, Some(b), conv_fft_len(len))
    }
}

/// The S4ND layer on channels-first features `[B, H, t, h, w]`.
#[derive(Module, Debug)]
pub struct S4ndLayer {
    /// One kernel per axis: (h, w) for images, (t, h, w) for video.
    pub kernels: Vec<AxisKernel>,
    pub d: Param<Tensor<1>>,
    pub output_linear: Linear,
}

impl S4ndLayer {
    pub fn new(h: usize, d_state: usize, grid: &[usize], dt_min: f64, dt_max: f64, device: &Device) -> Self {
        Self {
            kernels: grid.iter().map(|&g| AxisKernel::new(h, d_state, g, dt_min, dt_max, device)).collect(),
            d: Param::from_tensor(Tensor::random([h], Distribution::Normal(0.0, 1.0), device)),
            output_linear: LinearConfig::new(h, 2 * h).init(device),
        }
    }

    /// The N-D kernel `[1, H, N_t, N_h, N_w]` (N_t = 1 for images) for a grid `[t, h, w]`.
    pub fn kernel(&self, grid: [usize; 3]) -> Tensor<5> {
        let axes = &grid[3 - self.kernels.len()..];
        let ks: Vec<Tensor<2>> = self.kernels.iter().zip(axes).map(|(k, &len)| k.circular(len)).collect();
        let h = ks[0].dims()[0];
        let n = |k: &Tensor<2>| k.dims()[1];
        // Outer product over the axes.
        let (kh, kw) = (&ks[ks.len() - 2], &ks[ks.len() - 1]);
        let plane: Tensor<3> = kh.clone().reshape([h, n(kh), 1]) * kw.clone().reshape([h, 1, n(kw)]);
        let [_, nh, nw] = plane.dims();
        let vol: Tensor<4> = match ks.len() {
            2 => plane.reshape([h, 1, nh, nw]),
            _ => ks[0].clone().reshape([h, n(&ks[0]), 1, 1]) * plane.reshape([h, 1, nh, nw]),
        };
        vol.unsqueeze_dim(0)
    }

    /// `K ⊛ u` for `u` `[B, H, t, h, w]`: the N-D FFT convolution with the outer-product kernel,
    /// computed axis by axis (`ssm_core::fft::separable_conv_nd`; the test suite checks it
    /// against `fft_conv_nd` with [`Self::kernel`]).
    pub fn conv(&self, u: Tensor<5>) -> Tensor<5> {
        let [_, _, t, gh, gw] = u.dims();
        let grid = [t, gh, gw];
        let axes: Vec<usize> = (5 - self.kernels.len()..5).collect();
        let ks: Vec<Tensor<2>> = self.kernels.iter().zip(&axes).map(|(k, &a)| k.two_sided(grid[a - 2])).collect();
        separable_conv_nd(u, &ks, &axes)
    }

    /// `u` `[B, H, t, h, w]` (channels first) → channels-last output `[B, t, h, w, H]`.
    pub fn forward(&self, u: Tensor<5>) -> Tensor<5> {
        let h = u.dims()[1];
        let y = self.conv(u.clone()) + u * self.d.val().reshape([1, h, 1, 1, 1]);
        glu(self.output_linear.forward(gelu(y.permute([0, 2, 3, 4, 1]))), 4)
    }
}

#[derive(Module, Debug)]
pub struct S4ndBlock {
    pub norm: LayerNorm,
    pub layer: S4ndLayer,
    pub norm2: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
}

impl S4ndBlock {
    /// Channels-last `[B, t, h, w, D]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let u = self.norm.forward(x.clone()).permute([0, 4, 1, 2, 3]);
        let x = x + self.layer.forward(u);
        x.clone() + self.fc2.forward(gelu(self.fc1.forward(self.norm2.forward(x))))
    }
}

#[derive(Module, Debug)]
pub struct S4nd {
    pub patch_embed: PatchEmbed,
    pub blocks: Vec<S4ndBlock>,
    pub norm: LayerNorm,
    pub head: Linear,
}

impl S4nd {
    /// Any input size whose patch grid is at least one patch on each axis.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<2> {
        let mut f = self.patch_embed.forward(x).permute([0, 2, 3, 4, 1]); // [B, t, h, w, D]
        for blk in &self.blocks {
            f = blk.forward(f);
        }
        let pooled = global_pool(f.permute([0, 4, 1, 2, 3]));
        self.head.forward(self.norm.forward(pooled))
    }
}
