//! TNN (Qin, Han, Sun, Li, Kong, Li & Zhong, "Toeplitz Neural Network for Sequence Modeling",
//! ICLR 2023, §3): token mixing by a Toeplitz matrix per channel whose entries t_{i−j} depend
//! only on the relative position, produced by a small relative-position encoder and damped by an
//! exponential decay; the mat-vec is an FFT convolution. Causal form (language modelling).
//! Checked against OpenNLPLab/Tnn (`Gtu`, `Tno` with `use_decay`, `Rpe`).
//!
//! ```text
//! GTU:  u = SiLU(W_u x),  v = SiLU(W_v x),  o = W_o (u ⊙ Tno(v))
//! Tno:  Tno(v)_i = Σ_{j ≤ i} t_{i−j} ⊙ v_j,   t_k = RPE(k) · λ^k          (k = 0 … T − 1)
//! RPE:  k ↦ Linear(1 → r) → [LayerNorm → SiLU → Linear(r → r)] × layers → LayerNorm → SiLU → Linear(r → E)
//! ```
//!
//! The Toeplitz entries exist for T = `max_len` lags (λ^T is negligible at the defaults: 0.99^1024
//! ≈ 3·10⁻⁵), so the recurrent form keeps the last T − 1 values of v, as LongConv and Hyena do.
//! The paper's block follows the GTU with a GLU channel mixer: the canonical block adds an MLP.

use super::{BatchState, MixerSpec, SequenceMixer, cat_batch_dim, split_batch_dim};
use crate::kernels::causal_conv_history;
use burn::config::Config;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Int, Tensor};

#[derive(Config, Debug)]
pub struct TnnConfig {
    pub d_model: usize,
    /// Width of u and v (E = expand · d_model; the reference uses 3 with no extra MLP budget).
    #[config(default = 1)]
    pub expand: usize,
    /// Width r of the relative-position encoder.
    #[config(default = 32)]
    pub rpe_dim: usize,
    /// Hidden layers of the encoder.
    #[config(default = 3)]
    pub rpe_layers: usize,
    /// The decay λ of the Toeplitz entries.
    #[config(default = 0.99)]
    pub decay: f64,
    /// Lags T with an entry (the recurrent state's length + 1).
    #[config(default = 1024)]
    pub max_len: usize,
}

/// LayerNorm → SiLU → Linear.
#[derive(Module, Debug)]
pub struct RpeLayer {
    pub norm: LayerNorm,
    pub linear: Linear,
}

impl RpeLayer {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.linear.forward(silu(self.norm.forward(x)))
    }
}

/// The relative-position encoder: lag k ↦ E Toeplitz entries.
#[derive(Module, Debug)]
pub struct Rpe {
    pub pos_proj: Linear,
    pub layers: Vec<RpeLayer>,
    pub out: RpeLayer,
}

#[derive(Module, Debug)]
pub struct Tnn {
    pub u_proj: Linear,
    pub v_proj: Linear,
    pub rpe: Rpe,
    pub out_proj: Linear,
    pub decay: f64,
    pub max_len: usize,
}

/// The last T − 1 values of v `[B, E, T − 1]`.
#[derive(Debug, Clone)]
pub struct TnnState {
    pub history: Tensor<3>,
}

impl BatchState for TnnState {
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        Some(TnnState { history: cat_batch_dim(states.into_iter().map(|s| s.history).collect()) })
    }

    fn split_batch(self) -> Vec<Self> {
        split_batch_dim(self.history).into_iter().map(|history| TnnState { history }).collect()
    }
}

impl MixerSpec for TnnConfig {
    const NAME: &'static str = "tnn";
    type Mixer = Tnn;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    fn small(d_model: usize) -> Self {
        Self::new(d_model).with_max_len(16).with_rpe_dim(8).with_rpe_layers(1)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> Tnn {
        let (d, e, r) = (self.d_model, self.expand * self.d_model, self.rpe_dim);
        assert!(self.max_len >= 2 && e >= 1, "tnn: max_len ≥ 2 and expand ≥ 1");
        let layer = |out: usize| RpeLayer { norm: LayerNormConfig::new(r).init(device), linear: LinearConfig::new(r, out).init(device) };
        Tnn {
            u_proj: LinearConfig::new(d, e).init(device),
            v_proj: LinearConfig::new(d, e).init(device),
            rpe: Rpe { pos_proj: LinearConfig::new(1, r).init(device), layers: (0..self.rpe_layers).map(|_| layer(r)).collect(), out: layer(e) },
            out_proj: LinearConfig::new(e, d).init(device),
            decay: self.decay,
            max_len: self.max_len,
        }
    }

    fn wants_mlp(&self) -> bool {
        true
    }
}

impl Tnn {
    /// The Toeplitz entries t_k = RPE(k) λ^k, `[E, T]`.
    fn entries(&self, like: &Tensor<3>) -> Tensor<2> {
        let t = self.max_len;
        let k = Tensor::<1, Int>::arange(0..t as i64, &like.device()).float().cast(like.dtype());
        let mut h = self.rpe.pos_proj.forward(k.clone().reshape([t, 1]));
        for layer in &self.rpe.layers {
            h = layer.forward(h);
        }
        let decay = k.mul_scalar(self.decay.ln()).exp(); // λ^k
        self.rpe.out.forward(h).transpose() * decay.unsqueeze_dim(0)
    }
}

impl SequenceMixer for Tnn {
    type State = TnnState;

    fn d_model(&self) -> usize {
        self.out_proj.weight.dims()[1]
    }

    fn init_state(&self, batch: usize, device: &Device) -> TnnState {
        let e = self.v_proj.weight.dims()[1];
        TnnState { history: Tensor::zeros([batch, e, self.max_len - 1], device) }
    }

    fn forward(&self, x: Tensor<3>, state: Option<TnnState>) -> (Tensor<3>, TnnState) {
        let u = silu(self.u_proj.forward(x.clone()));
        let v = silu(self.v_proj.forward(x)).swap_dims(1, 2); // [B, E, L]
        let (tv, history) = causal_conv_history(v.clone(), self.entries(&v), state.map(|s| s.history));
        (self.out_proj.forward(u * tv.swap_dims(1, 2)), TnnState { history })
    }

    fn step(&self, x: Tensor<2>, state: TnnState) -> (Tensor<2>, TnnState) {
        let (y, s) = self.forward(x.unsqueeze_dim(1), Some(state));
        (y.squeeze_dim(1), s)
    }
}
