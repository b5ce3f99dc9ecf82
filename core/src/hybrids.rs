//! Published hybrids as backbone configurations: each is a layout (see [`crate::backbone`]) and
//! mixer options, with no code of its own. Any `--layout` takes these names.
//!
//! | name | layout (period) | paper |
//! |---|---|---|
//! | `jamba` | Mamba ×7 + attention (4th of 8), MoE every other layer | Lieber et al. 2024, §2 |
//! | `mambaformer` | Mamba first, then attention (no positions) and Mamba alternating | Park et al. 2024, §5 |
//! | `spade` | S4 (here S4D) first, local attention after | Zuo et al. 2022, §3 |
//! | `moe-mamba` | every Mamba layer followed by a switch (top-1) MoE | Pióro et al. 2024, §3 |
//! | `blackmamba` | the same alternation of Mamba and routed (top-1) MLPs | Anthony et al. 2024, §3 |
//! | `griffin` | two Hawk (RG-LRU) blocks, then local attention (window 1024); MLP in every block | De et al. 2024, §2 |
//!
//! MambaByte (Wang et al. 2024) is a plain Mamba stack on bytes: `ssm-language --tokenizer byte`.

use crate::backbone::{BackboneConfig, LayerTemplate, apply_options, parse_layout};
use crate::mixers::{AttentionConfig, HawkConfig, MambaConfig, MixerError, MixerSpec, S4dConfig};

/// A named hybrid.
#[derive(Debug, Clone, Copy)]
pub struct Hybrid {
    pub name: &'static str,
    /// One line: what it is and where it comes from.
    pub doc: &'static str,
    /// Depth when none is asked for.
    pub default_depth: usize,
    layout: fn(usize) -> String,
    options: fn() -> Vec<String>,
    /// Experts per token of its MoE layers, when the paper fixes it.
    top_k: Option<usize>,
}

fn none() -> Vec<String> {
    Vec::new()
}

const M: &str = MambaConfig::NAME;
const A: &str = AttentionConfig::NAME;

/// The named hybrids.
pub const HYBRIDS: &[Hybrid] = &[
    Hybrid {
        name: "jamba",
        doc: "Jamba (Lieber et al. 2024): attention 1 layer in 8, MoE every other layer",
        default_depth: 8,
        layout: |_| format!("{M}+mlp,{M}+moe,{M}+mlp,{M}+moe,{A}+mlp,{M}+moe,{M}+mlp,{M}+moe"),
        options: none,
        top_k: None,
    },
    Hybrid {
        name: "mambaformer",
        doc: "MambaFormer (Park et al. 2024): a Mamba layer instead of positional encoding, then attention and Mamba alternating",
        default_depth: 5,
        layout: |_| format!("{M},{A}+none"),
        options: || vec![format!("{A}.positions=Absent")],
        top_k: None,
    },
    Hybrid {
        name: "spade",
        doc: "SPADE (Zuo et al. 2022): a state space layer at the bottom (S4D here), local attention above",
        default_depth: 4,
        layout: |depth| format!("{},{A}*{}", S4dConfig::NAME, depth.max(2) - 1),
        options: || vec![format!("{A}.window=128")],
        top_k: None,
    },
    Hybrid {
        name: "moe-mamba",
        doc: "MoE-Mamba (Pióro et al. 2024): every Mamba layer followed by a switch (top-1) mixture of experts",
        default_depth: 4,
        layout: |_| format!("{M}+moe"),
        options: none,
        top_k: Some(1),
    },
    Hybrid {
        name: "blackmamba",
        doc: "BlackMamba (Anthony et al. 2024): Mamba blocks alternating with routed (top-1) MLP experts",
        default_depth: 4,
        layout: |_| format!("{M}+moe"),
        options: none,
        top_k: Some(1),
    },
    Hybrid {
        name: "griffin",
        doc: "Griffin (De et al. 2024): two RG-LRU recurrent blocks then one local-attention block (window 1024), MLPs throughout",
        default_depth: 6,
        layout: |_| format!("{h}+mlp,{h}+mlp,{A}+mlp", h = HawkConfig::NAME),
        options: || vec![format!("{A}.window=1024")],
        top_k: None,
    },
];

/// The hybrid called `name`, if there is one.
pub fn hybrid(name: &str) -> Option<&'static Hybrid> {
    HYBRIDS.iter().find(|h| h.name == name.trim())
}

impl Hybrid {
    /// Its layout at `depth` layers (its default when `None`).
    pub fn layout(&self, depth: Option<usize>) -> String {
        (self.layout)(depth.unwrap_or(self.default_depth))
    }

    /// The backbone at `depth`, with the hybrid's options applied before the template's own
    /// (so a user's `--mixer-opt attention.window=256` overrides Griffin's 1024). A hybrid
    /// option for a family the stack lacks at this depth (Griffin's window at depth 2) is
    /// skipped; the template's options stay strict.
    pub fn backbone(&self, depth: Option<usize>, t: &LayerTemplate) -> Result<BackboneConfig, MixerError> {
        let depth = depth.unwrap_or(self.default_depth);
        let mut bare = t.clone();
        bare.mixer_options = Vec::new();
        if let Some(k) = self.top_k {
            bare.moe.top_k = k;
        }
        let mut cfg = parse_layout(&self.layout(Some(depth)), Some(depth), &bare)?;
        for o in (self.options)() {
            match apply_options(&mut cfg.layers, std::slice::from_ref(&o)) {
                Ok(()) | Err(MixerError::Config(_)) => {}
                Err(e) => return Err(e),
            }
        }
        apply_options(&mut cfg.layers, &t.mixer_options)?;
        Ok(cfg)
    }
}
