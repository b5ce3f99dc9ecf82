//! Text generation: the prompt is prefilled in parallel mode, then tokens are decoded one at a
//! time through the recurrent `step` with the per-layer state as cache (O(1) work and memory
//! per token for the SSM mixers). Greedy, temperature, top-k, top-p and repetition-penalty
//! sampling; seeded; batched prompts; every token is handed to a callback as it is produced
//! (streaming, stop strings).

use crate::model::{LanguageModel, LmState};
use crate::plain::PlainLm;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ssm_core::mixers::MixerState;
use ssm_core::plain::Precision;

#[derive(Debug, Clone)]
pub struct SamplingConfig {
    pub max_new_tokens: usize,
    /// 0 means greedy (arg-max).
    pub temperature: f32,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    /// HuggingFace's rule: logits of tokens already in the sequence are divided by the penalty
    /// when positive and multiplied when negative. 1 = off.
    pub repetition_penalty: f32,
    pub seed: u64,
    /// Stop a sequence when it emits this token (the token is kept).
    pub eos_token_id: Option<u32>,
    /// The decoder's weight storage ([`crate::plain`]; the prompt is prefilled in f32).
    pub precision: Precision,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 64,
            temperature: 0.0,
            top_k: None,
            top_p: None,
            repetition_penalty: 1.0,
            seed: 0,
            eos_token_id: None,
            precision: Precision::F32,
        }
    }
}

/// Picks the next token from one row of logits.
pub fn sample(logits: &mut [f32], history: &[u32], cfg: &SamplingConfig, rng: &mut StdRng) -> u32 {
    if cfg.repetition_penalty != 1.0 {
        let mut seen = history.to_vec();
        seen.sort_unstable();
        seen.dedup();
        for &t in &seen {
            if let Some(l) = logits.get_mut(t as usize) {
                *l = if *l > 0.0 { *l / cfg.repetition_penalty } else { *l * cfg.repetition_penalty };
            }
        }
    }
    if cfg.temperature <= 0.0 {
        return argmax(logits);
    }
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_unstable_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    if let Some(k) = cfg.top_k {
        idx.truncate(k.max(1));
    }
    let max = logits[idx[0]];
    let mut probs: Vec<f64> = idx.iter().map(|&i| (((logits[i] - max) / cfg.temperature) as f64).exp()).collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    if let Some(p) = cfg.top_p {
        // keep the smallest prefix whose mass reaches p (at least one token)
        let mut acc = 0.0;
        let keep = probs.iter().position(|&q| {
            acc += q;
            acc >= p as f64
        });
        let keep = keep.map_or(probs.len(), |i| i + 1);
        idx.truncate(keep);
        probs.truncate(keep);
    }
    let total: f64 = probs.iter().sum();
    let mut r = rng.random::<f64>() * total;
    for (i, q) in idx.iter().zip(&probs) {
        r -= q;
        if r <= 0.0 {
            return *i as u32;
        }
    }
    *idx.last().unwrap() as u32
}

/// The first index of the largest value (as `torch.argmax`).
pub fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

fn tokens_2d(rows: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
    let l = rows[0].len();
    let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().map(|&t| t as i64)).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), l]), device)
}

fn rows_of(logits: Tensor<2>) -> Vec<Vec<f32>> {
    let [b, v] = logits.dims();
    let flat = ssm_core::plain::host(logits);
    (0..b).map(|i| flat[i * v..(i + 1) * v].to_vec()).collect()
}

/// Prefills every prompt; the batch's state and last-position logits, or `None` when prompts of
/// different lengths give states that cannot be stacked (attention caches).
fn prefill(model: &LanguageModel, prompts: &[Vec<u32>], device: &Device) -> Option<(Vec<Vec<f32>>, LmState)> {
    if prompts.iter().all(|p| p.len() == prompts[0].len()) {
        let (logits, s) = model.prefill(tokens_2d(prompts, device), None);
        return Some((rows_of(logits), s));
    }
    let mut rows = Vec::new();
    let mut per_layer: Vec<Vec<MixerState>> = Vec::new();
    for p in prompts {
        let (logits, s) = model.prefill(tokens_2d(std::slice::from_ref(p), device), None);
        rows.extend(rows_of(logits));
        per_layer.resize_with(s.len(), Vec::new);
        for (acc, st) in per_layer.iter_mut().zip(s) {
            acc.push(st);
        }
    }
    let state = per_layer.into_iter().map(MixerState::cat_batch).collect::<Option<Vec<_>>>()?;
    Some((rows, state))
}

/// Generates continuations of `prompts` (each non-empty). `on_token(sequence, token)` sees each
/// new token as it is produced and returns `false` to stop that sequence (stop strings).
/// Returns the new tokens of each sequence.
pub fn generate(
    model: &LanguageModel,
    prompts: &[Vec<u32>],
    cfg: &SamplingConfig,
    device: &Device,
    on_token: &mut dyn FnMut(usize, u32) -> bool,
) -> Vec<Vec<u32>> {
    assert!(!prompts.is_empty() && prompts.iter().all(|p| !p.is_empty()), "generate: empty prompt");
    let vocab = model.vocab_size() as u32;
    assert!(
        prompts.iter().flatten().all(|&t| t < vocab),
        "generate: prompt token id out of the model's vocabulary ({vocab})"
    );
    let Some((mut logits, state)) = prefill(model, prompts, device) else {
        // one sequence at a time
        return prompts
            .iter()
            .enumerate()
            .map(|(i, p)| generate(model, std::slice::from_ref(p), cfg, device, &mut |_, t| on_token(i, t)).remove(0))
            .collect();
    };
    let b = prompts.len();
    let mut decoder = Decoder::new(model, state, b, device, cfg.precision);
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut history: Vec<Vec<u32>> = prompts.to_vec();
    let mut out = vec![Vec::new(); b];
    let mut done = vec![false; b];
    for n in 0..cfg.max_new_tokens {
        let mut next = vec![0u32; b];
        for i in 0..b {
            if done[i] {
                next[i] = *history[i].last().unwrap();
                continue;
            }
            let t = sample(&mut logits[i], &history[i], cfg, &mut rng);
            next[i] = t;
            history[i].push(t);
            out[i].push(t);
            let go_on = on_token(i, t);
            if !go_on || cfg.eos_token_id == Some(t) {
                done[i] = true;
            }
        }
        if done.iter().all(|&d| d) || n + 1 == cfg.max_new_tokens {
            break;
        }
        logits = decoder.step(&next);
    }
    out
}

/// The decode step: plain Rust when every layer has a plain step, else the tensor `step`.
enum Decoder<'a> {
    Plain(Box<PlainLm>),
    Tensor { model: &'a LanguageModel, state: Option<LmState>, device: &'a Device },
}

impl<'a> Decoder<'a> {
    fn new(model: &'a LanguageModel, state: LmState, batch: usize, device: &'a Device, p: Precision) -> Self {
        match PlainLm::new(model, &state, batch, p) {
            Some(p) => Decoder::Plain(Box::new(p)),
            None => Decoder::Tensor { model, state: Some(state), device },
        }
    }

    /// Logits of each sequence after its token in `next`.
    fn step(&mut self, next: &[u32]) -> Vec<Vec<f32>> {
        match self {
            Decoder::Plain(p) => {
                let v = p.vocab();
                p.step(next).chunks_exact(v).map(<[f32]>::to_vec).collect()
            }
            Decoder::Tensor { model, state, device } => {
                let ids = next.iter().map(|&t| i64::from(t)).collect();
                let tok = Tensor::<1, Int>::from_data(TensorData::new(ids, [next.len()]), *device);
                let (l, s) = model.step(tok, state.take().expect("a state"));
                *state = Some(s);
                rows_of(l)
            }
        }
    }
}
