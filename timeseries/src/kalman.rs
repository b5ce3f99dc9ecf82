//! The classical baseline: a Kalman filter on a local linear trend per target variable
//! (level ℓ and slope b: ℓ_{k+1} = ℓ_k + b_k + η, b_{k+1} = b_k + ζ, y_k = ℓ_k + ε), with the
//! three noise variances fitted by maximum likelihood on the training split, forecasting each
//! window from its lookback alone (filter over the lookback, then ℓ + k·b for k = 1 … H).
//!
//! The fit maximises the concentrated likelihood: with the variances written as r·(1, q_ℓ, q_b),
//! r has the closed form r̂ = (1/T) Σ v_t² / F_t for given ratios (v_t the innovations, F_t their
//! variances at r = 1), so only the two ratios are searched, on a log grid.

use crate::data::Segment;
use ndarray::{Array1, Array2};
use ssm_core::lti::Kalman;

/// The `--model` name of this baseline.
pub const NAME: &str = "kalman";

/// Fitted noise variances of one variable.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct TrendNoise {
    pub q_level: f64,
    pub q_slope: f64,
    pub r: f64,
    /// Log-likelihood of the training series at these values.
    pub log_likelihood: f64,
}

/// One fitted local-linear-trend model per target variable of a segment.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KalmanForecaster {
    /// Indices of the forecast variables in the segment, and their fitted noise.
    pub targets: Vec<usize>,
    pub noise: Vec<TrendNoise>,
}

/// The prior of a window: level at the first value, slope 0, both nearly unknown.
fn prior(first: f64) -> (Array1<f64>, Array2<f64>) {
    (Array1::from(vec![first, 0.0]), Array2::eye(2) * 1e3)
}

fn series(seg: &Segment, v: usize, rows: std::ops::Range<usize>) -> Array2<f64> {
    Array2::from_shape_fn((rows.len(), 1), |(i, _)| seg.values[(rows.start + i) * seg.vars + v] as f64)
}

/// The concentrated log-likelihood of `y` at ratios (q_ℓ, q_b), and r̂.
fn concentrated(y: &Array2<f64>, q_level: f64, q_slope: f64) -> (f64, f64) {
    let kf = Kalman::local_linear_trend(q_level, q_slope, 1.0);
    let (x0, p0) = prior(y[[0, 0]]);
    let Ok(f) = kf.filter(&x0, &p0, y) else { return (f64::NEG_INFINITY, 1.0) };
    let t = y.nrows() as f64;
    let r = (f.sum_sq / t).max(1e-12);
    // log L(r) = log L(1) + S/2 − (T/2) log r − T/2 at r = r̂ = S / T.
    (f.log_likelihood + 0.5 * f.sum_sq - 0.5 * t * r.ln() - 0.5 * t, r)
}

impl KalmanForecaster {
    /// Fits each target variable of `train` (at most `max_rows` of its last rows).
    pub fn fit(train: &Segment, max_rows: usize) -> Self {
        let start = train.rows.saturating_sub(max_rows);
        let grid = |lo: i32, hi: i32| (lo..=hi).map(|e| 10f64.powi(e)).collect::<Vec<_>>();
        let (levels, slopes) = (grid(-4, 4), grid(-14, -1));
        let noise = train
            .targets
            .iter()
            .map(|&v| {
                let y = series(train, v, start..train.rows);
                let mut best = TrendNoise { q_level: 0.0, q_slope: 0.0, r: 1.0, log_likelihood: f64::NEG_INFINITY };
                for &ql in &levels {
                    for &qs in &slopes {
                        let (ll, r) = concentrated(&y, ql, qs);
                        if ll > best.log_likelihood {
                            best = TrendNoise { q_level: ql * r, q_slope: qs * r, r, log_likelihood: ll };
                        }
                    }
                }
                best
            })
            .collect();
        Self { targets: train.targets.clone(), noise }
    }

    /// The forecast `[h]` of target `i` from its lookback values.
    pub fn forecast(&self, i: usize, lookback: &Array2<f64>, h: usize) -> Vec<f64> {
        let n = self.noise[i];
        let kf = Kalman::local_linear_trend(n.q_level, n.q_slope, n.r);
        let (x0, p0) = prior(lookback[[0, 0]]);
        match kf.filter(&x0, &p0, lookback) {
            Ok(f) => kf.forecast(&f.mean.row(lookback.nrows() - 1).to_owned(), h).column(0).to_vec(),
            Err(_) => vec![lookback[[lookback.nrows() - 1, 0]]; h],
        }
    }

    /// Test MSE and MAE (z-scored, over every window and target) and the number of windows.
    pub fn metrics(&self, seg: &Segment, l: usize, h: usize) -> (f64, f64, usize) {
        let n = seg.windows(l, h);
        let (mut se, mut ae, mut count) = (0f64, 0f64, 0usize);
        for w in 0..n {
            for (i, &v) in self.targets.iter().enumerate() {
                let pred = self.forecast(i, &series(seg, v, w..w + l), h);
                for (k, p) in pred.iter().enumerate() {
                    let d = p - seg.values[(w + l + k) * seg.vars + v] as f64;
                    se += d * d;
                    ae += d.abs();
                    count += 1;
                }
            }
        }
        (se / count.max(1) as f64, ae / count.max(1) as f64, n)
    }
}
