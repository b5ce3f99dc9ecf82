//! Layers the mixers and blocks share, each defined once:
//!
//! - [`DepthwiseConv1d`] — causal depthwise convolution with its step state (the last K−1
//!   inputs), Mamba's and Mamba-2's short convolution;
//! - [`Norm`] (RMSNorm / LayerNorm) and [`GatedRmsNorm`] (Mamba-2's norm after the gate);
//! - [`GatedMlp`] — the GLU channel mixer of a Transformer-style block;
//! - [`Moe`] — a mixture-of-experts channel mixer: top-k router over gated-MLP experts with the
//!   Switch Transformer load-balancing loss;
//! - [`rotary`] — rotary position embedding (attention, Mega).

mod conv;
mod mlp;
mod moe;
mod norm;
mod rotary;

pub use conv::DepthwiseConv1d;
pub use mlp::GatedMlp;
pub use moe::{Moe, MoeConfig};
pub use norm::{GatedRmsNorm, Norm, NormKind};
pub use rotary::rotary;
