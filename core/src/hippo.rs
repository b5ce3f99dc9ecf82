//! HiPPO transition matrices (Gu, Dao, Ermon, Rudra & Ré, "HiPPO: Recurrent Memory with
//! Optimal Polynomial Projections", NeurIPS 2020, §2–3 and appendix D; the conventions of
//! state-spaces/s4 `src/models/hippo/hippo.py`, `transition()`: LegT without the later
//! "halve for timescale" factor, FouT as its `fout`), for x'(t) = A x(t) + B u(t):
//!
//! ```text
//! LegS  A_nk = −√(2n+1)√(2k+1) (n > k),  −(n+1) (n = k),  0 (n < k);       B_n = √(2n+1)
//! LegT  A_nk = −√(2n+1)√(2k+1) · (1 if n ≥ k, (−1)^{n−k} if n < k);      B_n = √(2n+1)
//! LagT  A_nk = −1 (n > k), −½ (n = k), 0 (n < k);                           B_n = 1
//! FouT  A = π(−diag(d, +1) + diag(d, −1)) − B Bᵀ,  d = (0, 0, 1, 0, 2, 0, 3, …);  B = (1, 0, √2, 0, √2, …)
//! ```
//!
//! and LegS's normal-plus-low-rank form (S4, §3.2 / `nplr`): A = S − P Pᵀ with P_n = √(n + ½)
//! and S = −½ I + (skew-symmetric), so S is normal and diagonalisable by a unitary matrix.

use nalgebra::{Complex, DMatrix};
use ndarray::{Array1, Array2};

/// The HiPPO measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Scaled Legendre (the whole history, uniformly).
    LegS,
    /// Translated Legendre (a sliding window).
    LegT,
    /// Translated Laguerre (an exponentially decaying history).
    LagT,
    /// Translated Fourier.
    FouT,
}

/// (A `[N, N]`, B `[N]`) of `measure` with N states.
pub fn transition(measure: Measure, n: usize) -> (Array2<f64>, Array1<f64>) {
    let r = |i: usize| (2.0 * i as f64 + 1.0).sqrt();
    match measure {
        Measure::LegS => {
            let a = Array2::from_shape_fn((n, n), |(i, k)| match i.cmp(&k) {
                std::cmp::Ordering::Greater => -r(i) * r(k),
                std::cmp::Ordering::Equal => -(i as f64 + 1.0),
                std::cmp::Ordering::Less => 0.0,
            });
            (a, Array1::from_shape_fn(n, r))
        }
        Measure::LegT => {
            let sign = |i: usize, k: usize| if i >= k || (k - i).is_multiple_of(2) { 1.0 } else { -1.0 };
            let a = Array2::from_shape_fn((n, n), |(i, k)| -r(i) * r(k) * sign(i, k));
            (a, Array1::from_shape_fn(n, r))
        }
        Measure::LagT => {
            let a = Array2::from_shape_fn((n, n), |(i, k)| match i.cmp(&k) {
                std::cmp::Ordering::Greater => -1.0,
                std::cmp::Ordering::Equal => -0.5,
                std::cmp::Ordering::Less => 0.0,
            });
            (a, Array1::ones(n))
        }
        Measure::FouT => {
            // d_j couples states j and j+1: frequency j/2 for even j (the pair (2f, 2f+1)), else 0.
            let d = |j: usize| if j.is_multiple_of(2) { (j / 2) as f64 } else { 0.0 };
            let b = Array1::from_shape_fn(n, |i| {
                if i == 0 {
                    1.0
                } else if i % 2 == 1 {
                    0.0
                } else {
                    2f64.sqrt()
                }
            });
            let a = Array2::from_shape_fn((n, n), |(i, k)| {
                let rot = if k == i + 1 {
                    -d(i)
                } else if i == k + 1 {
                    d(k)
                } else {
                    0.0
                };
                std::f64::consts::PI * rot - b[i] * b[k]
            });
            (a, b)
        }
    }
}

/// LegS as normal plus low rank: (S, P) with A = S − P Pᵀ, P_n = √(n + ½) and S = −½ I + a
/// skew-symmetric matrix.
pub fn legs_nplr(n: usize) -> (Array2<f64>, Array1<f64>) {
    let (a, _) = transition(Measure::LegS, n);
    let p = Array1::from_shape_fn(n, |i| (i as f64 + 0.5).sqrt());
    let pp = Array2::from_shape_fn((n, n), |(i, k)| p[i] * p[k]);
    (a + pp, p)
}

/// The diagonalised normal part of LegS ("HiPPO-N", used by S4, S4D-LegS and S5): the
/// eigenvalues of S with positive imaginary part, −½ + iω, as the ascending ω (N/2 of them), and
/// their unit eigenvectors as the columns of V `[N, N/2]`. S = −½I + K with K skew-symmetric, so
/// −iK is Hermitian and V comes from its symmetric eigendecomposition.
pub fn legs_normal_eig(n: usize) -> (Vec<f64>, DMatrix<Complex<f64>>) {
    let (s, _) = legs_nplr(n);
    let h = DMatrix::from_fn(n, n, |i, k| {
        let skew = if i == k { 0.0 } else { s[[i, k]] };
        Complex::new(0.0, -skew)
    });
    let eig = h.symmetric_eigen();
    let mut order: Vec<usize> = (0..n).filter(|&j| eig.eigenvalues[j] > 0.0).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[a].total_cmp(&eig.eigenvalues[b]));
    order.truncate(n / 2);
    let v = DMatrix::from_fn(n, order.len(), |i, j| eig.eigenvectors[(i, order[j])]);
    (order.iter().map(|&j| eig.eigenvalues[j]).collect(), v)
}
