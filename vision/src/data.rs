//! Image datasets in memory: MNIST / Fashion-MNIST idx files (`*-idx3-ubyte` images,
//! `*-idx1-ubyte` labels, `.gz` or plain) and pixel CSVs (`mnist_5k.csv.gz`: pixels then label);
//! per-channel normalisation, seeded shuffling, random crop (zero padding) and horizontal flip.
//!
//! idx format: big-endian magic `0x0000 08 ND` (type 0x08 = u8, ND dimensions), ND big-endian
//! u32 sizes, then the values.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ssm_core::data::EpochOrder;
use std::io::Read;
use std::path::Path;

/// The classes of [`ImageSet::shapes`].
pub const SHAPE_CLASSES: [&str; 4] = ["square", "frame", "disc", "cross"];

/// A data problem, naming the file.
pub use ssm_core::error::FileError as DataError;
use ssm_core::error::FileError;

/// Reads a file, gunzipping when it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|e| FileError::new(path, e.to_string()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| FileError::new(path, format!("corrupt gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// An idx file: its dimensions and u8 values.
pub fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let bytes = read_maybe_gz(path)?;
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(FileError::new(path, "not an idx file (bad magic number)"));
    }
    if bytes[2] != 0x08 {
        return Err(FileError::new(
            path,
            format!("idx element type 0x{:02x} is not supported (only u8, 0x08)", bytes[2]),
        ));
    }
    let nd = bytes[3] as usize;
    let header = 4 + 4 * nd;
    if nd == 0 || bytes.len() < header {
        return Err(FileError::new(path, "truncated idx header"));
    }
    let dims: Vec<usize> =
        (0..nd).map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize).collect();
    let n = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).unwrap_or(usize::MAX);
    if bytes.len() - header != n {
        return Err(FileError::new(
            path,
            format!("idx dimensions {dims:?} need {n} values, the file has {}", bytes.len() - header),
        ));
    }
    Ok((dims, bytes[header..].to_vec()))
}

/// Images `[N, C, H, W]` (or clips `[N, C, T, H, W]`) as u8 and their labels.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pub pixels: Vec<u8>,
    pub labels: Vec<u32>,
    pub channels: usize,
    /// Frames per item (1 for images).
    pub frames: usize,
    pub height: usize,
    pub width: usize,
    pub classes: usize,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image_size(&self) -> usize {
        self.channels * self.frames * self.height * self.width
    }

    /// Images from an idx3 file and labels from an idx1 file (MNIST layout).
    pub fn from_idx(images: &Path, labels: &Path) -> Result<Self, DataError> {
        let (dims, pixels) = read_idx(images)?;
        if dims.len() != 3 {
            return Err(FileError::new(images, format!("expected 3 dimensions [N, H, W], found {dims:?}")));
        }
        if dims.contains(&0) {
            return Err(FileError::new(images, format!("no images, or images of no pixels: dimensions {dims:?}")));
        }
        let (ldims, lab) = read_idx(labels)?;
        if ldims.len() != 1 || ldims[0] != dims[0] {
            return Err(FileError::new(
                labels,
                format!("{ldims:?} labels for {} images in {}", dims[0], images.display()),
            ));
        }
        let labels: Vec<u32> = lab.into_iter().map(u32::from).collect();
        let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
        Ok(Self { pixels, labels, channels: 1, frames: 1, height: dims[1], width: dims[2], classes })
    }

    /// The `train` or `t10k` split of an MNIST-layout directory (`{split}-images-idx3-ubyte[.gz]`).
    pub fn mnist_dir(dir: &Path, split: &str) -> Result<Self, DataError> {
        let find = |stem: &str| {
            let plain = dir.join(stem);
            let gz = dir.join(format!("{stem}.gz"));
            if gz.exists() { gz } else { plain }
        };
        Self::from_idx(&find(&format!("{split}-images-idx3-ubyte")), &find(&format!("{split}-labels-idx1-ubyte")))
    }

    /// A CSV of square grey images, one per line: the pixels (0–255) then the label, no header.
    pub fn from_pixel_csv(path: &Path) -> Result<Self, DataError> {
        let bytes = read_maybe_gz(path)?;
        let text = String::from_utf8(bytes).map_err(|_| FileError::new(path, "not UTF-8 text"))?;
        let (mut pixels, mut labels, mut width) = (Vec::new(), Vec::new(), None);
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let vals: Vec<&str> = line.split(',').map(str::trim).collect();
            let npx = vals.len() - 1;
            let side = (npx as f64).sqrt() as usize;
            if side * side != npx || npx == 0 {
                return Err(FileError::new(path, format!("line {}: {npx} pixels is not a square image", i + 1)));
            }
            if *width.get_or_insert(side) != side {
                return Err(FileError::new(path, format!("line {}: image size differs from the first line", i + 1)));
            }
            for v in &vals[..npx] {
                let p: f64 = v
                    .parse()
                    .map_err(|_| FileError::new(path, format!("line {}: pixel '{v}' is not a number", i + 1)))?;
                if !(0.0..=255.0).contains(&p) {
                    return Err(FileError::new(path, format!("line {}: pixel {p} outside 0–255", i + 1)));
                }
                pixels.push(p.round() as u8);
            }
            let l = vals[npx];
            labels.push(
                l.parse::<u32>()
                    .map_err(|_| FileError::new(path, format!("line {}: label '{l}' is not a class index", i + 1)))?,
            );
        }
        let side = width.ok_or_else(|| FileError::new(path, "no images"))?;
        let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
        Ok(Self { pixels, labels, channels: 1, frames: 1, height: side, width: side, classes })
    }

    /// Per-channel mean and standard deviation of the pixels scaled to [0, 1].
    pub fn channel_stats(&self) -> Vec<(f32, f32)> {
        let hw = self.frames * self.height * self.width;
        (0..self.channels)
            .map(|c| {
                let (mut s, mut s2, mut n) = (0f64, 0f64, 0f64);
                for img in self.pixels.chunks_exact(self.image_size()) {
                    for &p in &img[c * hw..(c + 1) * hw] {
                        let v = p as f64 / 255.0;
                        s += v;
                        s2 += v * v;
                        n += 1.0;
                    }
                }
                let mean = s / n.max(1.0);
                ((mean) as f32, ((s2 / n.max(1.0) - mean * mean).max(1e-12)).sqrt() as f32)
            })
            .collect()
    }

    /// The seeded permutation of the indices that training uses in its first epoch
    /// ([`EpochOrder`] draws one per epoch).
    pub fn shuffled(&self, seed: u64) -> Vec<usize> {
        EpochOrder::permutation(self.len(), seed, 0)
    }

    /// The items `idx`, in that order, as a new set.
    pub fn subset(&self, idx: &[usize]) -> ImageSet {
        let n = self.image_size();
        ImageSet {
            pixels: idx.iter().flat_map(|&i| self.pixels[i * n..(i + 1) * n].iter().copied()).collect(),
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            ..self.clone()
        }
    }

    /// A generated task for runs without data ([`SHAPE_CLASSES`]): a filled square, hollow
    /// square, disc or cross at a random place and scale on a noisy 28×28 background.
    pub fn shapes(n: usize, seed: u64) -> ImageSet {
        let mut rng = StdRng::seed_from_u64(seed);
        let (s, mut pixels, mut labels) = (28usize, Vec::with_capacity(n * 784), Vec::with_capacity(n));
        for _ in 0..n {
            let k = rng.random_range(0..4u32);
            let r = rng.random_range(4..9) as f64;
            let (cy, cx) = (rng.random_range(r..s as f64 - r), rng.random_range(r..s as f64 - r));
            for y in 0..s {
                for x in 0..s {
                    let (dy, dx) = (y as f64 - cy, x as f64 - cx);
                    let on = match k {
                        0 => dy.abs() <= r && dx.abs() <= r,
                        1 => dy.abs().max(dx.abs()) <= r && dy.abs().max(dx.abs()) >= r - 1.5,
                        2 => dy * dy + dx * dx <= r * r,
                        _ => (dy.abs() <= 1.0 && dx.abs() <= r) || (dx.abs() <= 1.0 && dy.abs() <= r),
                    };
                    let noise = rng.random_range(0..40u8);
                    pixels.push(if on { 255 - noise } else { noise });
                }
            }
            labels.push(k);
        }
        ImageSet { pixels, labels, channels: 1, frames: 1, height: s, width: s, classes: 4 }
    }

    /// Image `i` as normalised f32 `[C, (T,) H, W]`: (x/255 − mean) / std per channel.
    pub fn normalised(&self, i: usize, stats: &[(f32, f32)]) -> Vec<f32> {
        let hw = self.frames * self.height * self.width;
        let img = &self.pixels[i * self.image_size()..(i + 1) * self.image_size()];
        img.iter().enumerate().map(|(j, &p)| (p as f32 / 255.0 - stats[j / hw].0) / stats[j / hw].1).collect()
    }
}

/// Random crop after zero padding by `pad` pixels, and a horizontal flip with probability ½, of
/// an image `[C, H, W]` (in place; padding value 0 of the normalised image).
pub fn augment(img: &mut [f32], c: usize, h: usize, w: usize, pad: usize, flip: bool, rng: &mut StdRng) {
    let (dy, dx) = if pad > 0 {
        (rng.random_range(0..=2 * pad) as isize - pad as isize, rng.random_range(0..=2 * pad) as isize - pad as isize)
    } else {
        (0, 0)
    };
    let mirror = flip && rng.random_bool(0.5);
    let src = img.to_vec();
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let sy = y as isize + dy;
                let sx0 = if mirror { (w - 1 - x) as isize } else { x as isize };
                let sx = sx0 + dx;
                img[(ch * h + y) * w + x] = if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w {
                    src[(ch * h + sy as usize) * w + sx as usize]
                } else {
                    0.0
                };
            }
        }
    }
}
