//! Residual blocks, the bidirectional wrapper and the stacked backbone every domain reuses.
//!
//! ```text
//! block(x)  = x + mixer(norm(x))            (+ x + mlp(norm₂(x)) with the optional gated MLP)
//! bidir(x)  = mixer_f(x) ⊕ flip(mixer_b(flip(x)))      ⊕ = sum or average (Vision Mamba)
//! backbone  = norm_f ∘ blockₙ ∘ … ∘ block₁
//! ```

use crate::mixers::{Mixer, MixerConfig, MixerState};
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NormKind {
    Rms,
    Layer,
}

#[derive(Module, Debug)]
pub enum Norm {
    Rms(RmsNorm),
    Layer(LayerNorm),
}

impl Norm {
    pub fn new(kind: NormKind, d: usize, eps: f64, device: &Device) -> Self {
        match kind {
            NormKind::Rms => Norm::Rms(RmsNormConfig::new(d).with_epsilon(eps).init(device)),
            NormKind::Layer => Norm::Layer(LayerNormConfig::new(d).with_epsilon(eps).init(device)),
        }
    }
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Norm::Rms(n) => n.forward(x),
            Norm::Layer(n) => n.forward(x),
        }
    }
}

/// down(silu(gate(x)) ⊙ up(x))
#[derive(Module, Debug)]
pub struct GatedMlp {
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

impl GatedMlp {
    pub fn new(d: usize, hidden: usize, device: &Device) -> Self {
        let lin = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        Self { gate: lin(d, hidden), up: lin(d, hidden), down: lin(hidden, d) }
    }
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.down.forward(silu(self.gate.forward(x.clone())) * self.up.forward(x))
    }
}

/// How the two directions of a bidirectional mixer are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Combine {
    Sum,
    Average,
}

/// One residual block's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockConfig {
    pub mixer: MixerConfig,
    pub norm: NormKind,
    /// The norms' ε (1e-5 unless a checkpoint says otherwise).
    #[serde(default = "default_eps")]
    pub norm_eps: f64,
    /// Hidden width of the gated MLP (`None`: no MLP, as in Mamba).
    pub mlp_hidden: Option<usize>,
    /// Scan both directions with separate parameters (non-causal; no `step`).
    pub bidirectional: Option<Combine>,
}

fn default_eps() -> f64 {
    1e-5
}

impl BlockConfig {
    pub fn new(mixer: MixerConfig) -> Self {
        Self { mixer, norm: NormKind::Rms, norm_eps: default_eps(), mlp_hidden: None, bidirectional: None }
    }

    pub fn init(&self, device: &Device) -> ResidualBlock {
        let d = self.mixer.d_model();
        ResidualBlock {
            norm: Norm::new(self.norm, d, self.norm_eps, device),
            mixer: self.mixer.init(device),
            mixer_rev: self.bidirectional.map(|_| self.mixer.init(device)),
            average: self.bidirectional == Some(Combine::Average),
            mlp_norm: self.mlp_hidden.map(|_| Norm::new(self.norm, d, self.norm_eps, device)),
            mlp: self.mlp_hidden.map(|h| GatedMlp::new(d, h, device)),
        }
    }
}

#[derive(Module, Debug)]
pub struct ResidualBlock {
    pub norm: Norm,
    pub mixer: Mixer,
    /// The backward-direction mixer of a bidirectional block.
    pub mixer_rev: Option<Mixer>,
    pub average: bool,
    pub mlp_norm: Option<Norm>,
    pub mlp: Option<GatedMlp>,
}

impl ResidualBlock {
    pub fn is_causal(&self) -> bool {
        self.mixer_rev.is_none()
    }

    pub fn forward(&self, x: Tensor<3>, state: Option<MixerState>) -> (Tensor<3>, MixerState) {
        let h = self.norm.forward(x.clone());
        let (mut y, state) = self.mixer.forward(h.clone(), state);
        if let Some(rev) = &self.mixer_rev {
            let (yb, _) = rev.forward(h.flip([1]), None);
            y = y + yb.flip([1]);
            if self.average {
                y = y.div_scalar(2.0);
            }
        }
        let mut x = x + y;
        if let (Some(n), Some(m)) = (&self.mlp_norm, &self.mlp) {
            x = x.clone() + m.forward(n.forward(x));
        }
        (x, state)
    }

    pub fn step(&self, x: Tensor<2>, state: MixerState) -> (Tensor<2>, MixerState) {
        assert!(self.is_causal(), "a bidirectional block is not causal: it has no recurrent step");
        let (y, state) = self.mixer.step(self.norm.forward(x.clone()), state);
        let mut x = x + y;
        if let (Some(n), Some(m)) = (&self.mlp_norm, &self.mlp) {
            x = x.clone() + m.forward(n.forward(x));
        }
        (x, state)
    }
}

/// A stack of residual blocks and a final norm.
#[derive(Module, Debug)]
pub struct Backbone {
    pub blocks: Vec<ResidualBlock>,
    pub norm_f: Norm,
}

impl Backbone {
    pub fn new(block: &BlockConfig, n_layers: usize, device: &Device) -> Self {
        Self {
            blocks: (0..n_layers).map(|_| block.init(device)).collect(),
            norm_f: Norm::new(block.norm, block.mixer.d_model(), block.norm_eps, device),
        }
    }

    pub fn init_state(&self, batch: usize, device: &Device) -> Vec<MixerState> {
        self.blocks.iter().map(|b| b.mixer.init_state(batch, device)).collect()
    }

    /// `x` `[B, L, D]` → `[B, L, D]`, with per-layer states in and out.
    pub fn forward(&self, mut x: Tensor<3>, states: Option<Vec<MixerState>>) -> (Tensor<3>, Vec<MixerState>) {
        let mut states_in = states.map(|s| s.into_iter().map(Some).collect::<Vec<_>>());
        let mut out = Vec::with_capacity(self.blocks.len());
        for (i, b) in self.blocks.iter().enumerate() {
            let s = states_in.as_mut().and_then(|v| v[i].take());
            let (y, s) = b.forward(x, s);
            x = y;
            out.push(s);
        }
        (self.norm_f.forward(x), out)
    }

    pub fn step(&self, mut x: Tensor<2>, states: Vec<MixerState>) -> (Tensor<2>, Vec<MixerState>) {
        let mut out = Vec::with_capacity(states.len());
        for (b, s) in self.blocks.iter().zip(states) {
            let (y, s) = b.step(x, s);
            x = y;
            out.push(s);
        }
        (self.norm_f.forward(x), out)
    }
}
