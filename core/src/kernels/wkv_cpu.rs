//! Plain-Rust RWKV-4 WKV operator (Peng et al., "RWKV: Reinventing RNNs for the Transformer
//! Era", 2023, eq. 14–16; the stable form of BlinkDL/RWKV-LM's `wkv_cuda.cu`), per channel:
//!
//! ```text
//! N_t = Σ_{i<t} e^{−(t−1−i)w + k_i} v_i + e^{u + k_t} v_t
//! D_t = Σ_{i<t} e^{−(t−1−i)w + k_i}     + e^{u + k_t}          wkv_t = N_t / D_t
//! ```
//!
//! The sums are carried as (a, b, p) with A = a·eᵖ, B = b·eᵖ and p the running maximum exponent,
//! so no exponential overflows whatever the size of k. The state (a, b, p) is `[B, 3, C]`; the
//! forward returns `[B, L + 3, C]`: the L outputs then the final state's three rows.
//!
//! Backward, with g_s = ∂ℓ/∂wkv_s / D_s, β_t = e^{u+k_t}/D_t and the reverse sums
//! R_t = Σ_{s>t} e^{−(s−1−t)w} g_s, S_t the same over g_s·wkv_s, R'_t, S'_t with an extra
//! factor (s−1−t):
//!
//! ```text
//! ∂v_t = gy_t β_t + e^{k_t} R_t         ∂k_t = gy_t β_t (v_t − wkv_t) + e^{k_t}(v_t R_t − S_t)
//! ∂u   = Σ_t gy_t β_t (v_t − wkv_t)     ∂w   = −Σ_t e^{k_t}(v_t R'_t − S'_t)   (+ the state's term)
//! ```
//!
//! R, S, R', S' are kept scaled by a shared running exponent ρ (R = r·e^ρ), and e^{k_t + ρ_t} ≤ 1
//! because every term of D_s bounds the matching e^{k_t}. The initial state gets its gradient
//! (A₀ ↦ e^{p₀} R_{−1}, B₀ ↦ −e^{p₀} S_{−1}); the final state rows of the output are not
//! differentiated (their incoming gradient is ignored, as in truncated back-propagation).
//! Arithmetic is f64 inside, whatever the tensor type.

use super::real::Real;
use rayon::prelude::*;

/// Shapes of one WKV call: `k`, `v` are `[batch, len, channels]`.
#[derive(Debug, Clone, Copy)]
pub struct WkvDims {
    pub batch: usize,
    pub len: usize,
    pub channels: usize,
}

/// Inputs of one WKV call (`s0`: the initial state `[B, 3, C]`, zero when absent).
pub struct WkvInputs<'a, T> {
    pub w: &'a [T],
    pub u: &'a [T],
    pub k: &'a [T],
    pub v: &'a [T],
    pub s0: Option<&'a [T]>,
}

const EMPTY: (f64, f64, f64) = (0.0, 0.0, f64::NEG_INFINITY);

fn initial<T: Real>(x: &WkvInputs<'_, T>, s: WkvDims, bi: usize, c: usize) -> (f64, f64, f64) {
    let ch = s.channels;
    x.s0.map_or(EMPTY, |s0| {
        let at = |r: usize| s0[(bi * 3 + r) * ch + c].to_f64();
        (at(0), at(1), at(2))
    })
}

/// Runs the stable forward for one (batch element, channel), calling `emit(t, wkv_t, ln D_t)`;
/// returns the final state.
fn sweep<T: Real>(
    x: &WkvInputs<'_, T>,
    s: WkvDims,
    bi: usize,
    c: usize,
    mut emit: impl FnMut(usize, f64, f64),
) -> (f64, f64, f64) {
    let (w, u) = (x.w[c].to_f64(), x.u[c].to_f64());
    let (mut a, mut b, mut p) = initial(x, s, bi, c);
    for t in 0..s.len {
        let i = (bi * s.len + t) * s.channels + c;
        let (k, v) = (x.k[i].to_f64(), x.v[i].to_f64());
        let ww = u + k;
        let q = p.max(ww);
        let (e1, e2) = ((p - q).exp(), (ww - q).exp());
        let den = e1 * b + e2;
        emit(t, (e1 * a + e2 * v) / den, q + den.ln());
        let ww = p - w;
        let q = ww.max(k);
        let (e1, e2) = ((ww - q).exp(), (k - q).exp());
        a = e1 * a + e2 * v;
        b = e1 * b + e2;
        p = q;
    }
    (a, b, p)
}

/// Per-(batch, channel) tasks writing disjoint elements of shared outputs.
#[derive(Clone, Copy)]
struct Out<T>(*mut T);
unsafe impl<T: Send> Send for Out<T> {}
unsafe impl<T: Send> Sync for Out<T> {}
impl<T> Out<T> {
    /// # Safety
    /// `i` is in bounds and written by one task only.
    unsafe fn set(&self, i: usize, v: T) {
        unsafe { *self.0.add(i) = v }
    }
}

/// Forward: `[B, L + 3, C]` (outputs, then the final state's rows a, b, p).
pub fn forward<T: Real>(x: &WkvInputs<'_, T>, s: WkvDims) -> Vec<T> {
    let (l, ch) = (s.len, s.channels);
    let mut out = vec![T::ZERO; s.batch * (l + 3) * ch];
    let o = Out(out.as_mut_ptr());
    (0..s.batch * ch).into_par_iter().for_each(|task| {
        let (bi, c) = (task / ch, task % ch);
        let row = |t: usize| (bi * (l + 3) + t) * ch + c;
        // SAFETY: task (bi, c) alone writes column c of batch element bi.
        let (a, b, p) = sweep(x, s, bi, c, |t, y, _| unsafe { o.set(row(t), T::from_f64(y)) });
        for (r, val) in [a, b, p].into_iter().enumerate() {
            unsafe { o.set(row(l + r), T::from_f64(val)) };
        }
    });
    out
}

/// Gradients `(w [C], u [C], k, v [B, L, C], s0 [B, 3, C])` given `dy` (`[B, L, C]` or the
/// forward's `[B, L + 3, C]`, whose state rows are ignored).
pub fn backward<T: Real>(x: &WkvInputs<'_, T>, s: WkvDims, dy: &[T]) -> [Vec<T>; 5] {
    let (l, ch) = (s.len, s.channels);
    let dy_rows = dy.len() / (s.batch * ch);
    let (mut gk, mut gv) = (vec![T::ZERO; x.k.len()], vec![T::ZERO; x.k.len()]);
    let mut gs0 = vec![T::ZERO; s.batch * 3 * ch];
    let mut gwu = vec![(0.0f64, 0.0f64); s.batch * ch];
    let (ok, ov, os, owu) = (Out(gk.as_mut_ptr()), Out(gv.as_mut_ptr()), Out(gs0.as_mut_ptr()), Out(gwu.as_mut_ptr()));
    (0..s.batch * ch).into_par_iter().for_each(|task| {
        let (bi, c) = (task / ch, task % ch);
        let (w, u) = (x.w[c].to_f64(), x.u[c].to_f64());
        let mut ys = vec![(0.0, 0.0); l];
        sweep(x, s, bi, c, |t, y, ld| ys[t] = (y, ld));
        let (mut r, mut sy, mut r1, mut s1, mut rho) = (0.0, 0.0, 0.0, 0.0, f64::NEG_INFINITY);
        let (mut gw, mut gu) = (0.0, 0.0);
        for t in (0..l).rev() {
            let i = (bi * l + t) * ch + c;
            let (k, v) = (x.k[i].to_f64(), x.v[i].to_f64());
            let g = dy[(bi * dy_rows + t) * ch + c].to_f64();
            let (y, ld) = ys[t];
            let beta = (u + k - ld).exp();
            let gb = g * beta * (v - y);
            gu += gb;
            let ek = if rho == f64::NEG_INFINITY { 0.0 } else { (k + rho).exp() };
            // SAFETY: task (bi, c) alone writes column c of batch element bi.
            unsafe {
                ov.set(i, T::from_f64(g * beta + ek * r));
                ok.set(i, T::from_f64(gb + ek * (v * r - sy)));
            }
            gw -= ek * (v * r1 - s1);
            let (e1, e2) = (-ld, rho - w);
            let rn = e1.max(e2);
            let (f1, f2) = ((e1 - rn).exp(), if e2 == f64::NEG_INFINITY { 0.0 } else { (e2 - rn).exp() });
            (r1, s1) = ((r1 + r) * f2, (s1 + sy) * f2);
            (r, sy) = (g * f1 + r * f2, g * y * f1 + sy * f2);
            rho = rn;
        }
        let (a0, b0, p0) = initial(x, s, bi, c);
        if p0 > f64::NEG_INFINITY {
            let ep = (p0 + rho).exp();
            gw -= ep * (a0 * r1 - b0 * s1);
            let (ga, gb) = (ep * r, -ep * sy);
            for (row, val) in [ga, gb, a0 * ga + b0 * gb].into_iter().enumerate() {
                unsafe { os.set((bi * 3 + row) * ch + c, T::from_f64(val)) };
            }
        }
        unsafe { owu.set(task, (gw, gu)) };
    });
    let mut gw = vec![T::ZERO; ch];
    let mut gu = vec![T::ZERO; ch];
    for c in 0..ch {
        let (sw, su) = (0..s.batch).fold((0.0, 0.0), |(sw, su), bi| (sw + gwu[bi * ch + c].0, su + gwu[bi * ch + c].1));
        (gw[c], gu[c]) = (T::from_f64(sw), T::from_f64(su));
    }
    [gw, gu, gk, gv, gs0]
}
