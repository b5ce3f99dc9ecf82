//! ssm-language: causal language models over any ssm mixer — Mamba and Mamba-2 exactly as
//! HuggingFace's `MambaForCausalLM` / `Mamba2ForCausalLM` (checkpoints load and save in their
//! layout) — with tokenizers, text data, and generation by parallel prefill and recurrent decode.

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod generate;
pub mod model;
pub mod plain;
pub mod tokenizer;

pub use config::LmConfig;
pub use model::{LanguageModel, LmBatch, LmState};
pub use tokenizer::Tokenizer;
