//! Band-limited resampling by windowed-sinc interpolation (Smith, "Digital Audio Resampling",
//! the method of libsamplerate / resampy): output sample j sits at input time t = j·r_in/r_out
//! and is
//!
//! ```text
//! y_j = Σ_k x_k · f_c sinc(f_c (t − k)) · w((t − k) f_c / Z),    f_c = ρ · min(1, r_out / r_in)
//! ```
//!
//! with w a Kaiser window (β = 8.6) over Z = 24 zero crossings of the low-pass and ρ = 0.95 its
//! roll-off: frequencies above the new Nyquist are filtered out before they could alias, unlike
//! dropping or repeating samples.

const ZERO_CROSSINGS: f64 = 24.0;
const ROLLOFF: f64 = 0.95;
const BETA: f64 = 8.6;

/// The modified Bessel function I₀ by its power series.
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, q) = (1.0, 1.0, x * x / 4.0);
    for k in 1..64 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 { 1.0 } else { (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x) }
}

/// `samples` at `from` Hz resampled to `to` Hz (the same samples when the rates are equal).
pub fn resample(samples: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || samples.is_empty() {
        return samples.to_vec();
    }
    let ratio = to as f64 / from as f64;
    let fc = ROLLOFF * ratio.min(1.0);
    let half = ZERO_CROSSINGS / fc; // half-width of the filter in input samples
    let norm = bessel_i0(BETA);
    let n_out = ((samples.len() as f64) * ratio).round().max(1.0) as usize;
    (0..n_out)
        .map(|j| {
            let t = j as f64 / ratio;
            let lo = (t - half).ceil().max(0.0) as usize;
            let hi = ((t + half).floor() as usize).min(samples.len() - 1);
            let mut acc = 0.0;
            for (k, &x) in samples.iter().enumerate().take(hi + 1).skip(lo) {
                let d = t - k as f64;
                let r = d / half;
                let w = bessel_i0(BETA * (1.0 - r * r).max(0.0).sqrt()) / norm;
                acc += x as f64 * fc * sinc(fc * d) * w;
            }
            acc as f32
        })
        .collect()
}
