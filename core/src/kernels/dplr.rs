//! The S4 convolution kernel of a diagonal-plus-low-rank (DPLR) state matrix (Gu, Goel & Ré,
//! "Efficiently Modeling Long Sequences with Structured State Spaces", ICLR 2022, §3.3,
//! Algorithm 1 and appendix C.3; checked against state-spaces/s4 `SSMKernelDPLR`), bilinear
//! discretisation, rank 1:
//!
//! ```text
//! A = Λ − p pᴴ,   Ā = (I − Δ/2 A)⁻¹(I + Δ/2 A),   B̄ = (I − Δ/2 A)⁻¹ Δ B
//! K[l] = 2 Re(cᵀ Ā^l B̄),  l < L
//! ```
//!
//! computed without ever forming Ā^l (Algorithm 1):
//!
//! 1. truncate the generating function to L terms: c̃ = cᵀ(I − Ā^L) (log₂ L squarings of the
//!    N×N matrix Ā — independent of L apart from the logarithm);
//! 2. evaluate Ĝ(z) = Σ_{l<L} cᵀĀ^l B̄ z^l = c̃ᵀ(I − Āz)⁻¹B̄ at the L roots of unity z_k = e^{−2πik/L}.
//!    Since (I − Āz)⁻¹ = [(1 − z)I − (Δ/2)(1 + z)A]⁻¹ (I − Δ/2 A), with D(z) = diag((1 − z) −
//!    (Δ/2)(1 + z)λ_n) and γ = (Δ/2)(1 + z) the Woodbury identity gives
//!    Ĝ(z) = Δ [s_cB − γ s_cp s_pB / (1 + γ s_pp)],  s_xy(z) = Σ_n x_n y_n / D_n(z)
//!    (p conjugated where it stands for pᴴ) — four Cauchy sums over the N modes;
//! 3. K = 2 Re(IDFT(Ĝ)) (Ĝ_k + conj Ĝ_{L−k} is the DFT of the real kernel: the irfft trick).
//!
//! `pairs`: the stored N modes are one half of conjugate pairs of a real system of 2N states
//! (S4's storage): the low-rank term then couples every mode with its partner, pᴴx becomes
//! 2 Re(Σ_n p̄_n x_n), and the Cauchy sums in the Woodbury denominators gain their partners'
//! terms s(z_k) + conj s(z_{L−k}). Without `pairs` the N complex modes are the whole system
//! (the closed form of the shared `s4_dplr` fixture).
//!
//! The same machinery gives cᵀĀ^l v for any start vector v (an initial state's contribution to
//! the outputs): Ĝ_v(z) = c̃ᵀ[(1 − z)I − (Δ/2)(1 + z)A]⁻¹ w with w = (I − Δ/2 A) v.

use crate::complex::ComplexTensor;
use burn::tensor::{Int, Tensor, TensorData};
use nalgebra::Complex;
use std::f64::consts::PI;

/// A bank of H rank-1 DPLR systems of N stored modes with steps Δ (bilinear).
#[derive(Debug, Clone)]
pub struct Dplr {
    /// Λ `[H, N]`.
    pub lambda: ComplexTensor<2>,
    /// p `[H, N]`.
    pub p: ComplexTensor<2>,
    /// Δ `[H]`.
    pub dt: Tensor<1>,
    /// The stored modes are halves of conjugate pairs (see the module docs).
    pub pairs: bool,
}

/// `t` `[H, N]` as `[1, H, N]`.
fn row(t: &ComplexTensor<2>) -> ComplexTensor<3> {
    t.clone().unsqueeze_dim(0)
}

impl Dplr {
    fn dims(&self) -> [usize; 2] {
        self.lambda.dims()
    }

    /// Δ/2 as `[1, H, 1]`.
    fn half_dt(&self) -> Tensor<3> {
        self.dt.clone().mul_scalar(0.5).reshape([1, self.dims()[0], 1])
    }

    /// ⟨x, y⟩ = Σ_n x̄_n y_n over the modes of `[M, H, N]` tensors → `[M, H, 1]` (2 Re of it with `pairs`).
    fn dot(&self, x: ComplexTensor<3>, y: ComplexTensor<3>) -> ComplexTensor<3> {
        let s = (x.conj() * y).sum_dim(2);
        if self.pairs { ComplexTensor::from_real(s.re.mul_scalar(2.0)) } else { s }
    }

    /// A x = Λx − p⟨p, x⟩ for x `[M, H, N]`.
    pub fn apply_a(&self, x: ComplexTensor<3>) -> ComplexTensor<3> {
        let p = row(&self.p);
        row(&self.lambda) * x.clone() - p.clone() * self.dot(p, x)
    }

    /// (I − Δ/2 A)⁻¹ y by Sherman–Morrison: with D₀ = diag(1 − Δλ/2),
    /// D₀⁻¹y − (Δ/2) D₀⁻¹p ⟨p, D₀⁻¹y⟩ / (1 + (Δ/2)⟨p, D₀⁻¹p⟩).
    pub fn solve_minus(&self, y: ComplexTensor<3>) -> ComplexTensor<3> {
        let hd = self.half_dt();
        let d0 = row(&self.lambda).mul_real(hd.clone()).mul_scalar(-1.0).add_scalar(1.0);
        let p = row(&self.p);
        let pd = p.clone() / d0.clone();
        let yd = y / d0;
        let den = self.dot(p.clone(), pd.clone()).mul_real(hd.clone()).add_scalar(1.0);
        let coef = self.dot(p, yd.clone()) / den;
        yd - pd.mul_real(hd) * coef
    }

    /// Ā x = 2(I − Δ/2 A)⁻¹x − x.
    pub fn bar(&self, x: ComplexTensor<3>) -> ComplexTensor<3> {
        self.solve_minus(x.clone()).mul_scalar(2.0) - x
    }

    /// (I + Δ/2 A) x.
    pub fn plus_half(&self, x: ComplexTensor<3>) -> ComplexTensor<3> {
        x.clone() + self.apply_a(x).mul_real(self.half_dt())
    }

    /// B̄ = (I − Δ/2 A)⁻¹ Δ B for B `[H, N]`.
    pub fn b_bar(&self, b: ComplexTensor<2>) -> ComplexTensor<2> {
        let dt = self.half_dt().mul_scalar(2.0);
        let [h, n] = self.dims();
        self.solve_minus(row(&b).mul_real(dt)).reshape([h, n])
    }

    /// The whole system's vectors: the stored modes, then (with `pairs`) their conjugates.
    fn full(&self, t: &ComplexTensor<2>) -> ComplexTensor<2> {
        if self.pairs { ComplexTensor::cat(vec![t.clone(), t.clone().conj()], 1) } else { t.clone() }
    }

    /// Ā as a dense `[H, M, M]` matrix over the whole system (M = N, or 2N with `pairs`).
    fn dense_bar(&self) -> ComplexTensor<3> {
        let (lambda, p) = (self.full(&self.lambda), self.full(&self.p));
        let [h, m] = lambda.dims();
        let hd: Tensor<2> = self.dt.clone().mul_scalar(0.5).reshape([h, 1]);
        let inv_d0 =
            ComplexTensor::from_real(lambda.re.ones_like()) / lambda.mul_real(hd.clone().neg()).add_scalar(1.0);
        let u = p.clone() * inv_d0.clone(); // D₀⁻¹p
        let v = p.clone().conj() * inv_d0.clone(); // (pᴴD₀⁻¹)ᵀ
        let den = (p.clone().conj() * u.clone()).sum_dim(1).mul_real(hd.clone()).add_scalar(1.0); // 1 + (Δ/2)pᴴD₀⁻¹p
        let scale = ComplexTensor::new(hd.clone(), hd.zeros_like()) / den; // (Δ/2) / (1 + …)
        let outer = (u * scale).unsqueeze_dim::<3>(2).matmul(v.unsqueeze_dim::<3>(1));
        let eye: Tensor<3> = Tensor::<2>::eye(m, &hd.device()).cast(hd.dtype()).unsqueeze_dim(0);
        let diag = inv_d0.unsqueeze_dim::<3>(1).mul_real(eye.clone());
        (diag - outer).mul_scalar(2.0) - ComplexTensor::from_real(eye.expand([h, m, m]))
    }

    /// c̃ = cᵀ(I − Ā^L) over the stored modes, for c `[H, N]`.
    pub fn truncate_c(&self, c: ComplexTensor<2>, len: usize) -> ComplexTensor<2> {
        let [_, n] = self.dims();
        let full = self.full(&c);
        let mut power = self.dense_bar();
        let mut r = full.clone().unsqueeze_dim::<3>(1); // [H, 1, M]: cᵀĀ^(bits so far)
        let mut e = len;
        loop {
            if e & 1 == 1 {
                r = r.matmul(power.clone());
            }
            e >>= 1;
            if e == 0 {
                break;
            }
            power = power.clone().matmul(power);
        }
        let dims = full.dims();
        (full - r.reshape(dims)).narrow(1, 0, n)
    }

    /// g `[M, H, L]` with g[m, h, l] = Σ_n c_n (Ā^l v_m)_n, l < `len`, from c̃ = `truncate_c(c,
    /// len)` and w = (I − Δ/2 A) v `[M, H, N]` (for B̄: w = ΔB).
    pub fn powers_read(&self, c_tilde: ComplexTensor<2>, w: ComplexTensor<3>, len: usize) -> ComplexTensor<3> {
        let [m, h, _] = w.dims();
        let device = w.re.device();
        let k: Tensor<1> = Tensor::<1, Int>::arange(0..len as i64, &device).float().cast(w.re.dtype());
        let angle = k.mul_scalar(-2.0 * PI / len as f64);
        let z = ComplexTensor::new(angle.clone().cos(), angle.sin()).unsqueeze_dim::<2>(0).unsqueeze_dim::<3>(2); // [1, L, 1]
        let one_minus = z.clone().mul_scalar(-1.0).add_scalar(1.0);
        let one_plus = z.add_scalar(1.0);
        let hd: Tensor<3> = self.dt.clone().mul_scalar(0.5).reshape([h, 1, 1]);
        let hl = self.lambda.clone().mul_real(hd.clone().reshape([h, 1])).unsqueeze_dim::<3>(1); // [H, 1, N]
        let d = one_minus - one_plus.clone() * hl; // [H, L, N]
        let inv = ComplexTensor::new(d.re.ones_like(), d.re.zeros_like()) / d;
        // Columns: c̃ ⊙ w_m (M), p̄ ⊙ w_m (M), c̃ ⊙ p, p̄ ⊙ p → [H, N, 2M + 2].
        let cols = |t: ComplexTensor<3>| t.swap_dims(0, 1).swap_dims(1, 2); // [M, H, N] → [H, N, M]
        let (ct, p) = (row(&c_tilde), row(&self.p));
        let pc = p.clone().conj();
        let v = ComplexTensor::cat(
            vec![cols(ct.clone() * w.clone()), cols(pc.clone() * w), cols(ct * p.clone()), cols(pc * p)],
            2,
        );
        let s = inv.matmul(v); // [H, L, 2M + 2]
        let s_cw = s.clone().narrow(2, 0, m);
        let s_pw = self.fold(s.clone().narrow(2, m, m));
        let s_cp = s.clone().narrow(2, 2 * m, 1);
        let s_pp = self.fold(s.narrow(2, 2 * m + 1, 1));
        let gamma = one_plus.mul_real(hd); // [H, L, 1]
        let g = s_cw - gamma.clone() * s_cp * s_pw / (gamma * s_pp).add_scalar(1.0); // [H, L, M]
        let (re, im) = crate::fft::idft(g.re, g.im, 1);
        ComplexTensor::new(re, im).swap_dims(1, 2).swap_dims(0, 1) // [M, H, L]
    }

    /// With `pairs`, adds the partner modes' Cauchy terms: s(z_k) + conj s(z_{L−k}) along dim 1.
    fn fold(&self, s: ComplexTensor<3>) -> ComplexTensor<3> {
        if !self.pairs {
            return s;
        }
        let l = s.dims()[1];
        let mirrored = if l == 1 {
            s.clone()
        } else {
            ComplexTensor::cat(vec![s.clone().narrow(1, 0, 1), s.clone().narrow(1, 1, l - 1).flip([1])], 1)
        };
        s + mirrored.conj()
    }

    /// The host copies (λ, p, Δ) for plain-Rust stepping.
    fn host(&self) -> HostDplr {
        let [h, n] = self.dims();
        HostDplr {
            h,
            n,
            lambda: host_complex(&self.lambda),
            p: host_complex(&self.p),
            dt: host(self.dt.clone()),
            pairs: self.pairs,
        }
    }

    /// The state after x_t = Ā x_{t−1} + B̄ u_t over `u` `[B, H, L]` from `x0` `[B, H, N]`,
    /// computed off the autodiff graph (a plain loop of O(N) structured steps): a parallel
    /// forward's final state, which inference needs and training never differentiates.
    pub fn final_state(
        &self,
        b_bar: &ComplexTensor<2>,
        u: Tensor<3>,
        x0: Option<ComplexTensor<3>>,
    ) -> ComplexTensor<3> {
        let [batch, h, l] = u.dims();
        let n = self.dims()[1];
        let sys = self.host();
        let bb = host_complex(b_bar);
        let uh = host(u.clone());
        let mut x = match &x0 {
            Some(x0) => host_complex(x0),
            None => vec![Complex::new(0.0, 0.0); batch * h * n],
        };
        for bi in 0..batch {
            for hi in 0..h {
                let xs = &mut x[(bi * h + hi) * n..][..n];
                for t in 0..l {
                    sys.bar_in_place(hi, xs);
                    let ut = uh[(bi * h + hi) * l + t];
                    for (xv, bv) in xs.iter_mut().zip(&bb[hi * n..][..n]) {
                        *xv += bv * ut;
                    }
                }
            }
        }
        let dev = u.device();
        let part = |f: fn(&Complex<f64>) -> f64| {
            Tensor::<3>::from_data(TensorData::new(x.iter().map(f).collect::<Vec<_>>(), [batch, h, n]), &dev)
                .cast(u.dtype())
        };
        ComplexTensor::new(part(|z| z.re), part(|z| z.im))
    }
}

/// 2 Re(cᵀĀ^l B̄) for l < `len`: the DPLR convolution kernel `[H, len]` (module docs), with
/// Δ = exp(log_dt) and every argument `[H, N]` but `log_dt` `[H]`.
pub fn dplr_kernel(sys: &Dplr, b: ComplexTensor<2>, c: ComplexTensor<2>, len: usize) -> Tensor<2> {
    let [h, _] = b.dims();
    let w = row(&b).mul_real(sys.half_dt().mul_scalar(2.0));
    let g = sys.powers_read(sys.truncate_c(c, len), w, len);
    g.re.reshape([h, len]).mul_scalar(2.0)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_into_vec::<f64>().expect("f64 data")
}

fn host_complex<const D: usize>(z: &ComplexTensor<D>) -> Vec<Complex<f64>> {
    host(z.re.clone()).into_iter().zip(host(z.im.clone())).map(|(re, im)| Complex::new(re, im)).collect()
}

/// (λ, p, Δ) on the host, row-major `[H, N]`.
struct HostDplr {
    h: usize,
    n: usize,
    lambda: Vec<Complex<f64>>,
    p: Vec<Complex<f64>>,
    dt: Vec<f64>,
    pairs: bool,
}

impl HostDplr {
    fn dot(&self, x: &[Complex<f64>], y: &[Complex<f64>]) -> Complex<f64> {
        let s: Complex<f64> = x.iter().zip(y).map(|(a, b)| a.conj() * b).sum();
        if self.pairs { Complex::new(2.0 * s.re, 0.0) } else { s }
    }

    /// x ← Ā x for system `hi` (the structured form of [`Dplr::bar`]).
    fn bar_in_place(&self, hi: usize, x: &mut [Complex<f64>]) {
        debug_assert!(hi < self.h);
        let (lam, p) = (&self.lambda[hi * self.n..][..self.n], &self.p[hi * self.n..][..self.n]);
        let hd = 0.5 * self.dt[hi];
        let d0: Vec<_> = lam.iter().map(|l| 1.0 - l * hd).collect();
        let pd: Vec<_> = p.iter().zip(&d0).map(|(p, d)| p / d).collect();
        let yd: Vec<_> = x.iter().zip(&d0).map(|(x, d)| x / d).collect();
        let coef = self.dot(p, &yd) * hd / (1.0 + self.dot(p, &pd) * hd);
        for i in 0..self.n {
            x[i] = 2.0 * (yd[i] - pd[i] * coef) - x[i];
        }
    }
}
