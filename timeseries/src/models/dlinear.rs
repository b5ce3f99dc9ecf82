//! DLinear (Zeng et al., "Are Transformers Effective for Time Series Forecasting?"): a
//! moving-average decomposition and two linear maps over time, shared by all variables:
//!
//! ```text
//! trend    = AvgPool_k(pad_replicate(x))          (kernel k = 25, stride 1)
//! seasonal = x − trend
//! ŷ        = Linear_Seasonal(seasonal) + Linear_Trend(trend)     (L → H, per variable)
//! ```
//!
//! The moving average is linear in x, so it is one `[L, L]` matrix (replicate padding folded
//! in) applied by matmul.

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DLinearConfig {
    pub lookback: usize,
    pub horizon: usize,
    pub kernel: usize,
}

/// The `[L, L]` matrix A with `trend = A · x` (rows: output time, columns: input time).
pub fn moving_average_matrix(l: usize, k: usize) -> Vec<f32> {
    let half = (k - 1) / 2;
    let mut a = vec![0f32; l * l];
    for t in 0..l {
        for j in 0..k {
            // padded index t + j ↦ original index clamp(t + j − half)
            let src = (t + j).saturating_sub(half).min(l - 1);
            a[t * l + src] += 1.0 / k as f32;
        }
    }
    a
}

impl DLinearConfig {
    pub fn init(&self, device: &Device) -> DLinear {
        let (l, h) = (self.lookback, self.horizon);
        // DLinear initialises both maps to the average (1/L) so the first forecast is the mean.
        let lin =
            || LinearConfig::new(l, h).with_initializer(Initializer::Constant { value: 1.0 / l as f64 }).init(device);
        let a = Tensor::<2>::from_data(TensorData::new(moving_average_matrix(l, self.kernel), [l, l]), device);
        DLinear { linear_seasonal: lin(), linear_trend: lin(), trend: Param::from_tensor(a).set_require_grad(false) }
    }
}

#[derive(Module, Debug)]
pub struct DLinear {
    pub linear_seasonal: Linear,
    pub linear_trend: Linear,
    /// The moving-average matrix (not trained).
    pub trend: Param<Tensor<2>>,
}

impl DLinear {
    /// (seasonal, trend) of `x` `[B, L, V]`.
    pub fn decompose(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let [b, l, v] = x.dims();
        let a = self.trend.val().unsqueeze_dim::<3>(0).expand([b, l, l]);
        let trend = a.matmul(x.clone());
        let _ = v;
        (x - trend.clone(), trend)
    }

    /// `x` `[B, L, V]` → `[B, H, V]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let (s, t) = self.decompose(x);
        let out = self.linear_seasonal.forward(s.swap_dims(1, 2)) + self.linear_trend.forward(t.swap_dims(1, 2));
        out.swap_dims(1, 2)
    }
}
