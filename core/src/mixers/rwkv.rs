//! RWKV-4 (Peng et al., "RWKV: Reinventing RNNs for the Transformer Era", 2023, §3, eq. 11–17):
//! a time-mix with the WKV operator, then a channel-mix, both fed by token shift. Checked
//! against BlinkDL/RWKV-LM `RWKV-v4/src/model.py` (`RWKV_TimeMix`, `RWKV_ChannelMix`, their
//! initialisation) and its `wkv_cuda.cu` (the numerically stable WKV).
//!
//! ```text
//! token shift:  mix(x, μ) = μ ⊙ x_t + (1 − μ) ⊙ x_{t−1}
//! time-mix:     r, k, v = W_r mix(x, μ_r), W_k mix(x, μ_k), W_v mix(x, μ_v)
//!               wkv_t = (Σ_{i<t} e^{−(t−1−i)w + k_i} v_i + e^{u + k_t} v_t)
//!                     / (Σ_{i<t} e^{−(t−1−i)w + k_i}     + e^{u + k_t}),     w = exp(time_decay)
//!               a = W_o (σ(r) ⊙ wkv)
//! channel-mix:  x' = LN(x + a);  r', k' = W_r' mix(x', μ_r'), W_k' mix(x', μ_k')
//!               c = σ(r') ⊙ W_v' max(k', 0)²
//! output:       a + c
//! ```
//!
//! The whole RWKV layer is one mixer: the block's residual adds `a + c` to the stream, and the
//! block's norm plays RWKV's `ln1`. The channel-mix's `ln2` sees `x + a` with x the block's
//! normalised input (RWKV-LM adds `a` to the raw stream before `ln2`). WKV is the core kernel
//! (`kernels::wkv`, carried as (a, b, p) with a running maximum exponent, hand-written backward).
//! Initialisation follows RWKV-LM by depth: time_decay −5 + 8(h/(C−1))^{0.7+1.3 r₀}, time_first
//! ln 0.3 + zigzag, μ = (i/C)^{1−l/n}; the projections keep burn's default init (RWKV-LM zeroes
//! W_k, W_r, W_o, which would leave a fresh layer silent).

use super::{BatchState, MixerSpec, SequenceMixer, cat_batch_pairs, split_batch_pairs};
use crate::kernels::wkv;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor, TensorData};

/// The empty WKV history's exponent p (e^p underflows to 0; finite, so p − q never is NaN).
const P_EMPTY: f64 = -1e38;

#[derive(Config, Debug)]
pub struct RwkvConfig {
    pub d_model: usize,
    /// Channel-mix hidden width (RWKV-4: 4 · d_model).
    #[config(default = "None")]
    pub d_ffn: Option<usize>,
    /// Range of the initial time_decay across channels (RWKV-LM: −5 … 3).
    #[config(default = -5.0)]
    pub decay_min: f64,
    #[config(default = 3.0)]
    pub decay_max: f64,
}

/// An RWKV-4 layer: time-mix and channel-mix.
#[derive(Module, Debug)]
pub struct Rwkv {
    time_decay: Param<Tensor<1>>,
    time_first: Param<Tensor<1>>,
    time_mix_k: Param<Tensor<1>>,
    time_mix_v: Param<Tensor<1>>,
    time_mix_r: Param<Tensor<1>>,
    key: Linear,
    value: Linear,
    receptance: Linear,
    output: Linear,
    ln2: LayerNorm,
    ffn_mix_k: Param<Tensor<1>>,
    ffn_mix_r: Param<Tensor<1>>,
    ffn_key: Linear,
    ffn_value: Linear,
    ffn_receptance: Linear,
}

/// The state: the last inputs of the two token shifts `[B, 2, D]` and the WKV sums (a, b, p)
/// `[B, 3, D]`.
#[derive(Debug, Clone)]
pub struct RwkvState {
    pub shift: Tensor<3>,
    pub wkv: Tensor<3>,
}

impl BatchState for RwkvState {
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        let (shift, wkv) = cat_batch_pairs(states.into_iter().map(|s| (s.shift, s.wkv)).collect());
        Some(RwkvState { shift, wkv })
    }

    fn split_batch(self) -> Vec<Self> {
        split_batch_pairs(self.shift, self.wkv).into_iter().map(|(shift, wkv)| RwkvState { shift, wkv }).collect()
    }
}

fn vector(v: Vec<f64>, device: &Device) -> Param<Tensor<1>> {
    let n = v.len();
    Param::from_tensor(Tensor::from_data(TensorData::new(v, [n]), device))
}

impl MixerSpec for RwkvConfig {
    const NAME: &'static str = "rwkv";
    type Mixer = Rwkv;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> Rwkv {
        self.init_at(0, 1, device)
    }

    fn init_at(&self, layer: usize, n_layers: usize, device: &Device) -> Rwkv {
        let (d, f) = (self.d_model, self.d_ffn.unwrap_or(4 * self.d_model));
        let r0 = if n_layers > 1 { layer as f64 / (n_layers - 1) as f64 } else { 0.0 };
        let r1 = 1.0 - layer as f64 / n_layers.max(1) as f64;
        let frac = |i: usize| i as f64 / d as f64;
        let span = self.decay_max - self.decay_min;
        let decay = (0..d).map(|h| self.decay_min + span * (h as f64 / (d.max(2) - 1) as f64).powf(0.7 + 1.3 * r0)).collect();
        let first = (0..d).map(|i| 0.3f64.ln() + 0.5 * (((i + 1) % 3) as f64 - 1.0)).collect();
        let mu = |p: f64, add: f64| vector((0..d).map(|i| frac(i).powf(p) + add).collect(), device);
        let lin = |i: usize, o: usize| LinearConfig::new(i, o).with_bias(false).init(device);
        Rwkv {
            time_decay: vector(decay, device),
            time_first: vector(first, device),
            time_mix_k: mu(r1, 0.0),
            time_mix_v: mu(r1, 0.3 * r0),
            time_mix_r: mu(0.5 * r1, 0.0),
            key: lin(d, d),
            value: lin(d, d),
            receptance: lin(d, d),
            output: lin(d, d),
            ln2: LayerNormConfig::new(d).init(device),
            ffn_mix_k: mu(r1, 0.0),
            ffn_mix_r: mu(r1, 0.0),
            ffn_key: lin(d, f),
            ffn_value: lin(f, d),
            ffn_receptance: lin(d, d),
        }
    }
}

/// μ ⊙ x + (1 − μ) ⊙ x_prev for `x`, `prev` `[B, L, D]`.
fn mix(x: &Tensor<3>, prev: &Tensor<3>, mu: &Param<Tensor<1>>) -> Tensor<3> {
    let d = mu.dims()[0];
    prev.clone() + (x.clone() - prev.clone()) * mu.val().reshape([1, 1, d])
}

/// Each position's previous input: `first` `[B, 1, D]` then `x` without its last step.
fn shifted(x: &Tensor<3>, first: Tensor<3>) -> Tensor<3> {
    let l = x.dims()[1];
    if l == 1 { first } else { Tensor::cat(vec![first, x.clone().narrow(1, 0, l - 1)], 1) }
}

impl Rwkv {
    /// a = W_o(σ(r) ⊙ wkv) and the new WKV state.
    fn time_mix(&self, x: &Tensor<3>, prev: Tensor<3>, s: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let xx = shifted(x, prev);
        let k = self.key.forward(mix(x, &xx, &self.time_mix_k));
        let v = self.value.forward(mix(x, &xx, &self.time_mix_v));
        let r = sigmoid(self.receptance.forward(mix(x, &xx, &self.time_mix_r)));
        let (y, state) = wkv(self.time_decay.val().exp(), self.time_first.val(), k, v, Some(s));
        (self.output.forward(r * y), state)
    }

    /// c = σ(W_r' mix) ⊙ W_v' relu(W_k' mix)².
    fn channel_mix(&self, x: &Tensor<3>, prev: Tensor<3>) -> Tensor<3> {
        let xx = shifted(x, prev);
        let k = relu(self.ffn_key.forward(mix(x, &xx, &self.ffn_mix_k))).powi_scalar(2);
        sigmoid(self.ffn_receptance.forward(mix(x, &xx, &self.ffn_mix_r))) * self.ffn_value.forward(k)
    }
}

impl SequenceMixer for Rwkv {
    type State = RwkvState;

    fn d_model(&self) -> usize {
        self.key.weight.dims()[0]
    }

    fn init_state(&self, batch: usize, device: &Device) -> RwkvState {
        let d = SequenceMixer::d_model(self);
        let sums = Tensor::zeros([batch, 2, d], device);
        let p = Tensor::full([batch, 1, d], P_EMPTY, device);
        RwkvState { shift: Tensor::zeros([batch, 2, d], device), wkv: Tensor::cat(vec![sums, p], 1) }
    }

    fn forward(&self, x: Tensor<3>, state: Option<RwkvState>) -> (Tensor<3>, RwkvState) {
        let [b, l, d] = x.dims();
        let s = state.unwrap_or_else(|| self.init_state(b, &x.device()));
        let (a, wkv) = self.time_mix(&x, s.shift.clone().narrow(1, 0, 1), s.wkv);
        let x2 = self.ln2.forward(x.clone() + a.clone());
        let c = self.channel_mix(&x2, s.shift.narrow(1, 1, 1));
        let last = |t: Tensor<3>| t.narrow(1, l - 1, 1).reshape([b, 1, d]);
        let shift = Tensor::cat(vec![last(x), last(x2)], 1);
        (a + c, RwkvState { shift, wkv })
    }

    fn step(&self, x: Tensor<2>, state: RwkvState) -> (Tensor<2>, RwkvState) {
        let (y, s) = self.forward(x.unsqueeze_dim(1), Some(state));
        (y.squeeze_dim(1), s)
    }
}
