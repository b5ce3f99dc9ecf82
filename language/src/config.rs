//! Language-model configuration, and its translation from and to the `config.json` of
//! HuggingFace (`MambaForCausalLM`, `Mamba2ForCausalLM`) and of the original state-spaces
//! checkpoints (`d_model`, `n_layer`, `ssm_cfg`). Every size comes from the file.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use ssm_core::backbone::BackboneConfig;
use ssm_core::blocks::BlockConfig;
use ssm_core::error::InvalidConfig;
use ssm_core::layers::NormKind;
use ssm_core::mixers::{Mamba2Config, MambaConfig, MixerConfig};

/// A language model: embedding → residual blocks (one config per layer) → norm_f → lm_head.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LmConfig {
    pub vocab_size: usize,
    pub backbone: BackboneConfig,
    /// lm_head shares the embedding matrix.
    pub tie_embeddings: bool,
    #[serde(default)]
    pub bos_token_id: Option<i64>,
    #[serde(default)]
    pub eos_token_id: Option<i64>,
    #[serde(default)]
    pub pad_token_id: Option<i64>,
}

fn get<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| v.get(*k).filter(|x| !x.is_null()))
}

fn usize_of(v: &Value, keys: &[&str]) -> Result<usize, InvalidConfig> {
    get(v, keys)
        .and_then(Value::as_u64)
        .map(|x| x as usize)
        .ok_or_else(|| InvalidConfig(format!("missing or non-integer '{}'", keys[0])))
}

fn opt_usize(v: &Value, keys: &[&str]) -> Option<usize> {
    get(v, keys).and_then(Value::as_u64).map(|x| x as usize)
}

fn opt_f64(v: &Value, keys: &[&str]) -> Option<f64> {
    get(v, keys).and_then(Value::as_f64)
}

fn opt_bool(v: &Value, keys: &[&str]) -> Option<bool> {
    get(v, keys).and_then(Value::as_bool)
}

fn token_id(v: &Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::Array(a) => a.first().and_then(Value::as_i64),
        _ => None,
    }
}

impl LmConfig {
    pub fn d_model(&self) -> usize {
        self.backbone.d_model()
    }

    /// The block every layer shares, when they all do (`None` for a hybrid).
    pub fn uniform_block(&self) -> Option<&BlockConfig> {
        let first = self.backbone.layers.first()?;
        let same = |b: &BlockConfig| serde_json::to_value(b).ok() == serde_json::to_value(first).ok();
        self.backbone.layers.iter().all(same).then_some(first)
    }

    /// Reads a `config.json`: this crate's own (`"ssm"` key), HuggingFace's (`model_type`
    /// `mamba` / `mamba2`) or state-spaces' (`d_model`, `n_layer`, `ssm_cfg`).
    pub fn from_json(v: &Value) -> Result<Self, InvalidConfig> {
        if let Some(own) = v.get("ssm") {
            let mut own = own.clone();
            // Written before backbones were lists of layers: `n_layers` copies of `block`.
            if let (Some(o), None) = (own.as_object_mut(), v["ssm"].get("backbone")) {
                let n = o.remove("n_layers").and_then(|n| n.as_u64()).unwrap_or(0) as usize;
                let block = o.remove("block").unwrap_or(Value::Null);
                o.insert("backbone".into(), json!({ "layers": vec![block; n] }));
            }
            return serde_json::from_value(own).map_err(|e| InvalidConfig(format!("'ssm' section: {e}")));
        }
        let model_type = v.get("model_type").and_then(Value::as_str);
        let ssm_cfg = v.get("ssm_cfg").cloned().unwrap_or(json!({}));
        let layer = ssm_cfg.get("layer").and_then(Value::as_str);
        let is_state_spaces = v.get("d_model").is_some() && v.get("n_layer").is_some();
        let (mamba, mamba2) = (MambaConfig::HF_MODEL_TYPE, Mamba2Config::HF_MODEL_TYPE);
        let is_mamba2 = model_type == Some(mamba2) || layer == Some("Mamba2");
        if model_type.is_some_and(|t| t != mamba && t != mamba2) {
            return Err(InvalidConfig(format!("model_type '{}' is not {mamba} or {mamba2}", model_type.unwrap())));
        }
        let d_model = usize_of(v, &["hidden_size", "d_model"])?;
        let n_layers = usize_of(v, &["num_hidden_layers", "n_layer"])?;
        let mut vocab = usize_of(v, &["vocab_size"])?;
        if d_model == 0 || n_layers == 0 || vocab == 0 {
            return Err(InvalidConfig(format!("a model of width {d_model}, {n_layers} layers, vocabulary {vocab}")));
        }
        if is_state_spaces {
            // mamba_ssm pads the vocabulary to a multiple (8 by default) and stores the padded matrix.
            let m = opt_usize(v, &["pad_vocab_size_multiple"]).unwrap_or(8).max(1);
            vocab = vocab.div_ceil(m) * m;
        }
        let s = |keys: &[&str]| opt_usize(v, keys).or_else(|| opt_usize(&ssm_cfg, keys));
        let f = |keys: &[&str]| opt_f64(v, keys).or_else(|| opt_f64(&ssm_cfg, keys));
        let b = |keys: &[&str]| opt_bool(v, keys).or_else(|| opt_bool(&ssm_cfg, keys));
        let expand = s(&["expand"]).unwrap_or(2);
        let eps = f(&["layer_norm_epsilon", "norm_epsilon"]).unwrap_or(1e-5);
        let mixer = if is_mamba2 {
            let d_inner = s(&["intermediate_size"]).unwrap_or(expand * d_model);
            let head_dim = s(&["head_dim", "headdim"]).unwrap_or(64);
            if let Some(h) = s(&["num_heads"])
                && h * head_dim != d_inner
            {
                return Err(InvalidConfig(format!(
                    "num_heads {h} × head_dim {head_dim} ≠ intermediate size {d_inner}"
                )));
            }
            let mut c = Mamba2Config::new(d_model)
                .with_d_state(s(&["state_size", "d_state"]).unwrap_or(128))
                .with_d_conv(s(&["conv_kernel", "d_conv"]).unwrap_or(4))
                .with_expand(d_inner / d_model)
                .with_head_dim(head_dim)
                .with_n_groups(s(&["n_groups", "ngroups"]).unwrap_or(1))
                .with_chunk_size(s(&["chunk_size"]).unwrap_or(256))
                .with_conv_bias(b(&["use_conv_bias", "conv_bias"]).unwrap_or(true))
                .with_bias(b(&["use_bias", "bias"]).unwrap_or(false))
                .with_norm_eps(eps);
            if d_inner % d_model != 0 {
                return Err(InvalidConfig(format!(
                    "intermediate size {d_inner} is not a multiple of hidden size {d_model}"
                )));
            }
            if let Some(Value::Array(lim)) = get(v, &["time_step_limit", "dt_limit"]) {
                c.dt_limit_min = lim.first().and_then(Value::as_f64).unwrap_or(0.0);
                c.dt_limit_max = lim.get(1).and_then(Value::as_f64).filter(|x| x.is_finite());
            }
            MixerConfig::Mamba2(c)
        } else {
            let d_inner = s(&["intermediate_size"]).unwrap_or(expand * d_model);
            if d_inner % d_model != 0 {
                return Err(InvalidConfig(format!(
                    "intermediate size {d_inner} is not a multiple of hidden size {d_model}"
                )));
            }
            let dt_rank = match get(v, &["time_step_rank", "dt_rank"]).or_else(|| ssm_cfg.get("dt_rank")) {
                Some(Value::Number(n)) => n.as_u64().map(|x| x as usize),
                _ => None, // "auto"
            };
            MixerConfig::Mamba(
                MambaConfig::new(d_model)
                    .with_d_state(s(&["state_size", "d_state"]).unwrap_or(16))
                    .with_d_conv(s(&["conv_kernel", "d_conv"]).unwrap_or(4))
                    .with_expand(d_inner / d_model)
                    .with_dt_rank(dt_rank)
                    .with_conv_bias(b(&["use_conv_bias", "conv_bias"]).unwrap_or(true))
                    .with_bias(b(&["use_bias", "bias"]).unwrap_or(false)),
            )
        };
        let mut block = BlockConfig::new(mixer);
        block.norm = if b(&["rms_norm"]).unwrap_or(true) { NormKind::Rms } else { NormKind::Layer };
        block.norm_eps = eps;
        // transformers: Mamba ties by default, Mamba2 does not; state-spaces always ties.
        let tie_default = !is_mamba2 || is_state_spaces;
        let tie = b(&["tie_word_embeddings", "tie_embeddings"]).unwrap_or(tie_default);
        Ok(Self {
            vocab_size: vocab,
            backbone: BackboneConfig::uniform(block, n_layers),
            tie_embeddings: tie,
            bos_token_id: token_id(v, "bos_token_id"),
            eos_token_id: token_id(v, "eos_token_id"),
            pad_token_id: token_id(v, "pad_token_id"),
        })
    }

    /// The `config.json` written with a checkpoint: transformers' keys for Mamba / Mamba-2
    /// models (so the directory loads there too), and this crate's full configuration under
    /// `"ssm"` for every mixer.
    pub fn to_json(&self) -> Value {
        let d = self.d_model();
        let mut v = json!({
            "vocab_size": self.vocab_size,
            "hidden_size": d,
            "num_hidden_layers": self.backbone.layers.len(),
            "layer_norm_epsilon": self.backbone.layers.first().map_or(1e-5, |b| b.norm_eps),
            "tie_word_embeddings": self.tie_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
            "residual_in_fp32": true,
            "hidden_act": "silu",
            "dtype": "float32",
            "ssm": self,
        });
        let plain =
            self.uniform_block().filter(|b| b.mlp_hidden.is_none() && b.moe.is_none() && b.bidirectional.is_none());
        let extra = match plain.map(|b| &b.mixer) {
            Some(MixerConfig::Mamba(c)) => json!({
                "architectures": ["MambaForCausalLM"],
                "model_type": MambaConfig::HF_MODEL_TYPE,
                "state_size": c.d_state,
                "conv_kernel": c.d_conv,
                "expand": c.expand,
                "intermediate_size": c.d_inner(),
                "time_step_rank": c.dt_rank.unwrap_or(d.div_ceil(16)),
                "use_bias": c.bias,
                "use_conv_bias": c.conv_bias,
            }),
            Some(MixerConfig::Mamba2(c)) => json!({
                "architectures": ["Mamba2ForCausalLM"],
                "model_type": Mamba2Config::HF_MODEL_TYPE,
                "state_size": c.d_state,
                "conv_kernel": c.d_conv,
                "expand": c.expand,
                "head_dim": c.head_dim,
                "num_heads": c.d_inner() / c.head_dim,
                "n_groups": c.n_groups,
                "chunk_size": c.chunk_size,
                "use_bias": c.bias,
                "use_conv_bias": c.conv_bias,
                "time_step_limit": [c.dt_limit_min, c.dt_limit_max.unwrap_or(f64::MAX)],
            }),
            Some(other) => json!({ "model_type": format!("ssm-{}", other.name()) }),
            None => json!({ "model_type": "ssm-hybrid" }),
        };
        if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        v
    }
}
