//! EinFFT channel mixing (Patro & Agneeswaran, "SiMBA: Simplified Mamba-based Architecture for
//! Vision and Multivariate Time series"), as the `EinFFT` module of the released code, shared by
//! SiMBA for images (ssm-vision) and SiMBA-TS (ssm-timeseries):
//!
//! ```text
//! x            : [B, N, C] viewed as [B, N, nb, bs]          (nb blocks of bs channels)
//! X            = FFT2(x) over (tokens N, blocks nb), orthonormal
//! H            = ReLU(X ⊙_b W₁ + b₁)                       (block-diagonal complex matmul,
//! Y            = H ⊙_b W₂ + b₂                              real/imag parts as real matmuls)
//! Y            = softshrink(Re Y, λ) + i softshrink(Im Y, λ)
//! y            = IFFT2(Y), orthonormal  →  a real output (see [`ImagPart`])
//! ```
//!
//! with `(a + ib) ⊙ (W_re + i W_im) = (a W_re − b W_im) + i (a W_im + b W_re)` per block.
//! The weights are stored as the released code stores them: `complex_weight_{1,2}` `[2, nb, bs, bs]`
//! (index 0 real, 1 imaginary), `complex_bias_{1,2}` `[2, nb, bs]`, init N(0, 0.02²).

use crate::fft::{dft, idft};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

/// What becomes of the imaginary part of IFFT2(Y), which is not zero in general (Y is not
/// Hermitian after the complex weights).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum ImagPart {
    /// Keep the real part, as the released code does silently (`x.to(torch.float32)` on a complex
    /// tensor). Equivalent to projecting Y onto Hermitian spectra before the inverse transform.
    Drop,
    /// Add the imaginary part to the real part (a Hartley-style read-out: nothing is discarded).
    Add,
    /// The modulus |y| (non-negative output).
    Modulus,
}

#[derive(Config, Debug)]
pub struct EinFftConfig {
    pub d_model: usize,
    /// Number of channel blocks nb (the released code uses 4); bs = d_model / nb.
    #[config(default = 4)]
    pub num_blocks: usize,
    /// Soft-shrinkage threshold λ (0 disables it).
    #[config(default = 0.01)]
    pub sparsity_threshold: f64,
    #[config(default = "ImagPart::Drop")]
    pub imag: ImagPart,
}

#[derive(Module, Debug)]
pub struct EinFft {
    pub complex_weight_1: Param<Tensor<4>>,
    pub complex_weight_2: Param<Tensor<4>>,
    pub complex_bias_1: Param<Tensor<3>>,
    pub complex_bias_2: Param<Tensor<3>>,
    pub sparsity_threshold: f64,
    #[module(skip)]
    pub imag: ImagPart,
}

impl EinFftConfig {
    pub fn init(&self, device: &Device) -> EinFft {
        let nb = self.num_blocks;
        assert!(
            nb > 0 && self.d_model.is_multiple_of(nb),
            "EinFFT: d_model {} must be a multiple of num_blocks {nb}",
            self.d_model
        );
        let bs = self.d_model / nb;
        let n = Distribution::Normal(0.0, 0.02);
        EinFft {
            complex_weight_1: Param::from_tensor(Tensor::random([2, nb, bs, bs], n, device)),
            complex_weight_2: Param::from_tensor(Tensor::random([2, nb, bs, bs], n, device)),
            complex_bias_1: Param::from_tensor(Tensor::random([2, nb, bs], n, device)),
            complex_bias_2: Param::from_tensor(Tensor::random([2, nb, bs], n, device)),
            sparsity_threshold: self.sparsity_threshold,
            imag: self.imag,
        }
    }
}

/// softshrink(x, λ) = sign(x) · max(|x| − λ, 0)
pub fn softshrink<const D: usize>(x: Tensor<D>, lambda: f64) -> Tensor<D> {
    relu(x.clone().sub_scalar(lambda)) - relu(x.neg().sub_scalar(lambda))
}

/// `x` `[B, N, nb, bs]` times per-block `w` `[nb, bs, bs]`: einsum('...bd,bdk->...bk').
fn block_matmul(x: Tensor<4>, w: Tensor<3>) -> Tensor<4> {
    let [b, n, nb, bs] = x.dims();
    let k = w.dims()[2];
    let xt = x.swap_dims(0, 2).reshape([nb, n * b, bs]); // [nb, N·B, bs]
    xt.matmul(w).reshape([nb, n, b, k]).swap_dims(0, 2)
}

impl EinFft {
    fn part<const D: usize>(p: &Param<Tensor<D>>, i: usize) -> Tensor<D> {
        p.val().narrow(0, i, 1)
    }

    /// (a + ib)(W_re + iW_im) + (b_re + i b_im) per block.
    fn complex_layer(
        &self,
        re: Tensor<4>,
        im: Tensor<4>,
        w: &Param<Tensor<4>>,
        bias: &Param<Tensor<3>>,
    ) -> (Tensor<4>, Tensor<4>) {
        let [_, nb, bs, k] = w.dims();
        let (wr, wi) = (Self::part(w, 0).reshape([nb, bs, k]), Self::part(w, 1).reshape([nb, bs, k]));
        let (br, bi) = (Self::part(bias, 0).reshape([1, 1, nb, k]), Self::part(bias, 1).reshape([1, 1, nb, k]));
        let out_re = block_matmul(re.clone(), wr.clone()) - block_matmul(im.clone(), wi.clone()) + br;
        let out_im = block_matmul(re, wi) + block_matmul(im, wr) + bi;
        (out_re, out_im)
    }

    /// `x` `[B, N, C]` → `[B, N, C]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, n, c] = x.dims();
        let [_, nb, bs, _] = self.complex_weight_1.dims();
        assert_eq!(c, nb * bs, "EinFFT: input {:?} has {c} channels, expected {}", x.dims(), nb * bs);
        let x = x.reshape([b, n, nb, bs]);
        // Orthonormal FFT2 over (N, nb).
        let scale = ((n * nb) as f64).sqrt();
        let (re, im) = dft(x.clone(), x.zeros_like(), 1);
        let (re, im) = dft(re, im, 2);
        let (re, im) = (re.div_scalar(scale), im.div_scalar(scale));
        let (re, im) = self.complex_layer(re, im, &self.complex_weight_1, &self.complex_bias_1);
        let (re, im) = (relu(re), relu(im));
        let (mut re, mut im) = self.complex_layer(re, im, &self.complex_weight_2, &self.complex_bias_2);
        if self.sparsity_threshold > 0.0 {
            re = softshrink(re, self.sparsity_threshold);
            im = softshrink(im, self.sparsity_threshold);
        }
        let (re, im) = idft(re, im, 1);
        let (re, im) = idft(re, im, 2);
        let (re, im) = (re.mul_scalar(scale), im.mul_scalar(scale));
        let y = match self.imag {
            ImagPart::Drop => re,
            ImagPart::Add => re + im,
            ImagPart::Modulus => (re.powi_scalar(2) + im.powi_scalar(2) + 1e-12).sqrt(),
        };
        y.reshape([b, n, c])
    }
}
