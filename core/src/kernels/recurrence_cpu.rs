//! Plain-Rust diagonal linear recurrence h_t = a_t ⊙ h_{t-1} + b_t, real or complex.
//!
//! Layout `[B, L, C]` (time in the middle, channels contiguous — the layout of a model's
//! `[batch, length, features]` activations), initial state `[B, C]`. Each task owns one batch
//! element and a run of channels and walks time; the inner loop runs over contiguous channels
//! and vectorises. With `reverse`, time runs from L-1 down to 0 (h_L = h0), for bidirectional
//! models. Complex values are (re, im) buffer pairs.
//!
//! Backward (real): with g_t = ∂ℓ/∂h_t and the carry c_{t} = a_{t+1} ḡ_{t+1},
//!   ḡ_t = g_t + c_t,  ∂ℓ/∂b_t = ḡ_t,  ∂ℓ/∂a_t = ḡ_t h_{t-1},  ∂ℓ/∂h0 = a_0 ḡ_0.
//! Complex: the same with conj(a) and conj(h) (gradients of the real and imaginary parts).

use super::real::Real;
use rayon::prelude::*;

/// Shapes of one recurrence call.
#[derive(Debug, Clone, Copy)]
pub struct RecDims {
    pub batch: usize,
    pub len: usize,
    pub channels: usize,
}

const CHUNK: usize = 64;

/// A raw pointer that may be shared across threads; every task writes a disjoint set of
/// `(b, t, channel-run)` elements, which is what makes the writes below sound.
#[derive(Clone, Copy)]
struct SharedMut<T>(*mut T);
unsafe impl<T: Send> Send for SharedMut<T> {}
unsafe impl<T: Send> Sync for SharedMut<T> {}
impl<T> SharedMut<T> {
    /// # Safety
    /// `off..off+len` is in bounds and no other task touches it concurrently.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice(&self, off: usize, len: usize) -> &mut [T] {
        unsafe { std::slice::from_raw_parts_mut(self.0.add(off), len) }
    }
}

fn tasks(s: RecDims) -> Vec<(usize, usize, usize)> {
    let mut v = Vec::new();
    for b in 0..s.batch {
        let mut c0 = 0;
        while c0 < s.channels {
            let c1 = (c0 + CHUNK).min(s.channels);
            v.push((b, c0, c1));
            c0 = c1;
        }
    }
    v
}

#[inline(always)]
fn time(t: usize, l: usize, reverse: bool) -> usize {
    if reverse { l - 1 - t } else { t }
}

/// Real forward: returns h `[B, L, C]`.
pub fn forward_real<T: Real>(a: &[T], b: &[T], h0: Option<&[T]>, s: RecDims, reverse: bool) -> Vec<T> {
    let (l, ch) = (s.len, s.channels);
    let mut out = vec![T::ZERO; s.batch * l * ch];
    let p = SharedMut(out.as_mut_ptr());
    tasks(s).into_par_iter().for_each(|(bi, c0, c1)| {
        let w = c1 - c0;
        let mut h = [T::ZERO; CHUNK];
        if let Some(h0) = h0 {
            h[..w].copy_from_slice(&h0[bi * ch + c0..bi * ch + c1]);
        }
        for t in 0..l {
            let off = (bi * l + time(t, l, reverse)) * ch + c0;
            let (at, bt) = (&a[off..off + w], &b[off..off + w]);
            // SAFETY: this task alone owns channels c0..c1 of batch element bi.
            let o = unsafe { p.slice(off, w) };
            for j in 0..w {
                h[j] = at[j] * h[j] + bt[j];
                o[j] = h[j];
            }
        }
    });
    out
}

/// Real backward: returns (grad a, grad b, grad h0).
pub fn backward_real<T: Real>(
    a: &[T],
    h: &[T],
    h0: Option<&[T]>,
    g: &[T],
    s: RecDims,
    reverse: bool,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let (l, ch) = (s.len, s.channels);
    let mut ga = vec![T::ZERO; a.len()];
    let mut gb = vec![T::ZERO; a.len()];
    let mut gh0 = vec![T::ZERO; s.batch * ch];
    let (pa, pb, ph) = (SharedMut(ga.as_mut_ptr()), SharedMut(gb.as_mut_ptr()), SharedMut(gh0.as_mut_ptr()));
    tasks(s).into_par_iter().for_each(|(bi, c0, c1)| {
        let w = c1 - c0;
        let mut carry = [T::ZERO; CHUNK];
        let zero = [T::ZERO; CHUNK];
        for t in (0..l).rev() {
            let off = (bi * l + time(t, l, reverse)) * ch + c0;
            let prev: &[T] = if t > 0 {
                let po = (bi * l + time(t - 1, l, reverse)) * ch + c0;
                &h[po..po + w]
            } else {
                h0.map_or(&zero[..w], |h0| &h0[bi * ch + c0..bi * ch + c1])
            };
            let (at, gt) = (&a[off..off + w], &g[off..off + w]);
            // SAFETY: disjoint (bi, t, c0..c1) region per task.
            let (oa, ob) = unsafe { (pa.slice(off, w), pb.slice(off, w)) };
            for j in 0..w {
                let gh = gt[j] + carry[j];
                ob[j] = gh;
                oa[j] = gh * prev[j];
                carry[j] = at[j] * gh;
            }
        }
        // SAFETY: disjoint (bi, c0..c1) region per task.
        unsafe { ph.slice(bi * ch + c0, w) }.copy_from_slice(&carry[..w]);
    });
    (ga, gb, gh0)
}

/// Complex inputs as (re, im) buffer pairs.
pub struct Cplx<'a, T> {
    pub re: &'a [T],
    pub im: &'a [T],
}

/// Complex forward: returns (h_re, h_im) `[B, L, C]`.
pub fn forward_complex<T: Real>(
    a: Cplx<'_, T>,
    b: Cplx<'_, T>,
    h0: Option<Cplx<'_, T>>,
    s: RecDims,
    reverse: bool,
) -> (Vec<T>, Vec<T>) {
    let (l, ch) = (s.len, s.channels);
    let mut ore = vec![T::ZERO; s.batch * l * ch];
    let mut oim = vec![T::ZERO; s.batch * l * ch];
    let (pr, pi) = (SharedMut(ore.as_mut_ptr()), SharedMut(oim.as_mut_ptr()));
    tasks(s).into_par_iter().for_each(|(bi, c0, c1)| {
        let w = c1 - c0;
        let (mut hr, mut hi) = ([T::ZERO; CHUNK], [T::ZERO; CHUNK]);
        if let Some(h0) = &h0 {
            hr[..w].copy_from_slice(&h0.re[bi * ch + c0..bi * ch + c1]);
            hi[..w].copy_from_slice(&h0.im[bi * ch + c0..bi * ch + c1]);
        }
        for t in 0..l {
            let off = (bi * l + time(t, l, reverse)) * ch + c0;
            let (ar, ai) = (&a.re[off..off + w], &a.im[off..off + w]);
            let (br, bim) = (&b.re[off..off + w], &b.im[off..off + w]);
            // SAFETY: disjoint region per task.
            let (or, oi) = unsafe { (pr.slice(off, w), pi.slice(off, w)) };
            for j in 0..w {
                let nr = ar[j] * hr[j] - ai[j] * hi[j] + br[j];
                let ni = ar[j] * hi[j] + ai[j] * hr[j] + bim[j];
                hr[j] = nr;
                hi[j] = ni;
                or[j] = nr;
                oi[j] = ni;
            }
        }
    });
    (ore, oim)
}

/// Complex backward gradients, each an (re, im) pair.
pub struct ComplexGrads<T> {
    pub a: (Vec<T>, Vec<T>),
    pub b: (Vec<T>, Vec<T>),
    pub h0: (Vec<T>, Vec<T>),
}

/// Complex backward given the forward outputs h and the output gradient g.
pub fn backward_complex<T: Real>(
    a: Cplx<'_, T>,
    h: Cplx<'_, T>,
    h0: Option<Cplx<'_, T>>,
    g: Cplx<'_, T>,
    s: RecDims,
    reverse: bool,
) -> ComplexGrads<T> {
    let (l, ch) = (s.len, s.channels);
    let n = a.re.len();
    let (mut gar, mut gai, mut gbr, mut gbi) = (vec![T::ZERO; n], vec![T::ZERO; n], vec![T::ZERO; n], vec![T::ZERO; n]);
    let (mut ghr, mut ghi) = (vec![T::ZERO; s.batch * ch], vec![T::ZERO; s.batch * ch]);
    let ptrs = [
        SharedMut(gar.as_mut_ptr()),
        SharedMut(gai.as_mut_ptr()),
        SharedMut(gbr.as_mut_ptr()),
        SharedMut(gbi.as_mut_ptr()),
        SharedMut(ghr.as_mut_ptr()),
        SharedMut(ghi.as_mut_ptr()),
    ];
    tasks(s).into_par_iter().for_each(|(bi, c0, c1)| {
        let w = c1 - c0;
        let (mut cr, mut ci) = ([T::ZERO; CHUNK], [T::ZERO; CHUNK]);
        let zero = [T::ZERO; CHUNK];
        for t in (0..l).rev() {
            let off = (bi * l + time(t, l, reverse)) * ch + c0;
            let (pr, pim): (&[T], &[T]) = if t > 0 {
                let po = (bi * l + time(t - 1, l, reverse)) * ch + c0;
                (&h.re[po..po + w], &h.im[po..po + w])
            } else {
                match &h0 {
                    Some(h0) => (&h0.re[bi * ch + c0..bi * ch + c1], &h0.im[bi * ch + c0..bi * ch + c1]),
                    None => (&zero[..w], &zero[..w]),
                }
            };
            let (ar, ai) = (&a.re[off..off + w], &a.im[off..off + w]);
            let (gr, gi) = (&g.re[off..off + w], &g.im[off..off + w]);
            // SAFETY: disjoint region per task.
            let (oar, oai, obr, obi) =
                unsafe { (ptrs[0].slice(off, w), ptrs[1].slice(off, w), ptrs[2].slice(off, w), ptrs[3].slice(off, w)) };
            for j in 0..w {
                let (xr, xi) = (gr[j] + cr[j], gi[j] + ci[j]);
                obr[j] = xr;
                obi[j] = xi;
                // ∂a = ḡ · conj(h_{t-1})
                oar[j] = xr * pr[j] + xi * pim[j];
                oai[j] = xi * pr[j] - xr * pim[j];
                // carry = conj(a) · ḡ
                cr[j] = ar[j] * xr + ai[j] * xi;
                ci[j] = ar[j] * xi - ai[j] * xr;
            }
        }
        // SAFETY: disjoint (bi, c0..c1) region per task.
        unsafe {
            ptrs[4].slice(bi * ch + c0, w).copy_from_slice(&cr[..w]);
            ptrs[5].slice(bi * ch + c0, w).copy_from_slice(&ci[..w]);
        }
    });
    ComplexGrads { a: (gar, gai), b: (gbr, gbi), h0: (ghr, ghi) }
}
