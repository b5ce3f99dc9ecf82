//! Tokenizers: HuggingFace `tokenizer.json` (through the `tokenizers` crate; e.g. the GPT-NeoX
//! tokenizer of the state-spaces checkpoints), bytes (MambaByte: vocabulary 256), and characters
//! (a vocabulary built from a text file). Saved beside a checkpoint: `tokenizer.json` for the
//! first, `ssm_tokenizer.json` for the other two.

use serde::{Deserialize, Serialize};
use ssm_core::error::{FileError, catch_quietly};
use std::path::Path;

/// Why text could not be tokenized, or a tokenizer read or written.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("character {0:?} is not in the vocabulary")]
    UnknownChar(char),
    #[error("tokenizer: {0}")]
    Hf(String),
}

pub enum Tokenizer {
    Byte,
    /// The sorted distinct characters of the training text.
    Char {
        chars: Vec<char>,
    },
    Hf(Box<tokenizers::Tokenizer>),
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Saved {
    Byte,
    Char { chars: String },
}

const OWN_FILE: &str = "ssm_tokenizer.json";

impl Tokenizer {
    /// `byte`, `char` (built from `text`) or a path to a `tokenizer.json`.
    pub fn from_spec(spec: &str, text: &str) -> Result<Self, TokenizerError> {
        match spec {
            "byte" => Ok(Self::Byte),
            "char" => Ok(Self::char_level(text)),
            path => Self::from_hf_file(Path::new(path)),
        }
    }

    pub fn char_level(text: &str) -> Self {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Self::Char { chars }
    }

    pub fn from_hf_file(path: &Path) -> Result<Self, TokenizerError> {
        let err = |m: String| TokenizerError::from(FileError::new(path, format!("not a tokenizer.json: {m}")));
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        // the tokenizers crate panics on some malformed JSON: check the syntax first, and
        // turn any panic left into an error
        serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|e| err(e.to_string()))?;
        match catch_quietly(|| text.parse::<tokenizers::Tokenizer>()) {
            Ok(Ok(t)) => Ok(Self::Hf(Box::new(t))),
            Ok(Err(e)) => Err(err(e.to_string())),
            Err(panic) => Err(err(format!("rejected by the tokenizers crate ({panic})"))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Byte => "byte",
            Self::Char { .. } => "char",
            Self::Hf(_) => "tokenizer.json",
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            Self::Byte => 256,
            Self::Char { chars } => chars.len(),
            Self::Hf(t) => t.get_vocab_size(true),
        }
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        match self {
            Self::Byte => Ok(text.bytes().map(u32::from).collect()),
            Self::Char { chars } => text
                .chars()
                .map(|c| chars.binary_search(&c).map(|i| i as u32).map_err(|_| TokenizerError::UnknownChar(c)))
                .collect(),
            Self::Hf(t) => {
                t.encode(text, false).map(|e| e.get_ids().to_vec()).map_err(|e| TokenizerError::Hf(e.to_string()))
            }
        }
    }

    /// Text of `ids` (ids outside the vocabulary are skipped; invalid UTF-8 bytes become U+FFFD).
    pub fn decode(&self, ids: &[u32]) -> String {
        match self {
            Self::Byte => {
                String::from_utf8_lossy(&ids.iter().filter(|&&i| i < 256).map(|&i| i as u8).collect::<Vec<_>>()).into()
            }
            Self::Char { chars } => ids.iter().filter_map(|&i| chars.get(i as usize)).collect(),
            Self::Hf(t) => t.decode(ids, false).unwrap_or_default(),
        }
    }

    /// Writes the tokenizer into a checkpoint directory.
    pub fn save(&self, dir: &Path) -> Result<(), TokenizerError> {
        let (file, json) = match self {
            Self::Byte => (OWN_FILE, serde_json::to_string(&Saved::Byte).unwrap()),
            Self::Char { chars } => {
                (OWN_FILE, serde_json::to_string(&Saved::Char { chars: chars.iter().collect() }).unwrap())
            }
            Self::Hf(t) => ("tokenizer.json", t.to_string(false).map_err(|e| TokenizerError::Hf(e.to_string()))?),
        };
        Ok(ssm_core::train::write_atomic(&dir.join(file), json.as_bytes())?)
    }

    /// The tokenizer saved in a checkpoint directory, if any.
    pub fn load(dir: &Path) -> Result<Option<Self>, TokenizerError> {
        let own = dir.join(OWN_FILE);
        if own.exists() {
            let text = std::fs::read_to_string(&own).map_err(|e| FileError::new(&own, e.to_string()))?;
            let saved: Saved = serde_json::from_str(&text).map_err(|e| FileError::new(&own, e.to_string()))?;
            return Ok(Some(match saved {
                Saved::Byte => Self::Byte,
                Saved::Char { chars } => Self::Char { chars: chars.chars().collect() },
            }));
        }
        let hf = dir.join("tokenizer.json");
        if hf.exists() { Self::from_hf_file(&hf).map(Some) } else { Ok(None) }
    }
}
