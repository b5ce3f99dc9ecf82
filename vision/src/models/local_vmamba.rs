//! LocalVMamba (Huang et al., "LocalMamba: Visual State Space Model with Windowed Selective
//! Scan", 2024; `local_vmamba.py` in hunto/LocalMamba): VMamba's hierarchy where each block's
//! SS2D reads the token grid in its own four directions, chosen per layer by the paper's
//! differentiable search from rows, columns, 2×2 windows and 7×7 windows, each forwards or
//! reversed (see [`super::scans::Scan`]), and gates each direction's output by a channel
//! attention (`BiAttn`) before they are summed:
//!
//! ```text
//! yₖ = selective-scan over the grid read in direction sₗ,ₖ      (k = 1 … 4, layer l)
//! y  = Σₖ unscan(σ(W₂ GELU(W₁ mean LN(yₖ))) ⊙ yₖ)
//! ```
//!
//! The directions are the released `local_vssm_tiny` search result (the search itself, a
//! DARTS-style relaxation over all eight directions on ImageNet, is not rerun here): this
//! CPU-sized two-stage model takes the first blocks of the tiny model's first two stages.

use super::InputShape;
use super::scans::Scan;
use super::vmamba::VmambaConfig;

/// `local_vssm_tiny`'s searched directions for its first two stages (2 blocks each).
const SEARCHED: [[&str; 4]; 4] = [
    ["h", "h_flip", "w7", "w7_flip"],
    ["h_flip", "v_flip", "w2", "w2_flip"],
    ["h_flip", "v_flip", "w2_flip", "w7"],
    ["h_flip", "v", "v_flip", "w2"],
];

/// VMamba's CPU-sized configuration with the searched local scans and the channel gates.
pub fn local_vmamba_config(input: InputShape, classes: usize) -> VmambaConfig {
    let directions = SEARCHED
        .iter()
        .map(|names| names.iter().map(|n| Scan::parse(n).expect("a LocalMamba direction name")).collect())
        .collect();
    VmambaConfig { directions, gate: true, ..VmambaConfig::new(input, classes) }
}
