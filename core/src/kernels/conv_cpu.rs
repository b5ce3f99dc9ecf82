//! Causal long convolution by real FFT: y[b,h,t] = Σ_{s ≤ t} k[h,s] · u[b,h,t-s].
//!
//! Layout: `u`, `y` `[B, H, L]`, kernel `k` `[H, Lk]`. The FFT length is the next power of two
//! ≥ L + Lk − 1, so the circular convolution equals the linear one on [0, L). Tasks run per
//! channel h (rayon) and loop over the batch, so the kernel's spectrum is computed once per
//! channel and ∂k can be summed over the batch without sharing.
//!
//! Backward (correlations): ∂u[s] = Σ_t g[t] k[t−s] = IFFT(Ĝ · conj(K̂)), and
//! ∂k[j] = Σ_b Σ_t g[b,t] u[b,t−j] = IFFT(Σ_b Ĝ_b · conj(Û_b)), both cut to their lengths.
//!
//! Short kernels (Lk ≤ [`DIRECT_MAX_TAPS`], e.g. Mamba's 4-tap convolution) take the direct sums
//! instead: Lk vectorised multiply-adds per output beat three FFTs of length ≥ L + Lk.

use super::real::Real;
use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{FftNum, RealFftPlanner};

/// Shapes of one convolution call.
#[derive(Debug, Clone, Copy)]
pub struct ConvDims {
    pub batch: usize,
    pub channels: usize,
    pub len: usize,
    pub kernel_len: usize,
}

impl ConvDims {
    pub fn fft_len(&self) -> usize {
        (self.len + self.kernel_len).next_power_of_two()
    }
    fn direct(&self) -> bool {
        self.kernel_len <= DIRECT_MAX_TAPS
    }
}

/// The longest kernel convolved by direct sums rather than by FFT.
pub const DIRECT_MAX_TAPS: usize = 32;

/// y = k ∗ u on one row by direct sums: y[t] = Σ_{j ≤ t} k[j] u[t − j].
fn direct_row<T: Real>(u: &[T], k: &[T], y: &mut [T]) {
    y.fill(T::ZERO);
    for (j, &kj) in k.iter().enumerate().take(u.len()) {
        for (o, &x) in y[j..].iter_mut().zip(u) {
            *o += kj * x;
        }
    }
}

/// One row's backward by direct sums: ∂u[s] = Σ_j k[j] g[s + j] into `gu`, ∂k[j] += Σ_t g[t] u[t − j].
fn direct_row_backward<T: Real>(u: &[T], k: &[T], g: &[T], gu: &mut [T], gk: &mut [T]) {
    gu.fill(T::ZERO);
    for (j, (&kj, gkj)) in k.iter().zip(gk.iter_mut()).enumerate().take(u.len()) {
        let mut dot = T::ZERO;
        for ((o, &gv), &uv) in gu.iter_mut().zip(&g[j..]).zip(u) {
            *o += kj * gv;
            dot += gv * uv;
        }
        *gkj += dot;
    }
}

struct Plans<T: FftNum> {
    fwd: std::sync::Arc<dyn realfft::RealToComplex<T>>,
    inv: std::sync::Arc<dyn realfft::ComplexToReal<T>>,
}

fn plans<T: FftNum>(n: usize) -> Plans<T> {
    let mut p = RealFftPlanner::<T>::new();
    Plans { fwd: p.plan_fft_forward(n), inv: p.plan_fft_inverse(n) }
}

fn rfft<T: FftNum + Real>(p: &Plans<T>, x: &[T], buf: &mut [T], out: &mut [Complex<T>]) {
    buf.fill(T::ZERO);
    buf[..x.len()].copy_from_slice(x);
    p.fwd.process(buf, out).expect("rfft buffer sizes");
}

/// Inverse FFT of `spec` (consumed as scratch), scaled by 1/n, first `out.len()` samples.
fn irfft_into<T: FftNum + Real>(p: &Plans<T>, spec: &mut [Complex<T>], buf: &mut [T], out: &mut [T], n: usize) {
    // A product of real spectra is real at DC and Nyquist; clear rounding residue there.
    spec[0].im = T::ZERO;
    let last = spec.len() - 1;
    spec[last].im = T::ZERO;
    p.inv.process(spec, buf).expect("irfft buffer sizes");
    let scale = T::ONE / <T as Real>::from_f64(n as f64);
    for (o, v) in out.iter_mut().zip(buf.iter()) {
        *o = *v * scale;
    }
}

#[derive(Clone, Copy)]
struct SharedMut<T>(*mut T);
unsafe impl<T: Send> Send for SharedMut<T> {}
unsafe impl<T: Send> Sync for SharedMut<T> {}
impl<T> SharedMut<T> {
    /// Taken through a method so closures capture the whole (Send) wrapper.
    fn get(&self) -> *mut T {
        self.0
    }
}

/// Forward causal convolution; returns y `[B, H, L]`.
pub fn forward<T: Real + FftNum>(u: &[T], k: &[T], s: ConvDims) -> Vec<T> {
    let (l, lk) = (s.len, s.kernel_len);
    if s.direct() {
        let mut y = vec![T::ZERO; s.batch * s.channels * l];
        y.par_chunks_mut(l.max(1)).enumerate().for_each(|(row, out)| {
            let h = row % s.channels;
            direct_row(&u[row * l..(row + 1) * l], &k[h * lk..(h + 1) * lk], out);
        });
        return y;
    }
    let n = s.fft_len();
    let p = plans::<T>(n);
    let mut y = vec![T::ZERO; s.batch * s.channels * l];
    let py = SharedMut(y.as_mut_ptr());
    (0..s.channels).into_par_iter().for_each(|h| {
        let mut buf = vec![T::ZERO; n];
        let mut kh = vec![Complex::new(T::ZERO, T::ZERO); n / 2 + 1];
        let mut uh = kh.clone();
        rfft(&p, &k[h * lk..(h + 1) * lk], &mut buf, &mut kh);
        for b in 0..s.batch {
            let row = (b * s.channels + h) * l;
            rfft(&p, &u[row..row + l], &mut buf, &mut uh);
            for (x, kv) in uh.iter_mut().zip(&kh) {
                *x = *x * *kv;
            }
            // SAFETY: row (b, h) is written by this task only.
            let out = unsafe { std::slice::from_raw_parts_mut(py.get().add(row), l) };
            irfft_into(&p, &mut uh, &mut buf, out, n);
        }
    });
    y
}

/// Backward causal convolution; returns (grad u `[B,H,L]`, grad k `[H,Lk]`).
pub fn backward<T: Real + FftNum>(u: &[T], k: &[T], g: &[T], s: ConvDims) -> (Vec<T>, Vec<T>) {
    let (l, lk) = (s.len, s.kernel_len);
    let mut gu = vec![T::ZERO; s.batch * s.channels * l];
    let mut gk = vec![T::ZERO; s.channels * lk];
    let pu = SharedMut(gu.as_mut_ptr());
    if s.direct() {
        gk.par_chunks_mut(lk.max(1)).enumerate().for_each(|(h, gk_row)| {
            for b in 0..s.batch {
                let row = (b * s.channels + h) * l;
                // SAFETY: row (b, h) is written by this task only.
                let out = unsafe { std::slice::from_raw_parts_mut(pu.get().add(row), l) };
                direct_row_backward(&u[row..row + l], &k[h * lk..(h + 1) * lk], &g[row..row + l], out, gk_row);
            }
        });
        return (gu, gk);
    }
    let n = s.fft_len();
    let p = plans::<T>(n);
    gk.par_chunks_mut(lk.max(1)).enumerate().for_each(|(h, gk_row)| {
        let zero = Complex::new(T::ZERO, T::ZERO);
        let mut buf = vec![T::ZERO; n];
        let mut kh = vec![zero; n / 2 + 1];
        let (mut uh, mut gh, mut acc, mut tmp) = (kh.clone(), kh.clone(), kh.clone(), kh.clone());
        rfft(&p, &k[h * lk..(h + 1) * lk], &mut buf, &mut kh);
        for b in 0..s.batch {
            let row = (b * s.channels + h) * l;
            rfft(&p, &g[row..row + l], &mut buf, &mut gh);
            rfft(&p, &u[row..row + l], &mut buf, &mut uh);
            for i in 0..gh.len() {
                acc[i] = acc[i] + gh[i] * uh[i].conj();
                tmp[i] = gh[i] * kh[i].conj();
            }
            // SAFETY: row (b, h) is written by this task only.
            let out = unsafe { std::slice::from_raw_parts_mut(pu.get().add(row), l) };
            irfft_into(&p, &mut tmp, &mut buf, out, n);
        }
        irfft_into(&p, &mut acc, &mut buf, gk_row, n);
    });
    (gu, gk)
}
