//! The mixer seam: every sequence mixer behind one config, one module enum and one state enum.
//!
//! A mixer maps `[B, L, D] → [B, L, D]` in parallel (`forward`, with an optional initial state
//! in and the final state out) and one token `[B, D] → [B, D]` at a time (`step`), and the two
//! agree: running `step` over a sequence gives `forward`'s outputs and final state.

pub mod attention;
pub mod mamba;
pub mod mamba2;
pub mod s4d;

pub use attention::{Attention, AttentionConfig, KvCache, Positions};
pub use mamba::{Mamba, MambaConfig, MambaState};
pub use mamba2::{Mamba2, Mamba2Config, Mamba2State};
pub use s4d::{S4d, S4dConfig, S4dInit, S4dState};

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// A serialisable mixer configuration, tagged by the mixer's name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "mixer", rename_all = "lowercase")]
pub enum MixerConfig {
    Mamba(MambaConfig),
    Mamba2(Mamba2Config),
    S4d(S4dConfig),
    Attention(AttentionConfig),
}

/// Names accepted by [`MixerConfig::by_name`].
pub const MIXER_NAMES: &[&str] = &["mamba", "mamba2", "s4d", "attention"];

impl MixerConfig {
    /// The default configuration of the mixer called `name` for width `d_model`.
    pub fn by_name(name: &str, d_model: usize) -> Result<Self, String> {
        match name {
            "mamba" => Ok(Self::Mamba(MambaConfig::new(d_model))),
            "mamba2" => Ok(Self::Mamba2(Mamba2Config::new(d_model))),
            "s4d" => Ok(Self::S4d(S4dConfig::new(d_model))),
            "attention" | "transformer" => Ok(Self::Attention(AttentionConfig::new(d_model))),
            other => Err(format!("unknown mixer '{other}' (known: {})", MIXER_NAMES.join(", "))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Mamba(_) => "mamba",
            Self::Mamba2(_) => "mamba2",
            Self::S4d(_) => "s4d",
            Self::Attention(_) => "attention",
        }
    }

    pub fn d_model(&self) -> usize {
        match self {
            Self::Mamba(c) => c.d_model,
            Self::Mamba2(c) => c.d_model,
            Self::S4d(c) => c.d_model,
            Self::Attention(c) => c.d_model,
        }
    }

    pub fn init(&self, device: &Device) -> Mixer {
        match self {
            Self::Mamba(c) => Mixer::Mamba(c.init(device)),
            Self::Mamba2(c) => Mixer::Mamba2(c.init(device)),
            Self::S4d(c) => Mixer::S4d(c.init(device)),
            Self::Attention(c) => Mixer::Attention(c.init(device)),
        }
    }
}

/// Any sequence mixer.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Mixer {
    Mamba(Mamba),
    Mamba2(Mamba2),
    S4d(S4d),
    Attention(Attention),
}

/// The recurrent state of a mixer.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum MixerState {
    Mamba(MambaState),
    Mamba2(Mamba2State),
    S4d(S4dState),
    Attention(KvCache),
}

impl MixerState {
    /// Stacks the states of separate sequences into one batch (batch dimension first), e.g. after
    /// prefilling prompts of different lengths one by one. `None` when the states cannot be
    /// stacked (different mixers, or attention caches of different lengths).
    pub fn cat_batch(states: Vec<MixerState>) -> Option<MixerState> {
        /// Each state's two parts (or `None` if one is of another kind), concatenated on dim 0.
        fn cat2<const A: usize, const B: usize>(
            states: Vec<MixerState>,
            parts: impl Fn(MixerState) -> Option<(Tensor<A>, Tensor<B>)>,
        ) -> Option<(Tensor<A>, Tensor<B>)> {
            let (a, b): (Vec<_>, Vec<_>) =
                states.into_iter().map(parts).collect::<Option<Vec<_>>>()?.into_iter().unzip();
            Some((Tensor::cat(a, 0), Tensor::cat(b, 0)))
        }
        match states.first()? {
            MixerState::Mamba(_) => cat2(states, |s| match s {
                MixerState::Mamba(m) => Some((m.conv, m.ssm)),
                _ => None,
            })
            .map(|(conv, ssm)| MixerState::Mamba(MambaState { conv, ssm })),
            MixerState::Mamba2(_) => cat2(states, |s| match s {
                MixerState::Mamba2(m) => Some((m.conv, m.ssm)),
                _ => None,
            })
            .map(|(conv, ssm)| MixerState::Mamba2(Mamba2State { conv, ssm })),
            MixerState::S4d(_) => cat2(states, |s| match s {
                MixerState::S4d(m) => {
                    let x = m.resolve();
                    Some((x.re, x.im))
                }
                _ => None,
            })
            .map(|(re, im)| MixerState::S4d(S4dState::Ready(crate::complex::ComplexTensor::new(re, im)))),
            MixerState::Attention(first) => {
                let len = first.len();
                cat2(states, |s| match s {
                    MixerState::Attention(c) if c.len() == len => Some((c.k, c.v)),
                    _ => None,
                })
                .map(|(k, v)| MixerState::Attention(KvCache { k, v }))
            }
        }
    }
}

fn wrong_state(mixer: &str, state: &MixerState) -> ! {
    panic!("{mixer} mixer given a state of another mixer: {state:?}")
}

impl Mixer {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Mamba(_) => "mamba",
            Self::Mamba2(_) => "mamba2",
            Self::S4d(_) => "s4d",
            Self::Attention(_) => "attention",
        }
    }

    /// The state before any token.
    pub fn init_state(&self, batch: usize, device: &Device) -> MixerState {
        match self {
            Self::Mamba(m) => MixerState::Mamba(m.init_state(batch, device)),
            Self::Mamba2(m) => MixerState::Mamba2(m.init_state(batch, device)),
            Self::S4d(m) => MixerState::S4d(m.init_state(batch, device)),
            Self::Attention(m) => MixerState::Attention(m.init_state(batch, device)),
        }
    }

    /// Parallel form: `x` `[B, L, D]` from `state` (the initial state when `None`).
    pub fn forward(&self, x: Tensor<3>, state: Option<MixerState>) -> (Tensor<3>, MixerState) {
        let d = x.dims()[2];
        assert!(x.dims()[1] > 0, "{} mixer: empty sequence {:?}", self.name(), x.dims());
        assert_eq!(
            d,
            self.d_model(),
            "{} mixer: input {:?} has width {d}, expected {}",
            self.name(),
            x.dims(),
            self.d_model()
        );
        match (self, state) {
            (Self::Mamba(m), None) => map(m.forward(x, None), MixerState::Mamba),
            (Self::Mamba(m), Some(MixerState::Mamba(s))) => map(m.forward(x, Some(s)), MixerState::Mamba),
            (Self::Mamba2(m), None) => map(m.forward(x, None), MixerState::Mamba2),
            (Self::Mamba2(m), Some(MixerState::Mamba2(s))) => map(m.forward(x, Some(s)), MixerState::Mamba2),
            (Self::S4d(m), None) => map(m.forward(x, None), MixerState::S4d),
            (Self::S4d(m), Some(MixerState::S4d(s))) => map(m.forward(x, Some(s)), MixerState::S4d),
            (Self::Attention(m), None) => map(m.forward(x, None), MixerState::Attention),
            (Self::Attention(m), Some(MixerState::Attention(s))) => map(m.forward(x, Some(s)), MixerState::Attention),
            (m, Some(s)) => wrong_state(m.name(), &s),
        }
    }

    /// Recurrent form: one token `x` `[B, D]`.
    pub fn step(&self, x: Tensor<2>, state: MixerState) -> (Tensor<2>, MixerState) {
        assert_eq!(x.dims()[1], self.d_model(), "{} mixer: token {:?} has the wrong width", self.name(), x.dims());
        match (self, state) {
            (Self::Mamba(m), MixerState::Mamba(s)) => map(m.step(x, s), MixerState::Mamba),
            (Self::Mamba2(m), MixerState::Mamba2(s)) => map(m.step(x, s), MixerState::Mamba2),
            (Self::S4d(m), MixerState::S4d(s)) => map(m.step(x, s), MixerState::S4d),
            (Self::Attention(m), MixerState::Attention(s)) => map(m.step(x, s), MixerState::Attention),
            (m, s) => wrong_state(m.name(), &s),
        }
    }

    pub fn d_model(&self) -> usize {
        match self {
            Self::Mamba(m) => m.out_proj.weight.dims()[1],
            Self::Mamba2(m) => m.out_proj.weight.dims()[1],
            Self::S4d(m) => m.d.dims()[0],
            Self::Attention(m) => m.out.weight.dims()[1],
        }
    }
}

fn map<T, S, const D: usize>(o: (Tensor<D>, S), f: impl FnOnce(S) -> T) -> (Tensor<D>, T) {
    (o.0, f(o.1))
}
