//! GSS, the Gated State Space layer (Mehta, Gupta, Cutkosky & Neyshabur, "Long Range Language
//! Modeling via Gated State Spaces", ICLR 2023, Fig. 1): a diagonal state space model run on a
//! narrow projection, inside a multiplicative gate. Checked against the paper's pseudocode and
//! the DSS layer it builds on (ag1988/dss, `src/models/sequence/ss/standalone/dss.py`).
//!
//! ```text
//! v  = GELU(W_v x)          [F = expand · D]    the gate
//! u  = GELU(W_u x)          [H = d_ssm]          the SSM's input (H < D: the SSM runs narrow)
//! y  = DSS(u)                                    diagonal SSM, then GELU, output linear, GLU
//! uc = W_uc y               [F]
//! o  = W_o (uc ⊙ v)         [D]
//! ```
//!
//! The diagonal SSM is this crate's S4D layer (ZOH, K[l] = 2 Re Σ C'_n e^{ΔA_n l}: DSS-exp's
//! kernel with S4D-Lin's initialisation), FFT convolution in parallel and the complex
//! recurrence in `step`; the paper's sizes are F = 4D, H = D/4.

use super::s4d::{S4d, S4dConfig, S4dState};
use super::{MixerSpec, SequenceMixer};
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Tensor};

#[derive(Config, Debug)]
pub struct GssConfig {
    pub d_model: usize,
    /// Gate width F = expand · d_model.
    #[config(default = 4)]
    pub expand: usize,
    /// SSM width H (`None`: d_model / 4, at least 1).
    #[config(default = "None")]
    pub d_ssm: Option<usize>,
    /// State size N of the diagonal SSM.
    #[config(default = 64)]
    pub d_state: usize,
}

/// A gated state space layer.
#[derive(Module, Debug)]
pub struct Gss {
    v_proj: Linear,
    u_proj: Linear,
    dss: S4d,
    uc_proj: Linear,
    o_proj: Linear,
}

impl MixerSpec for GssConfig {
    const NAME: &'static str = "gss";
    type Mixer = Gss;

    fn with_width(d_model: usize) -> Self {
        Self::new(d_model)
    }

    fn small(d_model: usize) -> Self {
        Self::new(d_model).with_d_state(16)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn init(&self, device: &Device) -> Gss {
        let (d, f) = (self.d_model, self.expand * self.d_model);
        let h = self.d_ssm.unwrap_or((d / 4).max(1));
        let lin = |i: usize, o: usize| LinearConfig::new(i, o).init(device);
        Gss {
            v_proj: lin(d, f),
            u_proj: lin(d, h),
            dss: S4dConfig::new(h).with_d_state(self.d_state).init(device),
            uc_proj: lin(h, f),
            o_proj: lin(f, d),
        }
    }
}

impl Gss {
    fn gate<const R: usize>(&self, x: Tensor<R>, y: Tensor<R>) -> Tensor<R> {
        let v = gelu(self.v_proj.forward(x));
        self.o_proj.forward(self.uc_proj.forward(y) * v)
    }
}

impl SequenceMixer for Gss {
    type State = S4dState;

    fn d_model(&self) -> usize {
        self.o_proj.weight.dims()[1]
    }

    fn init_state(&self, batch: usize, device: &Device) -> S4dState {
        self.dss.init_state(batch, device)
    }

    fn forward(&self, x: Tensor<3>, state: Option<S4dState>) -> (Tensor<3>, S4dState) {
        let (y, s) = self.dss.forward(gelu(self.u_proj.forward(x.clone())), state);
        (self.gate(x, y), s)
    }

    fn step(&self, x: Tensor<2>, state: S4dState) -> (Tensor<2>, S4dState) {
        let (y, s) = self.dss.step(gelu(self.u_proj.forward(x.clone())), state);
        (self.gate(x, y), s)
    }
}
