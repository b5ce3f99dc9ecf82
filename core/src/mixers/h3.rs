//! H3 (Fu, Dao, Saab, Thomas, Rudra & Ré, "Hungry Hungry Hippos: Towards Language Modeling with
//! State Space Models", ICLR 2023, §3): two SSMs with multiplicative interactions, built to
//! remember a token (shift SSM) and compare it with later ones (diagonal SSM). Checked against
//! HazyResearch/H3 (`src/models/ssm/h3.py`: `H3`, `ssm_k_kernel` in `mode='shift'`, the
//! `head_dim` outer product; the diagonal kernel is S4D's).
//!
//! ```text
//! Q, K, V = W_Q u, W_K u, W_V u
//! K̄ = SSM_shift(K):  A = shift matrix, B = e₁ → kernel K_shift[l] = C_l (l < N): the last N inputs
//! per head (width d_h):  KV = K̄ ⊗ V  (d_h × d_h channels)
//! Y = SSM_diag(KV)    (S4D, zero-order hold, N/2 complex modes per channel)
//! O_i = Σ_j Q_j Y_ji   per head;   out = W_O O
//! ```
//!
//! With d_h = 1 (the default, as the reference) the interactions are element-wise:
//! out = W_O (Q ⊙ SSM_diag(SSM_shift(K) ⊙ V)). State: the shift SSM's last N − 1 inputs and the
//! diagonal SSM's modes. The shift kernel's first tap plays the role of the reference's separate
//! D term of that SSM.

use super::s4d::{DiagSsmParams, S4dConfig, S4dState};
use super::{BatchState, MixerSpec, SequenceMixer, cat_batch_dim, split_batch_dim};
use crate::kernels::causal_conv_history;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor};

#[derive(Config, Debug)]
pub struct H3Config {
    pub d_model: usize,
    /// State size N of both SSMs (shift taps; the diagonal SSM keeps N/2 complex modes).
    #[config(default = 64)]
    pub d_state: usize,
    /// Head width d_h (d_model must be a multiple of it).
    #[config(default = 1)]
    pub head_dim: usize,
    #[config(default = 0.001)]
    pub dt_min: f64,
    #[config(default = 0.1)]
    pub dt_max: f64,
}

#[derive(Module, Debug)]
pub struct H3 {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    /// The shift SSM's C `[H, N]` (its kernel).
    pub shift_c: Param<Tensor<2>>,
    /// The diagonal SSM over H · d_h channels.
    pub ssm: DiagSsmParams,
    pub out_proj: Linear,
    pub head_dim: usize,
}

/// The shift SSM's input history `[B, H, N − 1]` and the diagonal SSM's state.
#[derive(Debug, Clone)]
pub struct H3State {
    pub shift: Tensor<3>,
    pub diag: S4dState,
}

impl BatchState for H3State {
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        let (shift, diag): (Vec<_>, Vec<_>) = states.into_iter().map(|s| (s.shift, s.diag)).unzip();
        Some(H3State { shift: cat_batch_dim(shift), diag: S4dState::cat_batch(diag)? })
    }

    fn split_batch(self) -> Vec<Self> {
        split_batch_dim(self.shift)
            .into_iter()
            .zip(self.diag.split_batch())
            .map(|(shift, diag)| H3State { shift, diag })
            .collect()
    }
}

impl MixerSpec for H3Config {
    const NAME: &'static str = "h3";
    type Mixer = H3;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    fn small(d_model: usize) -> Self {
        Self::new(d_model).with_d_state(8).with_head_dim(2)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> H3 {
        let (h, dh, n) = (self.d_model, self.head_dim, self.d_state);
        assert!(dh >= 1 && h % dh == 0, "h3: d_model {h} is not a multiple of head_dim {dh}");
        assert!(n >= 2, "h3: d_state must be at least 2");
        let lin = || LinearConfig::new(h, h).init(device);
        let diag = S4dConfig::new(h).with_d_state(n).with_dt_min(self.dt_min).with_dt_max(self.dt_max);
        H3 {
            q_proj: lin(),
            k_proj: lin(),
            v_proj: lin(),
            shift_c: Param::from_tensor(Tensor::random([h, n], Distribution::Normal(0.0, (1.0 / n as f64).sqrt()), device)),
            ssm: diag.init_ssm(h * dh, device),
            out_proj: lin(),
            head_dim: dh,
        }
    }
}

impl H3 {
    /// KV = K̄ ⊗ V per head, rows `[M, H]` twice → `[M, H · d_h]` (KV_ji = K̄_j V_i).
    fn outer(&self, k: Tensor<2>, v: Tensor<2>) -> Tensor<2> {
        let ([m, h], dh) = (k.dims(), self.head_dim);
        let kv = k.reshape([m, h / dh, dh, 1]) * v.reshape([m, h / dh, 1, dh]);
        kv.reshape([m, h * dh])
    }

    /// O_i = Σ_j Q_j Y_ji per head: `[M, H]` and `[M, H · d_h]` → `[M, H]`.
    fn contract(&self, q: Tensor<2>, y: Tensor<2>) -> Tensor<2> {
        let ([m, h], dh) = (q.dims(), self.head_dim);
        (q.reshape([m, h / dh, dh, 1]) * y.reshape([m, h / dh, dh, dh])).sum_dim(2).reshape([m, h])
    }
}

impl SequenceMixer for H3 {
    type State = H3State;

    fn d_model(&self) -> usize {
        self.shift_c.dims()[0]
    }

    fn init_state(&self, batch: usize, device: &Device) -> H3State {
        let [h, n] = self.shift_c.dims();
        H3State { shift: Tensor::zeros([batch, h, n - 1], device), diag: self.ssm.ssm().init_state(batch) }
    }

    fn forward(&self, x: Tensor<3>, state: Option<H3State>) -> (Tensor<3>, H3State) {
        let [b, l, h] = x.dims();
        let rows = |t: Tensor<3>| t.reshape([b * l, h]);
        let (q, k, v) = (self.q_proj.forward(x.clone()), self.k_proj.forward(x.clone()), self.v_proj.forward(x));
        let (hist, diag) = match state {
            Some(s) => (Some(s.shift), Some(s.diag)),
            None => (None, None),
        };
        let (k_shift, shift) = causal_conv_history(k.swap_dims(1, 2), self.shift_c.val(), hist);
        let kv = self.outer(rows(k_shift.swap_dims(1, 2)), rows(v));
        let hd = kv.dims()[1];
        let (y, diag) = self.ssm.ssm().forward(kv.reshape([b, l, hd]).swap_dims(1, 2), diag);
        let o = self.contract(rows(q), y.swap_dims(1, 2).reshape([b * l, hd]));
        (self.out_proj.forward(o.reshape([b, l, h])), H3State { shift, diag })
    }

    fn step(&self, x: Tensor<2>, state: H3State) -> (Tensor<2>, H3State) {
        let (q, k, v) = (self.q_proj.forward(x.clone()), self.k_proj.forward(x.clone()), self.v_proj.forward(x));
        let (k_shift, shift) = causal_conv_history(k.unsqueeze_dim(2), self.shift_c.val(), Some(state.shift));
        let kv = self.outer(k_shift.squeeze_dim(2), v);
        let (y, diag) = self.ssm.ssm().step(kv, state.diag);
        (self.out_proj.forward(self.contract(q, y)), H3State { shift, diag })
    }
}
