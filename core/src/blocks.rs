//! Residual blocks, the bidirectional wrapper and the stacked backbone every domain reuses.
//!
//! ```text
//! block(x)  = x' + channel(norm₂(x')),   x' = x + mixer(norm(x))     channel: none, MLP or MoE
//! bidir(x)  = mixer_f(x) ⊕ flip(mixer_b(flip(x)))      ⊕ = sum or average (Vision Mamba)
//! backbone  = norm_f ∘ blockₙ ∘ … ∘ block₁             one BlockConfig per layer
//! ```
//!
//! A backbone is data ([`crate::backbone::BackboneConfig`]): a list of per-layer block configs,
//! so hybrids (attention every k-th layer, MoE every other layer) are configurations.

use crate::layers::{GatedMlp, Moe, MoeConfig, Norm, NormKind};
use crate::mixers::{Mixer, MixerConfig, MixerState};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

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
    /// Hidden width of the gated MLP after the mixer (`None`: no MLP, as in Mamba).
    pub mlp_hidden: Option<usize>,
    /// A mixture-of-experts channel mixer after the mixer (instead of the MLP).
    #[serde(default)]
    pub moe: Option<MoeConfig>,
    /// Scan both directions with separate parameters (non-causal; no `step`).
    pub bidirectional: Option<Combine>,
}

fn default_eps() -> f64 {
    1e-5
}

impl BlockConfig {
    /// The mixer alone behind an RMSNorm (Mamba's block).
    pub fn new(mixer: MixerConfig) -> Self {
        Self { mixer, norm: NormKind::Rms, norm_eps: default_eps(), mlp_hidden: None, moe: None, bidirectional: None }
    }

    /// The family's canonical block: with a 4·d MLP when the family asks for one (a
    /// Transformer block), else the mixer alone.
    pub fn canonical(mixer: MixerConfig) -> Self {
        let mlp = mixer.wants_mlp().then(|| 4 * mixer.d_model());
        Self { mlp_hidden: mlp, ..Self::new(mixer) }
    }

    pub fn d_model(&self) -> usize {
        self.mixer.d_model()
    }

    pub fn init(&self, device: &Device) -> ResidualBlock {
        self.init_at(0, 1, device)
    }

    /// The block as layer `layer` of `n_layers` (see [`crate::mixers::MixerSpec::init_at`]).
    pub fn init_at(&self, layer: usize, n_layers: usize, device: &Device) -> ResidualBlock {
        let d = self.mixer.d_model();
        assert!(
            self.mlp_hidden.is_none() || self.moe.is_none(),
            "a block has one channel mixer: an MLP or a mixture of experts, not both"
        );
        let channel = self.mlp_hidden.is_some() || self.moe.is_some();
        ResidualBlock {
            norm: Norm::new(self.norm, d, self.norm_eps, device),
            mixer: self.mixer.init_at(layer, n_layers, device),
            mixer_rev: self.bidirectional.map(|_| self.mixer.init_at(layer, n_layers, device)),
            average: self.bidirectional == Some(Combine::Average),
            mlp_norm: channel.then(|| Norm::new(self.norm, d, self.norm_eps, device)),
            mlp: self.mlp_hidden.map(|h| GatedMlp::new(d, h, device)),
            moe: self.moe.as_ref().map(|m| m.init(d, device)),
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
    /// The norm before the channel mixer (MLP or MoE).
    pub mlp_norm: Option<Norm>,
    pub mlp: Option<GatedMlp>,
    pub moe: Option<Moe>,
}

impl ResidualBlock {
    pub fn is_causal(&self) -> bool {
        self.mixer_rev.is_none()
    }

    /// `x + channel(norm₂(x))`, and the MoE's load-balancing loss if the channel mixer is one.
    fn channel<const D: usize>(&self, x: Tensor<D>) -> (Tensor<D>, Option<Tensor<1>>) {
        let Some(n) = &self.mlp_norm else { return (x, None) };
        if let Some(m) = &self.mlp {
            return (x.clone() + m.forward(n.forward(x)), None);
        }
        match &self.moe {
            Some(m) => {
                let (y, aux) = m.forward(n.forward(x.clone()));
                (x + y, Some(aux))
            }
            None => (x, None),
        }
    }

    pub fn forward(&self, x: Tensor<3>, state: Option<MixerState>) -> (Tensor<3>, MixerState) {
        let (y, s, _) = self.forward_aux(x, state);
        (y, s)
    }

    /// [`ResidualBlock::forward`] plus the auxiliary loss of a MoE channel mixer.
    pub fn forward_aux(&self, x: Tensor<3>, state: Option<MixerState>) -> (Tensor<3>, MixerState, Option<Tensor<1>>) {
        let h = self.norm.forward(x.clone());
        let (mut y, state) = self.mixer.forward(h.clone(), state);
        if let Some(rev) = &self.mixer_rev {
            let (yb, _) = rev.forward(h.flip([1]), None);
            y = y + yb.flip([1]);
            if self.average {
                y = y.div_scalar(2.0);
            }
        }
        let (x, aux) = self.channel(x + y);
        (x, state, aux)
    }

    pub fn step(&self, x: Tensor<2>, state: MixerState) -> (Tensor<2>, MixerState) {
        assert!(self.is_causal(), "a bidirectional block is not causal: it has no recurrent step");
        let (y, state) = self.mixer.step(self.norm.forward(x.clone()), state);
        (self.channel(x + y).0, state)
    }
}

/// A stack of residual blocks and a final norm.
#[derive(Module, Debug)]
pub struct Backbone {
    pub blocks: Vec<ResidualBlock>,
    pub norm_f: Norm,
}

impl Backbone {
    /// `n_layers` copies of one block (see [`crate::backbone::BackboneConfig`] for mixed stacks).
    pub fn new(block: &BlockConfig, n_layers: usize, device: &Device) -> Self {
        crate::backbone::BackboneConfig::uniform(block.clone(), n_layers).init(device)
    }

    pub fn init_state(&self, batch: usize, device: &Device) -> Vec<MixerState> {
        self.blocks.iter().map(|b| b.mixer.init_state(batch, device)).collect()
    }

    /// `x` `[B, L, D]` → `[B, L, D]`, with per-layer states in and out.
    pub fn forward(&self, x: Tensor<3>, states: Option<Vec<MixerState>>) -> (Tensor<3>, Vec<MixerState>) {
        let (y, s, _) = self.forward_aux(x, states);
        (y, s)
    }

    /// [`Backbone::forward`] plus the summed auxiliary losses of its MoE layers (`None` without
    /// any); a training loss adds it.
    pub fn forward_aux(
        &self,
        mut x: Tensor<3>,
        states: Option<Vec<MixerState>>,
    ) -> (Tensor<3>, Vec<MixerState>, Option<Tensor<1>>) {
        let mut states_in = states.map(|s| s.into_iter().map(Some).collect::<Vec<_>>());
        let mut out = Vec::with_capacity(self.blocks.len());
        let mut aux: Option<Tensor<1>> = None;
        for (i, b) in self.blocks.iter().enumerate() {
            let s = states_in.as_mut().and_then(|v| v[i].take());
            let (y, s, a) = b.forward_aux(x, s);
            x = y;
            out.push(s);
            aux = match (aux, a) {
                (Some(t), Some(a)) => Some(t + a),
                (t, a) => t.or(a),
            };
        }
        (self.norm_f.forward(x), out, aux)
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
