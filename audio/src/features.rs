//! Spectral features in librosa's conventions (checked against librosa 0.11 on a fixture,
//! `audio/tests/fixtures/librosa_features.json`):
//!
//! ```text
//! STFT      frames of n_fft samples every hop, centred (n_fft/2 zeros each side), periodic Hann
//! power     S[f, t] = |STFT[f, t]|²                                  f = 0 … n_fft/2
//! mel       M = W S, W the Slaney mel filterbank (area-normalised triangles on the Slaney scale:
//!           linear below 1 kHz, logarithmic above)
//! log-mel   10 log10(max(M, 10⁻¹⁰)), floored at its maximum − 80 dB        (power_to_db)
//! MFCC      DCT-II (orthonormal) of the log-mel frames, first n_mfcc coefficients
//! ```

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;
use serde::{Deserialize, Serialize};

/// STFT and mel settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MelConfig {
    pub rate: u32,
    pub n_fft: usize,
    pub hop: usize,
    pub n_mels: usize,
    pub fmin: f64,
    /// Upper band edge (`None`: the Nyquist frequency).
    pub fmax: Option<f64>,
}

impl MelConfig {
    /// 32 ms windows every 8 ms with 64 bands at 8 kHz (spoken digits).
    pub fn speech(rate: u32) -> Self {
        let n_fft = (rate as usize * 32 / 1000).next_power_of_two();
        MelConfig { rate, n_fft, hop: n_fft / 4, n_mels: 64, fmin: 0.0, fmax: None }
    }

    /// Frames an input of `len` samples gives.
    pub fn frames(&self, len: usize) -> usize {
        1 + len / self.hop
    }
}

/// A frames × bins matrix, row-major `[frames][bins]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrogram {
    pub frames: usize,
    pub bins: usize,
    pub values: Vec<f32>,
}

impl Spectrogram {
    pub fn at(&self, frame: usize, bin: usize) -> f32 {
        self.values[frame * self.bins + bin]
    }
}

/// Power spectrogram `[frames][n_fft/2 + 1]`.
pub fn power_spectrogram(x: &[f32], n_fft: usize, hop: usize) -> Spectrogram {
    let pad = n_fft / 2;
    let mut padded = vec![0f32; x.len() + 2 * pad];
    padded[pad..pad + x.len()].copy_from_slice(x);
    let window: Vec<f32> =
        (0..n_fft).map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n_fft as f64).cos()) as f32).collect();
    let fft = FftPlanner::<f32>::new().plan_fft_forward(n_fft);
    let (frames, bins) = (1 + x.len() / hop, n_fft / 2 + 1);
    let mut values = Vec::with_capacity(frames * bins);
    let mut buf = vec![Complex::new(0f32, 0f32); n_fft];
    for t in 0..frames {
        let start = t * hop;
        for (i, b) in buf.iter_mut().enumerate() {
            *b = Complex::new(padded.get(start + i).copied().unwrap_or(0.0) * window[i], 0.0);
        }
        fft.process(&mut buf);
        values.extend(buf[..bins].iter().map(|c| c.norm_sqr()));
    }
    Spectrogram { frames, bins, values }
}

fn hz_to_mel(f: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if f >= min_log_hz { min_log_mel + (f / min_log_hz).ln() / logstep } else { f / f_sp }
}

fn mel_to_hz(m: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if m >= min_log_mel { min_log_hz * (logstep * (m - min_log_mel)).exp() } else { f_sp * m }
}

/// The Slaney mel filterbank `[n_mels][n_fft/2 + 1]` (librosa.filters.mel, htk = False,
/// norm = "slaney").
pub fn mel_filterbank(c: &MelConfig) -> Vec<Vec<f64>> {
    let bins = c.n_fft / 2 + 1;
    let fmax = c.fmax.unwrap_or(c.rate as f64 / 2.0);
    let freqs: Vec<f64> = (0..bins).map(|i| i as f64 * c.rate as f64 / c.n_fft as f64).collect();
    let (lo, hi) = (hz_to_mel(c.fmin), hz_to_mel(fmax));
    let edges: Vec<f64> =
        (0..c.n_mels + 2).map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (c.n_mels + 1) as f64)).collect();
    (0..c.n_mels)
        .map(|m| {
            let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
            let norm = 2.0 / (right - left);
            freqs
                .iter()
                .map(|&f| norm * ((f - left) / (centre - left)).min((right - f) / (right - centre)).max(0.0))
                .collect()
        })
        .collect()
}

/// Log-mel spectrogram `[frames][n_mels]` in dB (power_to_db, ref 1, amin 10⁻¹⁰, top_db 80).
pub fn log_mel(x: &[f32], c: &MelConfig) -> Spectrogram {
    let power = power_spectrogram(x, c.n_fft, c.hop);
    let bank = mel_filterbank(c);
    let mut values = Vec::with_capacity(power.frames * c.n_mels);
    for t in 0..power.frames {
        let frame = &power.values[t * power.bins..(t + 1) * power.bins];
        for w in &bank {
            let m: f64 = w.iter().zip(frame).map(|(a, &b)| a * b as f64).sum();
            values.push((10.0 * m.max(1e-10).log10()) as f32);
        }
    }
    let top = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    values.iter_mut().for_each(|v| *v = v.max(top - 80.0));
    Spectrogram { frames: power.frames, bins: c.n_mels, values }
}

/// MFCC `[frames][n_mfcc]`: the orthonormal DCT-II of each log-mel frame.
pub fn mfcc(x: &[f32], c: &MelConfig, n_mfcc: usize) -> Spectrogram {
    let mel = log_mel(x, c);
    let n = mel.bins;
    let mut values = Vec::with_capacity(mel.frames * n_mfcc);
    for t in 0..mel.frames {
        let frame = &mel.values[t * n..(t + 1) * n];
        for k in 0..n_mfcc {
            let scale = if k == 0 { (1.0 / n as f64).sqrt() } else { (2.0 / n as f64).sqrt() };
            let s: f64 = frame
                .iter()
                .enumerate()
                .map(|(i, &v)| v as f64 * (std::f64::consts::PI * k as f64 * (2 * i + 1) as f64 / (2 * n) as f64).cos())
                .sum();
            values.push((scale * s) as f32);
        }
    }
    Spectrogram { frames: mel.frames, bins: n_mfcc, values }
}
