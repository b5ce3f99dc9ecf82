//! Backbones as data: a list of per-layer block configurations, and the layout language that
//! writes one on a command line.
//!
//! ```text
//! layout  = item ("," item)*                 repeated (cycled) to --depth layers when given
//! item    = MIXER ["+" CHANNEL] ["*" N]       CHANNEL = none | mlp | moe;  N = repeat count
//! ```
//!
//! Without `+CHANNEL` a layer takes its family's canonical block (attention: `+mlp`; the SSMs:
//! none). Examples at depth 8: `mamba` (Mamba), `attention` (a Transformer),
//! `mamba*3,attention` (attention every 4th layer), Jamba's period of 8 —
//! `mamba+mlp,mamba+moe,mamba+mlp,mamba+moe,attention+mlp,mamba+moe,mamba+mlp,mamba+moe`
//! (attention 1 in 8, MoE every other layer), MoE-Mamba `mamba+moe`, MambaFormer
//! `mamba,attention+none` (Mamba in place of the MLP, the first layer a Mamba).
//!
//! A layout may also be the name of a published hybrid ([`crate::hybrids`]: `jamba`, `griffin`,
//! …), which brings its own mixer options (Griffin's attention window).

use crate::blocks::{Backbone, BlockConfig};
use crate::layers::{MoeConfig, Norm, NormKind};
use crate::mixers::{MIXER_NAMES, MixerConfig, MixerError};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// A backbone: one block configuration per layer, then a final norm of the first layer's kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackboneConfig {
    pub layers: Vec<BlockConfig>,
}

impl BackboneConfig {
    /// `n` copies of `block`.
    pub fn uniform(block: BlockConfig, n: usize) -> Self {
        Self { layers: vec![block; n] }
    }

    pub fn d_model(&self) -> usize {
        self.layers.first().map_or(0, |b| b.d_model())
    }

    /// The layout string that describes this stack (runs of equal layers as `*N`).
    pub fn describe(&self) -> String {
        let items: Vec<String> = self.layers.iter().map(layer_item).collect();
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        while i < items.len() {
            let run = items[i..].iter().take_while(|x| **x == items[i]).count();
            out.push(if run > 1 { format!("{}*{run}", items[i]) } else { items[i].clone() });
            i += run;
        }
        out.join(",")
    }

    pub fn init(&self, device: &Device) -> Backbone {
        let first = self.layers.first().expect("a backbone needs at least one layer");
        let d = first.d_model();
        assert!(
            self.layers.iter().all(|b| b.d_model() == d),
            "every layer of a backbone has the same width ({d}): {}",
            self.describe()
        );
        Backbone {
            blocks: self.layers.iter().enumerate().map(|(i, b)| b.init_at(i, self.layers.len(), device)).collect(),
            norm_f: Norm::new(first.norm, d, first.norm_eps, device),
        }
    }
}

fn layer_item(b: &BlockConfig) -> String {
    let channel = match (b.moe.is_some(), b.mlp_hidden.is_some()) {
        (true, _) => "+moe",
        (false, true) => "+mlp",
        (false, false) if b.mixer.wants_mlp() => "+none",
        (false, false) => "",
    };
    format!("{}{channel}", b.mixer.name())
}

/// What a layout leaves open: the width, mixer options, the channel mixers' sizes, the norm.
#[derive(Debug, Clone)]
pub struct LayerTemplate {
    pub d_model: usize,
    /// `key=value` (every layer whose family has `key`) or `mixer.key=value` (that family only).
    pub mixer_options: Vec<String>,
    /// Hidden width of `+mlp` layers.
    pub mlp_hidden: usize,
    /// Shape of `+moe` layers.
    pub moe: MoeConfig,
    pub norm: NormKind,
}

impl LayerTemplate {
    /// Width `d_model`, MLP 4·d, MoE of 4 experts (top-2, hidden 2·d), RMSNorm, no options.
    pub fn new(d_model: usize) -> Self {
        Self {
            d_model,
            mixer_options: Vec::new(),
            mlp_hidden: 4 * d_model,
            moe: MoeConfig::new(4, 2, 2 * d_model),
            norm: NormKind::Rms,
        }
    }
}

fn layout_error(layout: &str, reason: impl Into<String>) -> MixerError {
    MixerError::Config(format!("layout '{layout}': {}", reason.into()))
}

/// Parses `layout` (see the module doc) into per-layer blocks; `depth` cycles the pattern to
/// that many layers.
pub fn parse_layout(layout: &str, depth: Option<usize>, t: &LayerTemplate) -> Result<BackboneConfig, MixerError> {
    if let Some(h) = crate::hybrids::hybrid(layout) {
        return h.backbone(depth, t);
    }
    let mut pattern = Vec::new();
    for item in layout.split(',').map(str::trim) {
        let (spec, count) = match item.split_once('*') {
            Some((s, n)) => {
                let n: usize =
                    n.trim().parse().map_err(|_| layout_error(layout, format!("bad repeat count in '{item}'")))?;
                (s.trim(), n)
            }
            None => (item, 1),
        };
        if spec.is_empty() || count == 0 {
            return Err(layout_error(layout, format!("empty item '{item}'")));
        }
        let (name, channel) = match spec.split_once('+') {
            Some((n, c)) => (n.trim(), Some(c.trim())),
            None => (spec, None),
        };
        let mixer = MixerConfig::by_name(name, t.d_model)?;
        let mut block = BlockConfig { norm: t.norm, ..BlockConfig::canonical(mixer) };
        match channel {
            None => block.mlp_hidden = block.mlp_hidden.map(|_| t.mlp_hidden),
            Some("none") => block.mlp_hidden = None,
            Some("mlp") => block.mlp_hidden = Some(t.mlp_hidden),
            Some("moe") => (block.mlp_hidden, block.moe) = (None, Some(t.moe.clone())),
            Some(other) => {
                return Err(layout_error(layout, format!("unknown channel mixer '{other}' (none, mlp, moe)")));
            }
        }
        pattern.extend(std::iter::repeat_n(block, count));
    }
    let n = depth.unwrap_or(pattern.len());
    if n == 0 {
        return Err(layout_error(layout, "a backbone needs at least one layer"));
    }
    let mut layers: Vec<BlockConfig> = (0..n).map(|i| pattern[i % pattern.len()].clone()).collect();
    apply_options(&mut layers, &t.mixer_options)?;
    Ok(BackboneConfig { layers })
}

/// Applies `key=value` / `mixer.key=value` options to every layer whose family takes them; an
/// option no layer takes is an error.
pub fn apply_options(layers: &mut [BlockConfig], options: &[String]) -> Result<(), MixerError> {
    for o in options {
        let (key, value) = o.split_once('=').ok_or_else(|| MixerError::OptionSyntax(o.clone()))?;
        let (only, key) = match key.trim().split_once('.') {
            Some((m, k)) if MIXER_NAMES.contains(&m) => (Some(m), k),
            _ => (None, key.trim()),
        };
        let mut used = false;
        for b in layers.iter_mut().filter(|b| only.is_none_or(|m| b.mixer.name() == m)) {
            if b.mixer.option_names().iter().any(|k| k == key) {
                b.mixer.set_option(key, value.trim())?;
                used = true;
            }
        }
        if !used {
            let first = layers.iter().find(|b| only.is_none_or(|m| b.mixer.name() == m));
            return Err(match first {
                Some(b) => MixerError::UnknownOption {
                    mixer: b.mixer.name(),
                    key: key.into(),
                    known: b.mixer.option_names().join(", "),
                },
                None => MixerError::Config(format!("option '{o}': no layer of that mixer")),
            });
        }
    }
    Ok(())
}
