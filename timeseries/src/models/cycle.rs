//! Residual Cycle Forecasting (RCF; Lin et al., "CycleNet: Enhancing Time Series Forecasting
//! through Modeling Periodic Patterns", NeurIPS 2024; checked against `RecurrentCycle` in the
//! released `models/CycleNet.py`): a learnable cycle `Q ∈ ℝ^{W×V}` (W: the period in rows, V:
//! the variables), zero at initialisation, is taken out of the lookback and put back into the
//! forecast, so the backbone models what the cycle leaves:
//!
//! ```text
//! x̃        = (x − μ) / σ                        (per window and variable, over the lookback)
//! c_t      = Q[t mod W]                          (t: the row's index in the whole table)
//! ŷ_{t₀+L+k} = (f(x̃ − c_{t₀…t₀+L−1})_k + c_{t₀+L+k}) · σ + μ      (k = 0 … H−1)
//! ```
//!
//! CycleNet normalises each window first (RevIN without affine), so Q holds the cycle in
//! normalised units; the backbone `f` may normalise again (S-Mamba does), which is harmless.
//! Q is trained with the backbone, end to end, like every other parameter. Row indices are
//! counted from the table's first row, so one phase means one time of day in every split.

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};

/// The learnable cycle `Q` `[W, V]`.
#[derive(Module, Debug)]
pub struct Cycle {
    pub q: Param<Tensor<2>>,
}

impl Cycle {
    /// A zero cycle of `period` rows over `vars` variables (CycleNet's initialisation).
    pub fn new(period: usize, vars: usize, device: &Device) -> Self {
        assert!(period >= 1 && vars >= 1, "a cycle needs a period and variables");
        Self { q: Param::from_tensor(Tensor::zeros([period, vars], device)) }
    }

    pub fn period(&self) -> usize {
        self.q.dims()[0]
    }

    /// `[B, len, V]`: `Q[(s + offset + k) mod W]` for each window start row `s` and k < len.
    pub fn at(&self, starts: &[usize], offset: usize, len: usize) -> Tensor<3> {
        let [w, v] = self.q.dims();
        let idx: Vec<i64> = starts.iter().flat_map(|&s| (0..len).map(move |k| ((s + offset + k) % w) as i64)).collect();
        let n = idx.len();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [n]), &self.q.device());
        self.q.val().select(0, idx).reshape([starts.len(), len, v])
    }
}
