//! The mixer seam: every sequence mixer family behind one trait, and one registry that turns the
//! list of families into the config, module and state enums the rest of the code uses.
//!
//! A mixer maps `[B, L, D] → [B, L, D]` in parallel ([`SequenceMixer::forward`], with an
//! optional initial state in and the final state out) and one token `[B, D] → [B, D]` at a time
//! ([`SequenceMixer::step`]), and the two agree: running `step` over a sequence gives
//! `forward`'s outputs and final state.
//!
//! **Adding a family** = one file `<family>.rs` (its config implementing [`MixerSpec`], its
//! module implementing [`SequenceMixer`], its state implementing [`BatchState`]) and one line in
//! the `registry!` call below. Names, `--mixer` parsing, `key=value` options, serialisation,
//! dispatch and the conformance suite (`core/tests/conformance.rs`) then cover it.

#[macro_use]
mod registry;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

registry! {
    mamba::Mamba(MambaConfig),
    mamba2::Mamba2(Mamba2Config),
    s4d::S4d(S4dConfig),
    attention::Attention(AttentionConfig),
    lru::Lru(LruConfig),
    hawk::Hawk(HawkConfig),
    hgrn::Hgrn(HgrnConfig),
    rwkv::Rwkv(RwkvConfig),
    gss::Gss(GssConfig),
    mega::Mega(MegaConfig),
    mamba3::Mamba3(Mamba3Config),
    dss::Dss(DssConfig),
    s5::S5(S5Config),
    long_conv::LongConv(LongConvConfig),
    sgconv::SgConv(SgConvConfig),
    hyena::Hyena(HyenaConfig),
    s4::S4(S4Config),
    h3::H3(H3Config),
    liquid_s4::LiquidS4(LiquidS4Config),
    tnn::Tnn(TnnConfig),
    ldstack::LdStack(LdStackConfig),
}

/// The name of the mixer the apps use when none is chosen (the registry's first).
pub const DEFAULT_MIXER: &str = MIXER_NAMES[0];

/// The families `ssm-compare` pits against each other when none are named: a selective SSM, a
/// structured (LTI, convolutional) SSM and the Transformer baseline.
pub const COMPARED_BY_DEFAULT: &[&str] = &[MambaConfig::NAME, S4dConfig::NAME, AttentionConfig::NAME];

/// A sequence mixer module: parallel form, recurrent form and their state.
pub trait SequenceMixer: Module + Debug {
    type State: BatchState;
    /// The width D of inputs and outputs.
    fn d_model(&self) -> usize;
    /// The state before any token, for `batch` sequences.
    fn init_state(&self, batch: usize, device: &Device) -> Self::State;
    /// Parallel form: `x` `[B, L, D]` from `state` (the initial state when `None`) → outputs
    /// `[B, L, D]` and the state after the last token.
    fn forward(&self, x: Tensor<3>, state: Option<Self::State>) -> (Tensor<3>, Self::State);
    /// Recurrent form: one token `x` `[B, D]`.
    fn step(&self, x: Tensor<2>, state: Self::State) -> (Tensor<2>, Self::State);
    /// The same recurrence in plain Rust, continuing from `state` (its batch of sequences), for
    /// fast inference ([`crate::plain`]); `None` (the default) keeps callers on `step`.
    fn plain_step(
        &self,
        _state: &Self::State,
        _precision: crate::plain::Precision,
    ) -> Option<Box<dyn crate::plain::PlainStep>> {
        None
    }
}

/// A mixer family's configuration: its registry name, defaults for a width, and the module.
/// Serialised as JSON (with `"mixer": NAME` added by [`MixerConfig`]); every field can be set
/// from the command line as `key=value`.
pub trait MixerSpec: Clone + Debug + Serialize + DeserializeOwned {
    /// The family's name (`--mixer NAME`, the `"mixer"` tag in saved configs).
    const NAME: &'static str;
    type Mixer: SequenceMixer;
    /// The default configuration at width `d_model`.
    fn with_width(d_model: usize) -> Self;
    fn d_model(&self) -> usize;
    fn init(&self, device: &Device) -> Self::Mixer;
    /// The module as layer `layer` (from 0) of a stack of `n_layers`, for families whose
    /// initialisation depends on depth (HGRN's forget-gate lower bounds, RWKV's mixing ratios);
    /// a lone mixer is layer 0 of 1.
    fn init_at(&self, _layer: usize, _n_layers: usize, device: &Device) -> Self::Mixer {
        self.init(device)
    }
    /// A small configuration for tests (defaults unless the family has sizes worth shrinking).
    fn small(d_model: usize) -> Self {
        Self::with_width(d_model)
    }
    /// Whether the family's canonical block follows the mixer with an MLP (a Transformer block).
    fn wants_mlp(&self) -> bool {
        false
    }
    /// Bytes of activations that grow with the square of the length, if any (attention scores),
    /// so callers can refuse sizes that would not fit.
    fn quadratic_bytes(&self, _batch: usize, _len: usize) -> Option<f64> {
        None
    }
}

/// A recurrent state that can be stacked from, and split into, single sequences.
pub trait BatchState: Clone + Debug + Sized {
    /// Stacks per-sequence states into one batch (batch dimension first); `None` when they
    /// cannot be stacked (e.g. attention caches of different lengths).
    fn cat_batch(states: Vec<Self>) -> Option<Self>;
    /// The state of each sequence of the batch, in order.
    fn split_batch(self) -> Vec<Self>;
}

/// Concatenates along the batch dimension.
pub fn cat_batch_dim<const D: usize>(ts: Vec<Tensor<D>>) -> Tensor<D> {
    Tensor::cat(ts, 0)
}

/// One tensor per batch element (each keeps a batch dimension of 1).
pub fn split_batch_dim<const D: usize>(t: Tensor<D>) -> Vec<Tensor<D>> {
    t.split(1, 0)
}

/// A state of two tensors (conv history and SSM state, keys and values, real and imaginary
/// parts): per-sequence pairs concatenated along the batch dimension.
pub fn cat_batch_pairs<const A: usize, const B: usize>(pairs: Vec<(Tensor<A>, Tensor<B>)>) -> (Tensor<A>, Tensor<B>) {
    let (a, b): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
    (cat_batch_dim(a), cat_batch_dim(b))
}

/// A two-tensor state split into one pair per batch element.
pub fn split_batch_pairs<const A: usize, const B: usize>(a: Tensor<A>, b: Tensor<B>) -> Vec<(Tensor<A>, Tensor<B>)> {
    split_batch_dim(a).into_iter().zip(split_batch_dim(b)).collect()
}

/// What can go wrong at the seam: a name, an option, or an input the mixer cannot take.
#[derive(Debug, thiserror::Error)]
pub enum MixerError {
    #[error("unknown mixer '{name}' (known: {known})")]
    UnknownMixer { name: String, known: String },
    #[error("{mixer}: unknown option '{key}' (options: {known})")]
    UnknownOption { mixer: &'static str, key: String, known: String },
    #[error("{mixer}: option {key}={value}: {reason}")]
    BadOption { mixer: &'static str, key: String, value: String, reason: String },
    #[error("mixer option '{0}' is not of the form key=value")]
    OptionSyntax(String),
    #[error("{mixer} mixer: input {dims:?} has width {got}, expected {expected}")]
    Width { mixer: &'static str, dims: Vec<usize>, got: usize, expected: usize },
    #[error("{mixer} mixer: empty sequence (input {dims:?})")]
    EmptySequence { mixer: &'static str, dims: Vec<usize> },
    #[error("{mixer} mixer given the state of a {state} mixer")]
    WrongState { mixer: &'static str, state: &'static str },
    #[error("a saved mixer configuration: {0}")]
    Config(String),
}

impl MixerConfig {
    /// The default configuration of the mixer called `name` for width `d_model`.
    pub fn by_name(name: &str, d_model: usize) -> Result<Self, MixerError> {
        Self::named(name, d_model, false)
    }

    /// A small configuration of `name` for tests ([`MixerSpec::small`]).
    pub fn small_by_name(name: &str, d_model: usize) -> Result<Self, MixerError> {
        Self::named(name, d_model, true)
    }

    /// `by_name` followed by `key=value` options (`d_state=32`).
    pub fn with_options(name: &str, d_model: usize, options: &[String]) -> Result<Self, MixerError> {
        let mut c = Self::by_name(name, d_model)?;
        for o in options {
            let (k, v) = o.split_once('=').ok_or_else(|| MixerError::OptionSyntax(o.clone()))?;
            c.set_option(k.trim(), v.trim())?;
        }
        Ok(c)
    }

    /// The names of the settings `set_option` takes (every field but the width).
    pub fn option_names(&self) -> Vec<String> {
        match self.to_json() {
            serde_json::Value::Object(m) => {
                m.keys().filter(|k| !["mixer", "d_model"].contains(&k.as_str())).cloned().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Sets one field from text: JSON (`32`, `0.5`, `true`, `null`, `{"Learned":{"max_len":512}}`)
    /// or, failing that, a bare string (`init=Inv`).
    pub fn set_option(&mut self, key: &str, value: &str) -> Result<(), MixerError> {
        let mixer = self.name();
        let known = self.option_names();
        if !known.iter().any(|k| k == key) {
            return Err(MixerError::UnknownOption { mixer, key: key.into(), known: known.join(", ") });
        }
        let mut json = self.to_json();
        let parsed = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.into()));
        json[key] = parsed;
        let bad = |reason: String| MixerError::BadOption { mixer, key: key.into(), value: value.into(), reason };
        *self = Self::from_json(json).map_err(bad)?;
        Ok(())
    }
}

impl Mixer {
    /// Checks that `x` `[B, L, D]` has this mixer's width and at least one step.
    pub fn check_input(&self, dims: [usize; 3]) -> Result<(), MixerError> {
        let (mixer, expected) = (self.name(), self.d_model());
        if dims[2] != expected {
            return Err(MixerError::Width { mixer, dims: dims.to_vec(), got: dims[2], expected });
        }
        if dims[1] == 0 {
            return Err(MixerError::EmptySequence { mixer, dims: dims.to_vec() });
        }
        Ok(())
    }

    /// Parallel form: `x` `[B, L, D]` from `state` (the initial state when `None`).
    ///
    /// # Panics
    /// On a wrong width, an empty sequence or another mixer's state ([`Mixer::try_forward`]
    /// returns these as errors).
    pub fn forward(&self, x: Tensor<3>, state: Option<MixerState>) -> (Tensor<3>, MixerState) {
        self.try_forward(x, state).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Recurrent form: one token `x` `[B, D]`.
    ///
    /// # Panics
    /// On a wrong width or another mixer's state ([`Mixer::try_step`]).
    pub fn step(&self, x: Tensor<2>, state: MixerState) -> (Tensor<2>, MixerState) {
        self.try_step(x, state).unwrap_or_else(|e| panic!("{e}"))
    }
}
