//! Liquid-S4 (Hasani, Lechner, Wang, Chahine, Amini & Rus, "Liquid Structural State-Space
//! Models", ICLR 2023, §3): S4 whose state matrix also depends on the input, as in a liquid
//! time-constant network, x' = (A + B u) x + B u. Unrolled, the output gains input-correlation
//! terms; the paper's "PB" kernel keeps their Ā-free part. Checked against raminmh/liquid-s4
//! (`src/models/sequence/ss/s4.py`: the `liquid` degree loop over `us`, `dB`, `dCB`).
//!
//! ```text
//! y_t = (K ∗ u)_t + D u_t + Σ_{p=2}^{P} κ_p U_p[t]           (then S4's GLU(W GELU(y)))
//! U_1 = u,  U_p[t] = U_{p−1}[t] · U_{p−1}[t−1]                (inputs before the start are 0)
//! B̄⁽¹⁾ = Δ B / (1 − Δλ/2),  B̄⁽ᵖ⁾ = B̄⁽ᵖ⁻¹⁾ · Σ_n B̄⁽ᵖ⁻¹⁾_n,   κ_p = Σ_n C_n B̄⁽ᵖ⁾_n
//! ```
//!
//! with the sums over all N modes (the stored halves and their conjugates: 2 Re of the stored
//! sum), K the S4 kernel ([`super::s4`]) and P the `order` (the reference's `liquid` degree + 1).
//! U_P[t] reaches back P − 1 inputs, so the state is S4's plus the last P − 1 inputs.

use super::s4::{S4, S4Config, S4State};
use super::{BatchState, MixerSpec, SequenceMixer, cat_batch_dim, split_batch_dim};
use crate::complex::ComplexTensor;
use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

#[derive(Config, Debug)]
pub struct LiquidS4Config {
    pub d_model: usize,
    /// State size N of the real system.
    #[config(default = 64)]
    pub d_state: usize,
    /// The highest input-correlation order P (2: products of neighbouring inputs).
    #[config(default = 2)]
    pub order: usize,
    #[config(default = 0.001)]
    pub dt_min: f64,
    #[config(default = 0.1)]
    pub dt_max: f64,
}

#[derive(Module, Debug)]
pub struct LiquidS4 {
    pub s4: S4,
    pub order: usize,
}

/// S4's state and the last P − 1 inputs `[B, H, P − 1]`.
#[derive(Debug, Clone)]
pub struct LiquidS4State {
    pub s4: S4State,
    pub recent: Tensor<3>,
}

impl BatchState for LiquidS4State {
    fn cat_batch(states: Vec<Self>) -> Option<Self> {
        let (s4, recent): (Vec<_>, Vec<_>) = states.into_iter().map(|s| (s.s4, s.recent)).unzip();
        Some(LiquidS4State { s4: S4State::cat_batch(s4)?, recent: cat_batch_dim(recent) })
    }

    fn split_batch(self) -> Vec<Self> {
        self.s4.split_batch().into_iter().zip(split_batch_dim(self.recent)).map(|(s4, recent)| LiquidS4State { s4, recent }).collect()
    }
}

impl MixerSpec for LiquidS4Config {
    const NAME: &'static str = "liquid_s4";
    type Mixer = LiquidS4;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    fn small(d_model: usize) -> Self {
        Self::new(d_model).with_d_state(8).with_order(3)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> LiquidS4 {
        assert!(self.order >= 2, "liquid_s4: order must be at least 2 (1 is plain S4)");
        let s4 = S4Config::new(self.d_model).with_d_state(self.d_state).with_dt_min(self.dt_min).with_dt_max(self.dt_max);
        LiquidS4 { s4: s4.init(device), order: self.order }
    }
}

impl LiquidS4 {
    /// κ_p for p = 2 … P, each `[H]`.
    fn coefficients(&self) -> Vec<Tensor<1>> {
        let sys = self.s4.system();
        let [h, _] = sys.lambda.dims();
        let dt: Tensor<2> = sys.dt.clone().reshape([h, 1]);
        let denom = sys.lambda.clone().mul_real(dt.clone().mul_scalar(-0.5)).add_scalar(1.0);
        let mut b = self.s4.b().mul_real(dt) / denom; // B̄⁽¹⁾ [H, N/2]
        let full_sum = |z: &ComplexTensor<2>| z.re.clone().sum_dim(1).mul_scalar(2.0); // [H, 1], real
        (2..=self.order)
            .map(|_| {
                b = b.clone().mul_real(full_sum(&b));
                full_sum(&(self.s4.c() * b.clone())).reshape([h])
            })
            .collect()
    }

    /// Σ_p κ_p U_p over `u` `[B, H, L]` after the inputs `recent` `[B, H, P − 1]`, and the new
    /// last P − 1 inputs.
    fn correlations(&self, u: Tensor<3>, recent: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let [_, h, l] = u.dims();
        let keep = self.order - 1;
        let mut prod = Tensor::cat(vec![recent, u], 2); // U_1 over [P − 1 + L] positions
        let new_recent = prod.clone().narrow(2, l, keep);
        let mut y = prod.zeros_like().narrow(2, 0, l);
        for kappa in self.coefficients() {
            let n = prod.dims()[2];
            prod = prod.clone().narrow(2, 1, n - 1) * prod.narrow(2, 0, n - 1);
            let n = prod.dims()[2];
            y = y + prod.clone().narrow(2, n - l, l) * kappa.reshape([1, h, 1]);
        }
        (y, new_recent)
    }
}

impl SequenceMixer for LiquidS4 {
    type State = LiquidS4State;

    fn d_model(&self) -> usize {
        self.s4.d_model()
    }

    fn init_state(&self, batch: usize, device: &Device) -> LiquidS4State {
        let h = self.s4.d_model();
        LiquidS4State { s4: self.s4.init_state(batch, device), recent: Tensor::zeros([batch, h, self.order - 1], device) }
    }

    fn forward(&self, x: Tensor<3>, state: Option<LiquidS4State>) -> (Tensor<3>, LiquidS4State) {
        let u = x.swap_dims(1, 2);
        let [b, h, _] = u.dims();
        let (s4, recent) = match state {
            Some(s) => (Some(s.s4), s.recent),
            None => (None, Tensor::<3>::zeros([b, h, self.order - 1], &u.device()).cast(u.dtype())),
        };
        let (liquid, recent) = self.correlations(u.clone(), recent);
        let (y, s4) = self.s4.ssm_forward(u, s4);
        (self.s4.output((y + liquid).swap_dims(1, 2)), LiquidS4State { s4, recent })
    }

    fn step(&self, x: Tensor<2>, state: LiquidS4State) -> (Tensor<2>, LiquidS4State) {
        let (liquid, recent) = self.correlations(x.clone().unsqueeze_dim(2), state.recent);
        let (y, s4) = self.s4.ssm_step(x, state.s4);
        (self.s4.output(y + liquid.squeeze_dim(2)), LiquidS4State { s4, recent })
    }
}
