//! Classical state-space basics — the survey's opening sections, outside burn's graph: the
//! continuous linear time-invariant system
//!
//! ```text
//! x'(t) = A x(t) + B u(t),   y(t) = C x(t) + D u(t)
//! ```
//!
//! its discretisation with step Δ (zero-order hold Ā = e^{ΔA}, B̄ = A⁻¹(e^{ΔA} − I)B — computed
//! as one exponential of the block matrix [[A, B], [0, 0]]Δ so A may be singular; bilinear
//! Ā = (I − ΔA/2)⁻¹(I + ΔA/2), B̄ = (I − ΔA/2)⁻¹ΔB; forward Euler Ā = I + ΔA, B̄ = ΔB), simulation
//! x_{k+1} = Ā x_k + B̄ u_k, stability by eigenvalues (Re λ < 0 continuous, |λ| < 1 discrete), the
//! spring–mass–damper example, and the Kalman filter with the Rauch–Tung–Striebel smoother for
//! x_{k+1} = F x_k + w, y_k = H x_k + v, w ~ N(0, Q), v ~ N(0, R).
//!
//! Matrices are `ndarray` arrays; the matrix exponential, linear solves and eigenvalues are
//! nalgebra's (ndarray has no decompositions without a LAPACK).

use nalgebra::{Complex, DMatrix};
use ndarray::{Array1, Array2, ArrayView1, Axis, s};

/// What can be wrong with a system or its data.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LtiError {
    #[error("{what} is {got:?}, expected {expected:?}")]
    Shape { what: &'static str, got: Vec<usize>, expected: Vec<usize> },
    #[error("{0} is singular")]
    Singular(&'static str),
    #[error("the step Δ must be positive and finite, got {0}")]
    Step(f64),
}

fn to_na(a: &Array2<f64>) -> DMatrix<f64> {
    DMatrix::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]])
}

fn from_na(m: &DMatrix<f64>) -> Array2<f64> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
}

fn check(what: &'static str, a: &Array2<f64>, expected: [usize; 2]) -> Result<(), LtiError> {
    if a.shape() == expected {
        Ok(())
    } else {
        Err(LtiError::Shape { what, got: a.shape().to_vec(), expected: expected.to_vec() })
    }
}

/// (I − M)⁻¹ N.
fn solve(m: &Array2<f64>, n: &Array2<f64>, what: &'static str) -> Result<Array2<f64>, LtiError> {
    let i = DMatrix::identity(m.nrows(), m.nrows());
    (i - to_na(m)).lu().solve(&to_na(n)).map(|x| from_na(&x)).ok_or(LtiError::Singular(what))
}

/// How a continuous system becomes a discrete one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discretisation {
    Zoh,
    Bilinear,
    Euler,
}

/// A system (A, B, C, D): n states, m inputs, p outputs. Continuous or discrete by context.
#[derive(Debug, Clone, PartialEq)]
pub struct Lti {
    pub a: Array2<f64>,
    pub b: Array2<f64>,
    pub c: Array2<f64>,
    pub d: Array2<f64>,
}

impl Lti {
    /// Checks that A is n×n, B n×m, C p×n and D p×m.
    pub fn new(a: Array2<f64>, b: Array2<f64>, c: Array2<f64>, d: Array2<f64>) -> Result<Self, LtiError> {
        let (n, m, p) = (a.nrows(), b.ncols(), c.nrows());
        check("A", &a, [n, n])?;
        check("B", &b, [n, m])?;
        check("C", &c, [p, n])?;
        check("D", &d, [p, m])?;
        Ok(Self { a, b, c, d })
    }

    /// Mass m on a spring k with damping c, driven by a force: state (position, velocity),
    /// output the position. Natural frequency ω = √(k/m), damping ratio ζ = c / (2√(km)).
    pub fn spring_mass_damper(mass: f64, k: f64, c: f64) -> Self {
        let a = ndarray::array![[0.0, 1.0], [-k / mass, -c / mass]];
        let b = ndarray::array![[0.0], [1.0 / mass]];
        Self { a, b, c: ndarray::array![[1.0, 0.0]], d: ndarray::array![[0.0]] }
    }

    pub fn states(&self) -> usize {
        self.a.nrows()
    }

    /// Eigenvalues of A.
    pub fn eigenvalues(&self) -> Vec<Complex<f64>> {
        to_na(&self.a).complex_eigenvalues().iter().copied().collect()
    }

    /// Continuous-time stability: every eigenvalue of A in the open left half-plane.
    pub fn is_stable_continuous(&self) -> bool {
        self.eigenvalues().iter().all(|l| l.re < 0.0)
    }

    /// Discrete-time stability: every eigenvalue of Ā inside the unit circle.
    pub fn is_stable_discrete(&self) -> bool {
        self.eigenvalues().iter().all(|l| l.norm() < 1.0)
    }

    /// The discrete system (Ā, B̄, C, D) for step `dt`.
    pub fn discretise(&self, dt: f64, method: Discretisation) -> Result<Lti, LtiError> {
        if !(dt > 0.0 && dt.is_finite()) {
            return Err(LtiError::Step(dt));
        }
        let (n, m) = (self.states(), self.b.ncols());
        let (ad, bd) = match method {
            Discretisation::Zoh => {
                let mut block = Array2::zeros((n + m, n + m));
                block.slice_mut(s![..n, ..n]).assign(&(&self.a * dt));
                block.slice_mut(s![..n, n..]).assign(&(&self.b * dt));
                let e = from_na(&to_na(&block).exp());
                (e.slice(s![..n, ..n]).to_owned(), e.slice(s![..n, n..]).to_owned())
            }
            Discretisation::Bilinear => {
                let half = &self.a * (dt / 2.0);
                let plus = Array2::eye(n) + &half;
                (solve(&half, &plus, "I − ΔA/2")?, solve(&half, &(&self.b * dt), "I − ΔA/2")?)
            }
            Discretisation::Euler => (Array2::eye(n) + &self.a * dt, &self.b * dt),
        };
        Ok(Lti { a: ad, b: bd, c: self.c.clone(), d: self.d.clone() })
    }

    /// Runs the discrete system from `x0` on inputs `u` `[T, m]`: states `[T + 1, n]` (x_0 … x_T)
    /// and outputs `[T, p]`.
    pub fn simulate(&self, x0: &Array1<f64>, u: &Array2<f64>) -> Result<(Array2<f64>, Array2<f64>), LtiError> {
        let (n, m) = (self.states(), self.b.ncols());
        if x0.len() != n {
            return Err(LtiError::Shape { what: "x0", got: vec![x0.len()], expected: vec![n] });
        }
        check("inputs", u, [u.nrows(), m])?;
        let mut xs = Array2::zeros((u.nrows() + 1, n));
        let mut ys = Array2::zeros((u.nrows(), self.c.nrows()));
        xs.row_mut(0).assign(x0);
        for (k, uk) in u.axis_iter(Axis(0)).enumerate() {
            let x = xs.row(k).to_owned();
            ys.row_mut(k).assign(&(self.c.dot(&x) + self.d.dot(&uk)));
            xs.row_mut(k + 1).assign(&(self.a.dot(&x) + self.b.dot(&uk)));
        }
        Ok((xs, ys))
    }
}

/// A linear-Gaussian state-space model for filtering: x_{k+1} = F x_k + w, y_k = H x_k + v.
#[derive(Debug, Clone, PartialEq)]
pub struct Kalman {
    pub f: Array2<f64>,
    pub h: Array2<f64>,
    pub q: Array2<f64>,
    pub r: Array2<f64>,
}

/// Filtered and one-step predicted moments of every step, and the log-likelihood of the data.
#[derive(Debug, Clone)]
pub struct Filtered {
    /// E[x_k | y_0..k] `[T, n]` and their covariances.
    pub mean: Array2<f64>,
    pub cov: Vec<Array2<f64>>,
    /// E[x_k | y_0..k−1] and covariances (the prior of step k).
    pub pred_mean: Array2<f64>,
    pub pred_cov: Vec<Array2<f64>>,
    pub log_likelihood: f64,
    /// Σ_k v_kᵀ S_k⁻¹ v_k over the observed steps (v the innovations, S their covariances).
    pub sum_sq: f64,
}

type Update = (Array1<f64>, Array2<f64>, f64, f64);

impl Kalman {
    pub fn new(f: Array2<f64>, h: Array2<f64>, q: Array2<f64>, r: Array2<f64>) -> Result<Self, LtiError> {
        let (n, p) = (f.nrows(), h.nrows());
        check("F", &f, [n, n])?;
        check("H", &h, [p, n])?;
        check("Q", &q, [n, n])?;
        check("R", &r, [p, p])?;
        Ok(Self { f, h, q, r })
    }

    /// The local linear trend: level ℓ and slope b, ℓ_{k+1} = ℓ_k + b_k + η, b_{k+1} = b_k + ζ,
    /// y_k = ℓ_k + ε, with variances `q_level`, `q_slope`, `r`.
    pub fn local_linear_trend(q_level: f64, q_slope: f64, r: f64) -> Self {
        Self {
            f: ndarray::array![[1.0, 1.0], [0.0, 1.0]],
            h: ndarray::array![[1.0, 0.0]],
            q: ndarray::array![[q_level, 0.0], [0.0, q_slope]],
            r: ndarray::array![[r]],
        }
    }

    /// Filters `ys` `[T, p]` from the prior N(x0, p0); a row containing NaN is a missing
    /// observation (the step only predicts).
    pub fn filter(&self, x0: &Array1<f64>, p0: &Array2<f64>, ys: &Array2<f64>) -> Result<Filtered, LtiError> {
        let n = self.f.nrows();
        check("P0", p0, [n, n])?;
        check("observations", ys, [ys.nrows(), self.h.nrows()])?;
        let t = ys.nrows();
        let mut out = Filtered {
            mean: Array2::zeros((t, n)),
            cov: Vec::with_capacity(t),
            pred_mean: Array2::zeros((t, n)),
            pred_cov: Vec::with_capacity(t),
            log_likelihood: 0.0,
            sum_sq: 0.0,
        };
        let (mut x, mut p) = (x0.clone(), p0.clone());
        for (k, y) in ys.axis_iter(Axis(0)).enumerate() {
            out.pred_mean.row_mut(k).assign(&x);
            out.pred_cov.push(p.clone());
            if y.iter().all(|v| v.is_finite()) {
                let (xu, pu, ll, maha) = self.update(&x, &p, y)?;
                (x, p) = (xu, pu);
                out.log_likelihood += ll;
                out.sum_sq += maha;
            }
            out.mean.row_mut(k).assign(&x);
            out.cov.push(p.clone());
            x = self.f.dot(&x);
            p = self.f.dot(&p).dot(&self.f.t()) + &self.q;
        }
        Ok(out)
    }

    /// The measurement update of N(x, P) by y: posterior moments, log N(y; Hx, S) and vᵀS⁻¹v.
    fn update(&self, x: &Array1<f64>, p: &Array2<f64>, y: ArrayView1<f64>) -> Result<Update, LtiError> {
        let innov = &y - &self.h.dot(x);
        let s = self.h.dot(p).dot(&self.h.t()) + &self.r;
        let chol = to_na(&s).cholesky().ok_or(LtiError::Singular("the innovation covariance"))?;
        let ph = p.dot(&self.h.t());
        let gain = from_na(&chol.solve(&to_na(&ph).transpose())).reversed_axes(); // P Hᵀ S⁻¹
        let sv = chol.solve(&DMatrix::from_iterator(innov.len(), 1, innov.iter().copied()));
        let maha: f64 = innov.iter().zip(sv.iter()).map(|(a, b)| a * b).sum();
        let log_det = 2.0 * chol.l().diagonal().iter().map(|d| d.ln()).sum::<f64>();
        let ll = -0.5 * (maha + log_det + innov.len() as f64 * (2.0 * std::f64::consts::PI).ln());
        let x_post = x + &gain.dot(&innov);
        let i_kh = Array2::eye(x.len()) - gain.dot(&self.h);
        // Joseph form: stays symmetric positive semi-definite.
        let p_post = i_kh.dot(p).dot(&i_kh.t()) + gain.dot(&self.r).dot(&gain.t());
        Ok((x_post, p_post, ll, maha))
    }

    /// Rauch–Tung–Striebel smoothing of a filter run: E[x_k | all y] and covariances.
    pub fn smooth(&self, f: &Filtered) -> Result<(Array2<f64>, Vec<Array2<f64>>), LtiError> {
        let t = f.mean.nrows();
        let mut mean = f.mean.clone();
        let mut cov = f.cov.clone();
        for k in (0..t.saturating_sub(1)).rev() {
            let pred = &f.pred_cov[k + 1];
            let pf = f.cov[k].dot(&self.f.t());
            // G = P_k Fᵀ P_{k+1|k}⁻¹
            let g = from_na(
                &to_na(pred)
                    .lu()
                    .solve(&to_na(&pf).transpose())
                    .ok_or(LtiError::Singular("the predicted covariance"))?,
            )
            .reversed_axes();
            let dm = &mean.row(k + 1) - &f.pred_mean.row(k + 1);
            let m = &f.mean.row(k) + &g.dot(&dm);
            mean.row_mut(k).assign(&m);
            cov[k] = &f.cov[k] + &g.dot(&(&cov[k + 1] - pred)).dot(&g.t());
        }
        Ok((mean, cov))
    }

    /// Means of the next `h` observations after a filter state N(x, ·) (x = the filtered mean of
    /// the last step).
    pub fn forecast(&self, x: &Array1<f64>, h: usize) -> Array2<f64> {
        let mut out = Array2::zeros((h, self.h.nrows()));
        let mut x = x.clone();
        for k in 0..h {
            x = self.f.dot(&x);
            out.row_mut(k).assign(&self.h.dot(&x));
        }
        out
    }
}
