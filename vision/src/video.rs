//! Video data: a seeded **moving-digits** generator (Moving-MNIST style: two digits bouncing in
//! a square frame), so video models can be trained and tested without a video corpus.
//!
//! Each clip draws two digits from an [`ImageSet`], a start position and a velocity for each;
//! positions advance by the velocity every frame and reflect off the borders; the frame is the
//! pixel-wise maximum of the two digits. The label is the pair's sum (19 classes) or the larger
//! digit's class.

use crate::data::ImageSet;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What a moving-digits clip is labelled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ClipLabel {
    /// Sum of the two digits' classes (classes 0 … 2·(k−1)).
    Sum,
    /// The larger of the two digits' classes (order-free, so a model can tell it from the clip).
    Larger,
}

#[derive(Debug, Clone)]
pub struct MovingDigits {
    pub frames: usize,
    pub size: usize,
    pub label: ClipLabel,
}

/// A clip: `frames × size × size` u8 pixels and its label.
#[derive(Debug, Clone)]
pub struct Clip {
    pub pixels: Vec<u8>,
    pub label: u32,
}

impl MovingDigits {
    pub fn new(frames: usize, size: usize, label: ClipLabel) -> Self {
        Self { frames, size, label }
    }

    pub fn classes(&self, digits: &ImageSet) -> usize {
        match self.label {
            ClipLabel::Sum => 2 * digits.classes - 1,
            ClipLabel::Larger => digits.classes,
        }
    }

    /// Clip number `index` of the stream with `seed` (deterministic in both).
    pub fn clip(&self, digits: &ImageSet, seed: u64, index: u64) -> Clip {
        assert!(digits.channels == 1 && !digits.is_empty(), "moving digits need grey images");
        let (h, w) = (digits.height, digits.width);
        assert!(self.size >= h.max(w), "frame {} smaller than a digit {h}×{w}", self.size);
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index);
        let picks = [rng.random_range(0..digits.len()), rng.random_range(0..digits.len())];
        let span = [(self.size - h) as f64, (self.size - w) as f64];
        let mut pos: Vec<[f64; 2]> =
            (0..2).map(|_| [rng.random_range(0.0..=span[0]), rng.random_range(0.0..=span[1])]).collect();
        let mut vel: Vec<[f64; 2]> = (0..2)
            .map(|_| {
                let a = rng.random_range(0.0..std::f64::consts::TAU);
                let s = rng.random_range(2.0..4.0);
                [s * a.sin(), s * a.cos()]
            })
            .collect();
        let mut pixels = vec![0u8; self.frames * self.size * self.size];
        for t in 0..self.frames {
            let frame = &mut pixels[t * self.size * self.size..(t + 1) * self.size * self.size];
            for (k, &i) in picks.iter().enumerate() {
                let img = &digits.pixels[i * h * w..(i + 1) * h * w];
                let (y0, x0) = (pos[k][0].round() as usize, pos[k][1].round() as usize);
                for y in 0..h {
                    for x in 0..w {
                        let o = &mut frame[(y0 + y) * self.size + x0 + x];
                        *o = (*o).max(img[y * w + x]);
                    }
                }
                for d in 0..2 {
                    pos[k][d] += vel[k][d];
                    if pos[k][d] < 0.0 {
                        pos[k][d] = -pos[k][d];
                        vel[k][d] = -vel[k][d];
                    }
                    if pos[k][d] > span[d] {
                        pos[k][d] = 2.0 * span[d] - pos[k][d];
                        vel[k][d] = -vel[k][d];
                    }
                    pos[k][d] = pos[k][d].clamp(0.0, span[d]);
                }
            }
        }
        let (a, b) = (digits.labels[picks[0]], digits.labels[picks[1]]);
        let label = match self.label {
            ClipLabel::Sum => a + b,
            ClipLabel::Larger => a.max(b),
        };
        Clip { pixels, label }
    }
}
