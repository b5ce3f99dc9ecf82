//! Causal depthwise 1-D convolution, as PyTorch's `Conv1d(groups = channels, padding = K−1)`
//! truncated to the first L outputs: `y[c, t] = bias[c] + Σ_j w[c, j] · x[c, t − (K−1) + j]`.
//! Its recurrent state is the last K−1 inputs, so a step is the same call with L = 1.

use crate::kernels::{bias_silu, causal_conv_history};
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

/// Depthwise causal convolution parameters.
#[derive(Module, Debug)]
pub struct DepthwiseConv1d {
    /// `[channels, 1, kernel]`
    pub weight: Param<Tensor<3>>,
    pub bias: Option<Param<Tensor<1>>>,
}

impl DepthwiseConv1d {
    /// PyTorch's `Conv1d` default init: weight and bias ~ U(±1/√kernel).
    pub fn init(channels: usize, kernel: usize, bias: bool, device: &Device) -> Self {
        let b = 1.0 / (kernel as f64).sqrt();
        let u = Initializer::Uniform { min: -b, max: b };
        Self { weight: u.init([channels, 1, kernel], device), bias: bias.then(|| u.init([channels], device)) }
    }

    pub fn kernel(&self) -> usize {
        self.weight.dims()[2]
    }

    /// The state before any input: K−1 zeros per channel, `[B, C, K−1]`.
    pub fn init_history(&self, batch: usize, device: &Device) -> Tensor<3> {
        Tensor::zeros([batch, self.weight.dims()[0], self.kernel() - 1], device)
    }

    /// Causal convolution of `x` `[B, C, L]` preceded by `history` `[B, C, K−1]` (zeros when
    /// `None`); returns the output `[B, C, L]` and the new history (the last K−1 inputs). It runs
    /// as one causal-convolution kernel call with k[c, s] = w[c, K−1−s] (direct sums for short K).
    pub fn forward(&self, x: Tensor<3>, history: Option<Tensor<3>>) -> (Tensor<3>, Tensor<3>) {
        let (y, new_history) = self.conv(x, history);
        match &self.bias {
            Some(bias) => (y + bias.val().reshape([1, bias.dims()[0], 1]), new_history),
            None => (y, new_history),
        }
    }

    /// [`Self::forward`] followed by silu, `silu(conv(x) + bias)`, the bias add and the
    /// activation fused into one kernel ([`bias_silu`]).
    pub fn forward_silu(&self, x: Tensor<3>, history: Option<Tensor<3>>) -> (Tensor<3>, Tensor<3>) {
        let (y, new_history) = self.conv(x, history);
        (bias_silu(y, self.bias.as_ref().map(|b| b.val())), new_history)
    }

    /// The convolution without its bias.
    fn conv(&self, x: Tensor<3>, history: Option<Tensor<3>>) -> (Tensor<3>, Tensor<3>) {
        let [b, c, l] = x.dims();
        let k = self.kernel();
        let w = self.weight.val().reshape([c, k]);
        let (y, new_history) = if k == 1 {
            let empty = history.unwrap_or_else(|| self.init_history(b, &x.device()));
            (x * w.reshape([1, c, 1]), empty)
        } else {
            causal_conv_history(x, w.flip([1]), history)
        };
        debug_assert_eq!(y.dims(), [b, c, l]);
        (y, new_history)
    }
}
