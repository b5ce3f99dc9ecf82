//! The vision models behind one config and one module enum. Every model maps a batch of images
//! `[B, C, 1, H, W]` or clips `[B, C, T, H, W]` to class logits `[B, classes]`.
//!
//! * [`vim`] — Vision Mamba: patches, class token in the middle, bidirectional Mamba.
//! * [`vmamba`] — VMamba: SS2D four-direction cross-scan in a patch-merging hierarchy.
//! * [`s4nd`] — S4ND: per-axis S4D kernels, outer product, 2-D / 3-D FFT convolution.
//! * [`simba`] — SiMBA: Mamba token mixing and EinFFT channel mixing.
//! * [`plain_mamba`] — PlainMamba: one resolution, continuous snake scans, direction-aware B.
//! * [`local_vmamba`] — LocalVMamba: VMamba with searched per-layer local (windowed) scans.
//!
//! [`scans`] holds the scan orders they share.

pub mod local_vmamba;
pub mod plain_mamba;
pub mod s4nd;
pub mod scans;
pub mod simba;
pub mod vim;
pub mod vmamba;

pub use plain_mamba::{PlainMamba, PlainMambaConfig};
pub use s4nd::{S4nd, S4ndConfig};
pub use simba::{Simba, SimbaConfig};
pub use vim::{Vim, VimConfig, VimPool};
pub use vmamba::{Vmamba, VmambaConfig};

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, Conv3d, Conv3dConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use ssm_core::error::InvalidConfig;
use ssm_core::train::{Stats, Trainable};

/// The shape of one input: channels, frames (1 for images), height, width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputShape {
    pub channels: usize,
    pub frames: usize,
    pub height: usize,
    pub width: usize,
}

impl InputShape {
    pub fn image(channels: usize, height: usize, width: usize) -> Self {
        Self { channels, frames: 1, height, width }
    }
    pub fn is_video(&self) -> bool {
        self.frames > 1
    }
}

/// Names accepted by `VisionConfig::by_name`.
pub const MODEL_NAMES: &[&str] = &["vim", "vmamba", "s4nd", "simba", "plainmamba", "localvmamba"];

/// A serialisable model configuration, tagged by the model's name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum VisionConfig {
    Vim(VimConfig),
    Vmamba(VmambaConfig),
    S4nd(S4ndConfig),
    Simba(SimbaConfig),
    #[serde(rename = "plainmamba")]
    PlainMamba(PlainMambaConfig),
    /// LocalVMamba: a VMamba configuration with per-block directions and gates.
    #[serde(rename = "localvmamba")]
    LocalVmamba(VmambaConfig),
}

impl VisionConfig {
    /// The default configuration of the model called `name` (an error for unknown names or for
    /// image-only models given video).
    pub fn by_name(name: &str, input: InputShape, classes: usize) -> Result<Self, InvalidConfig> {
        let cfg = match name {
            "vim" => Self::Vim(VimConfig::new(input, classes)),
            "vmamba" => Self::Vmamba(VmambaConfig::new(input, classes)),
            "s4nd" => Self::S4nd(S4ndConfig::new(input, classes)),
            "simba" => Self::Simba(SimbaConfig::new(input, classes)),
            "plainmamba" => Self::PlainMamba(PlainMambaConfig::new(input, classes)),
            "localvmamba" => Self::LocalVmamba(local_vmamba::local_vmamba_config(input, classes)),
            other => return Err(InvalidConfig(format!("unknown model '{other}' (known: {})", MODEL_NAMES.join(", ")))),
        };
        if input.is_video() && !matches!(cfg, Self::Vim(_) | Self::S4nd(_)) {
            return Err(InvalidConfig(format!("model '{name}' is for images; video models: vim, s4nd")));
        }
        Ok(cfg)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Vim(_) => "vim",
            Self::Vmamba(_) => "vmamba",
            Self::S4nd(_) => "s4nd",
            Self::Simba(_) => "simba",
            Self::PlainMamba(_) => "plainmamba",
            Self::LocalVmamba(_) => "localvmamba",
        }
    }

    pub fn input(&self) -> InputShape {
        match self {
            Self::Vim(c) => c.input,
            Self::Vmamba(c) => c.input,
            Self::S4nd(c) => c.input,
            Self::Simba(c) => c.input,
            Self::PlainMamba(c) => c.input,
            Self::LocalVmamba(c) => c.input,
        }
    }

    pub fn classes(&self) -> usize {
        match self {
            Self::Vim(c) => c.classes,
            Self::Vmamba(c) => c.classes,
            Self::S4nd(c) => c.classes,
            Self::Simba(c) => c.classes,
            Self::PlainMamba(c) => c.classes,
            Self::LocalVmamba(c) => c.classes,
        }
    }

    /// Sets the model width (the first stage's for hierarchical models).
    pub fn set_width(&mut self, d: usize) {
        match self {
            Self::Vim(c) => c.d_model = d,
            Self::Vmamba(c) | Self::LocalVmamba(c) => c.dims = c.dims.iter().enumerate().map(|(i, _)| d << i).collect(),
            Self::S4nd(c) => c.d_model = d,
            Self::Simba(c) => c.dims = c.dims.iter().enumerate().map(|(i, _)| d << i).collect(),
            Self::PlainMamba(c) => c.d_model = d,
        }
    }

    /// Sets the depth (blocks per stage for hierarchical models).
    pub fn set_depth(&mut self, n: usize) {
        match self {
            Self::Vim(c) => c.depth = n,
            Self::Vmamba(c) | Self::LocalVmamba(c) => c.depths = vec![n; c.depths.len()],
            Self::S4nd(c) => c.depth = n,
            Self::Simba(c) => c.depths = vec![n; c.depths.len()],
            Self::PlainMamba(c) => c.depth = n,
        }
    }

    pub fn set_patch(&mut self, p: usize) {
        match self {
            Self::Vim(c) => c.patch = p,
            Self::Vmamba(c) | Self::LocalVmamba(c) => c.patch = p,
            Self::S4nd(c) => c.patch = p,
            Self::Simba(c) => c.patch = p,
            Self::PlainMamba(c) => c.patch = p,
        }
    }

    pub fn init(&self, device: &Device) -> VisionModel {
        match self {
            Self::Vim(c) => VisionModel::Vim(c.init(device)),
            Self::Vmamba(c) | Self::LocalVmamba(c) => VisionModel::Vmamba(c.init(device)),
            Self::S4nd(c) => VisionModel::S4nd(c.init(device)),
            Self::Simba(c) => VisionModel::Simba(c.init(device)),
            Self::PlainMamba(c) => VisionModel::PlainMamba(c.init(device)),
        }
    }
}

/// Any vision model.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum VisionModel {
    Vim(Vim),
    Vmamba(Vmamba),
    S4nd(S4nd),
    Simba(Simba),
    PlainMamba(PlainMamba),
}

impl VisionModel {
    /// `x` `[B, C, T, H, W]` → logits `[B, classes]`.
    pub fn forward(&self, x: Tensor<5>) -> Tensor<2> {
        match self {
            Self::Vim(m) => m.forward(x),
            Self::Vmamba(m) => m.forward(x),
            Self::S4nd(m) => m.forward(x),
            Self::Simba(m) => m.forward(x),
            Self::PlainMamba(m) => m.forward(x),
        }
    }

    /// Class probabilities `[B, classes]`.
    pub fn probabilities(&self, x: Tensor<5>) -> Tensor<2> {
        softmax(self.forward(x), 1)
    }

    pub fn parameter_count(&self) -> usize {
        self.num_params()
    }
}

/// Patch (or tubelet) embedding as a strided convolution, `proj` as in the papers' code:
/// `Conv2d(C, D, p, stride p)` for images, `Conv3d(C, D, (t, p, p), stride (t, p, p))` for video.
#[derive(Module, Debug)]
pub enum PatchProj {
    Image(Conv2d),
    Video(Conv3d),
}

#[derive(Module, Debug)]
pub struct PatchEmbed {
    pub proj: PatchProj,
}

impl PatchEmbed {
    pub fn new(input: InputShape, d: usize, patch: usize, tubelet: usize, device: &Device) -> Self {
        let c = input.channels;
        let proj = if input.is_video() {
            PatchProj::Video(
                Conv3dConfig::new([c, d], [tubelet, patch, patch]).with_stride([tubelet, patch, patch]).init(device),
            )
        } else {
            PatchProj::Image(Conv2dConfig::new([c, d], [patch, patch]).with_stride([patch, patch]).init(device))
        };
        Self { proj }
    }

    /// `[B, C, T, H, W]` → `[B, D, t, h, w]` (t = 1 for images).
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        match &self.proj {
            PatchProj::Image(conv) => {
                let [b, c, t, h, w] = x.dims();
                assert_eq!(t, 1, "an image model was given {t} frames");
                conv.forward(x.reshape([b, c, h, w])).unsqueeze_dim(2)
            }
            PatchProj::Video(conv) => conv.forward(x),
        }
    }
}

/// A labelled batch on a device.
#[derive(Debug, Clone)]
pub struct ImageBatch {
    /// `[B, C, T, H, W]`, normalised.
    pub x: Tensor<5>,
    pub labels: Vec<i64>,
}

impl ImageBatch {
    pub fn new(pixels: Vec<f32>, shape: [usize; 5], labels: Vec<i64>, device: &Device) -> Self {
        Self { x: Tensor::from_data(TensorData::new(pixels, shape), device), labels }
    }
}

pub use ssm_core::loss::classification_loss;

impl Trainable for VisionModel {
    type Batch = ImageBatch;
    fn loss(&self, b: &ImageBatch) -> (Tensor<1>, Stats) {
        let (l, s, _) = classification_loss(self.forward(b.x.clone()), &b.labels);
        (l, s)
    }
}

/// Predicted classes of a batch without gradients.
pub fn predict_classes(model: &VisionModel, x: Tensor<5>) -> Vec<i64> {
    let valid = if x.device().is_autodiff() { model.valid() } else { model.clone() };
    valid.forward(x).argmax(1).into_data().convert::<i64>().try_to_vec::<i64>().unwrap_or_default()
}

/// Global average over the spatial (and temporal) axes of `[B, D, t, h, w]` → `[B, D]`.
pub fn global_pool(x: Tensor<5>) -> Tensor<2> {
    let [b, d, t, h, w] = x.dims();
    x.reshape([b, d, t * h * w]).mean_dim(2).reshape([b, d])
}
