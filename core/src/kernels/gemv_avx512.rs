//! AVX-512 dot products for decoding's matrix–vector products (`f32 · f32`, `f32 · bf16`,
//! `f32 · int8 × scale`), written with intrinsics: the compiler's own vectorisation of these
//! loops kept its accumulators on the stack or gathered lanes, and a dot product is the inner
//! loop of every decode step. Four independent accumulators per row, so the adds of one wait on
//! memory, not on the previous add; the widened weights never leave registers. The f32 row
//! update `acc += Σ x_j · W_j` (four rows per pass) is here too. Both prefetch the weights a
//! few KiB ahead: the hardware streamers stop at 4 KiB page boundaries, and decode is a read of
//! every weight once per token.
//!
//! Callers reach these only where `simd_level()` reported AVX-512 (see [`super::gemv_cpu::Rows`]).

use super::gemv_quant::BLOCK;
use std::arch::x86_64::*;

/// Adds the four accumulators and their 16 lanes.
#[target_feature(enable = "avx512f")]
#[inline]
fn total(a: [__m512; 4]) -> f32 {
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3])))
}

/// A weight type widened to f32 sixteen at a time.
trait Widen: Copy {
    /// 16 values at `p` as f32.
    ///
    /// # Safety
    /// 16 values must be readable at `p`, on a CPU with AVX-512.
    unsafe fn load16(p: *const Self) -> __m512;
    fn to_f32(self) -> f32;
}

impl Widen for f32 {
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn load16(p: *const f32) -> __m512 {
        // SAFETY (caller): 16 values readable at p.
        unsafe { _mm512_loadu_ps(p) }
    }
    fn to_f32(self) -> f32 {
        self
    }
}

/// bf16 as its bit pattern: the top half of an f32.
impl Widen for u16 {
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn load16(p: *const u16) -> __m512 {
        // SAFETY (caller): 16 values readable at p.
        let v = unsafe { _mm256_loadu_si256(p.cast()) };
        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(v)))
    }
    fn to_f32(self) -> f32 {
        f32::from_bits(u32::from(self) << 16)
    }
}

/// How far ahead of the loads the weights are prefetched.
const PREFETCH_BYTES: usize = 8192;

/// `PREFETCH_BYTES` ahead of `p`: an address for `_mm_prefetch`, which never faults, so it may
/// lie past the end of the weights.
#[inline(always)]
fn ahead<E>(p: *const E) -> *const i8 {
    p.cast::<i8>().wrapping_add(PREFETCH_BYTES)
}

/// `Σ x[c] · w[c]` over `x.len()` values (`w.len() ≥ x.len()`).
#[target_feature(enable = "avx512f")]
fn dot_widened<E: Widen>(x: &[f32], w: &[E]) -> f32 {
    assert!(w.len() >= x.len());
    let n = x.len();
    let mut a = [_mm512_setzero_ps(); 4];
    let mut c = 0;
    // SAFETY: every load reads 16 values at c + 16h < n ≤ both lengths.
    unsafe {
        while c + 64 <= n {
            for (h, acc) in a.iter_mut().enumerate() {
                _mm_prefetch::<_MM_HINT_T1>(ahead(w.as_ptr().wrapping_add(c + 16 * h)));
                let xv = _mm512_loadu_ps(x.as_ptr().add(c + 16 * h));
                *acc = _mm512_fmadd_ps(xv, E::load16(w.as_ptr().add(c + 16 * h)), *acc);
            }
            c += 64;
        }
        while c + 16 <= n {
            a[0] = _mm512_fmadd_ps(_mm512_loadu_ps(x.as_ptr().add(c)), E::load16(w.as_ptr().add(c)), a[0]);
            c += 16;
        }
    }
    total(a) + x[c..].iter().zip(&w[c..]).map(|(a, &b)| a * b.to_f32()).sum::<f32>()
}

/// `acc[c] += Σ_j xs[j] · w[j][c]` over four rows (`w[j].len() ≥ acc.len()`): one pass over
/// `acc`, every weight line prefetched [`PREFETCH_BYTES`] ahead.
#[target_feature(enable = "avx512f")]
pub fn axpy4_f32(xs: [f32; 4], w: [&[f32]; 4], acc: &mut [f32]) {
    let n = acc.len();
    assert!(w.iter().all(|r| r.len() >= n));
    let xv = xs.map(|v| _mm512_set1_ps(v));
    let mut c = 0;
    // SAFETY: every load and store covers 16 values at c < c + 16 ≤ n ≤ each length; prefetches
    // of addresses past the end do not fault.
    unsafe {
        while c + 16 <= n {
            let wv: [__m512; 4] = std::array::from_fn(|j| {
                _mm_prefetch::<_MM_HINT_T1>(ahead(w[j].as_ptr().wrapping_add(c)));
                _mm512_loadu_ps(w[j].as_ptr().add(c))
            });
            let lo = _mm512_fmadd_ps(xv[1], wv[1], _mm512_mul_ps(xv[0], wv[0]));
            let hi = _mm512_fmadd_ps(xv[3], wv[3], _mm512_mul_ps(xv[2], wv[2]));
            let o = acc.as_mut_ptr().add(c);
            _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), _mm512_add_ps(lo, hi)));
            c += 16;
        }
    }
    for (i, o) in acc.iter_mut().enumerate().skip(c) {
        *o += (xs[0] * w[0][i] + xs[1] * w[1][i]) + (xs[2] * w[2][i] + xs[3] * w[3][i]);
    }
}

/// `Σ x[c] · w[c]` (`w.len() ≥ x.len()`).
#[target_feature(enable = "avx512f")]
pub fn dot_f32(x: &[f32], w: &[f32]) -> f32 {
    dot_widened(x, w)
}

/// `Σ x[c] · w[c]` for bf16 `w` (`w.len() ≥ x.len()`).
#[target_feature(enable = "avx512f")]
pub fn dot_bf16(x: &[f32], w: &[u16]) -> f32 {
    dot_widened(x, w)
}

/// Whether the CPU has AVX-512 BF16 (`vdpbf16ps`), for [`dot_bf16_pairs`].
pub fn has_bf16_dot() -> bool {
    std::is_x86_feature_detected!("avx512bf16")
}

/// `Σ x[c] · w[c]` for bf16 `w` with `x` rounded to bf16 as well (`vdpbf16ps`: 32 products per
/// instruction, f32 sums) — half the instructions of [`dot_bf16`], at the cost of x's low
/// mantissa bits, as llama.cpp's F16 path rounds its activations to f16.
#[target_feature(enable = "avx512bf16,avx512f")]
pub fn dot_bf16_pairs(x: &[f32], w: &[u16]) -> f32 {
    assert!(w.len() >= x.len());
    let n = x.len();
    let mut a = [_mm512_setzero_ps(); 4];
    let mut c = 0;
    // SAFETY: every load reads 32 values at c + 32h < n ≤ both lengths; __m512i and __m512bh
    // are both 512 bits of plain data.
    unsafe {
        let pair = |c: usize| -> (__m512bh, __m512bh) {
            _mm_prefetch::<_MM_HINT_T1>(ahead(w.as_ptr().wrapping_add(c)));
            let xp = x.as_ptr().add(c);
            let xb = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(xp.add(16)), _mm512_loadu_ps(xp));
            (xb, std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(w.as_ptr().add(c).cast())))
        };
        while c + 128 <= n {
            for (h, acc) in a.iter_mut().enumerate() {
                let (xb, wb) = pair(c + 32 * h);
                *acc = _mm512_dpbf16_ps(*acc, xb, wb);
            }
            c += 128;
        }
        while c + 32 <= n {
            let (xb, wb) = pair(c);
            a[0] = _mm512_dpbf16_ps(a[0], xb, wb);
            c += 32;
        }
    }
    let tail: f32 = x[c..].iter().zip(&w[c..]).map(|(a, &b)| a * f32::from_bits(u32::from(b) << 16)).sum();
    total(a) + tail
}

/// 16 int8 values at `p` widened to f32.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn load_i8(p: *const i8) -> __m512 {
    // SAFETY (caller): 16 values readable at p.
    let v = unsafe { _mm_loadu_si128(p.cast()) };
    _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v))
}

/// `acc[h] += x · q · s` over the two halves of block `b`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn int8_block(x: &[f32], q: &[i8], s: f32, b: usize, acc: &mut [__m512]) {
    let s = _mm512_set1_ps(s);
    for (h, a) in acc.iter_mut().enumerate() {
        // SAFETY (caller): block b lies inside x and q.
        let (xv, qv) = unsafe {
            (_mm512_loadu_ps(x.as_ptr().add(b * BLOCK + 16 * h)), load_i8(q.as_ptr().add(b * BLOCK + 16 * h)))
        };
        *a = _mm512_fmadd_ps(_mm512_mul_ps(xv, qv), s, *a);
    }
}

/// `Σ x[c] · q[c] · scales[c / BLOCK]` for int8 `q` (`q.len() ≥ x.len()`).
#[target_feature(enable = "avx512f")]
pub fn dot_int8(x: &[f32], q: &[i8], scales: &[f32]) -> f32 {
    assert!(q.len() >= x.len() && scales.len() >= x.len().div_ceil(BLOCK));
    let blocks = x.len() / BLOCK;
    let mut a = [_mm512_setzero_ps(); 4];
    let mut b = 0;
    // SAFETY: each call reads blocks b (and b + 1) < blocks.
    unsafe {
        while b + 2 <= blocks {
            // one 64-byte line of weights per two blocks
            _mm_prefetch::<_MM_HINT_T1>(ahead(q.as_ptr().wrapping_add(b * BLOCK)));
            int8_block(x, q, scales[b], b, &mut a[..2]);
            int8_block(x, q, scales[b + 1], b + 1, &mut a[2..]);
            b += 2;
        }
        if b < blocks {
            int8_block(x, q, scales[b], b, &mut a[..2]);
        }
    }
    let c = blocks * BLOCK;
    let s = scales.get(blocks).copied().unwrap_or(0.0);
    total(a) + x[c..].iter().zip(&q[c..]).map(|(a, &w)| a * f32::from(w) * s).sum::<f32>()
}
