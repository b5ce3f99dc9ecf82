//! The long-range suite's data, in the spirit of LRA (Tay et al., "Long Range Arena", 2021),
//! from what ships with the project or is generated here. Besides ListOps:
//!
//! - **image**: Fashion-MNIST read pixel by pixel (784 tokens, the 256 grey levels as the
//!   vocabulary; LRA's Image task does this with CIFAR-10's 1,024 pixels), 10 classes;
//! - **pathfinder**: 32×32 Pathfinder images from `ssm_core::pathfinder` (1,024 tokens), whether
//!   the two marks are joined by a dashed curve;
//! - **text**: byte-level speaker identification in tiny-shakespeare (LRA's byte-level text
//!   classification uses IMDb reviews, which do not ship): the speeches of the ten speakers
//!   with the most text, consecutive speeches of one speaker joined into 512-byte passages
//!   (the speaker lines removed); each speaker's first 80 % of passages train, the next 10 %
//!   validate, the last 10 % test, so no passage is split across sets.

use anyhow::{Context, Result, bail};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use ssm_core::pathfinder::{PathfinderConfig, generate};
use ssm_core::tasks::Labelled;
use ssm_vision::data::ImageSet;
use std::collections::BTreeMap;
use std::path::Path;

/// Train, validation and test splits with the task's vocabulary size and class count.
pub struct Splits {
    pub train: Labelled,
    pub val: Labelled,
    pub test: Labelled,
    pub vocab: usize,
    pub classes: usize,
}

fn labelled(pairs: Vec<(Vec<i64>, i64)>) -> Labelled {
    let (sequences, labels) = pairs.into_iter().unzip();
    Labelled { sequences, labels }
}

/// Fashion-MNIST as pixel sequences: `train` + `val` drawn (seeded) from the training split,
/// `test` from the test split.
pub fn image(dir: &Path, train: usize, val: usize, test: usize, seed: u64) -> Result<Splits> {
    let tr = ImageSet::mnist_dir(dir, "train")?;
    let te = ImageSet::mnist_dir(dir, "t10k")?;
    let px = tr.image_size();
    let example = |set: &ImageSet, i: usize| -> (Vec<i64>, i64) {
        (set.pixels[i * px..(i + 1) * px].iter().map(|&v| i64::from(v)).collect(), set.labels[i] as i64)
    };
    let mut order: Vec<usize> = (0..tr.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    if train + val > order.len() || test > te.len() {
        bail!(
            "{}: asked for {train} + {val} training and {test} test images, the files hold {} and {}",
            dir.display(),
            tr.len(),
            te.len()
        );
    }
    Ok(Splits {
        train: labelled(order[..train].iter().map(|&i| example(&tr, i)).collect()),
        val: labelled(order[train..train + val].iter().map(|&i| example(&tr, i)).collect()),
        test: labelled((0..test).map(|i| example(&te, i)).collect()),
        vocab: 256,
        classes: 10,
    })
}

/// Generated 32×32 Pathfinder, three disjoint seed streams.
pub fn pathfinder(train: usize, val: usize, test: usize, seed: u64) -> Splits {
    let c = PathfinderConfig::side_32();
    let split = |n: usize, s: u64| {
        let (sequences, labels) = generate(&c, n, seed.wrapping_mul(31).wrapping_add(s));
        Labelled { sequences, labels }
    };
    Splits { train: split(train, 1), val: split(val, 2), test: split(test, 3), vocab: 3, classes: 2 }
}

/// Passage length of the text task.
pub const PASSAGE: usize = 512;

/// Byte-level speaker identification in the tiny-shakespeare file `path`.
pub fn text(path: &Path) -> Result<Splits> {
    let raw = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read the text", path.display()))?;
    // Speeches: blocks separated by blank lines whose first line is "NAME:".
    let mut speeches: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut totals: BTreeMap<String, usize> = BTreeMap::new();
    for block in raw.split("\n\n") {
        let mut lines = block.lines();
        let Some(head) = lines.next().and_then(|h| h.strip_suffix(':')) else { continue };
        let body: Vec<&str> = lines.collect();
        if body.is_empty() {
            continue;
        }
        let text = body.join("\n");
        *totals.entry(head.to_string()).or_default() += text.len();
        speeches.entry(head.to_string()).or_default().push(text);
    }
    let mut by_size: Vec<(String, usize)> = totals.into_iter().collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if by_size.len() < 10 {
        bail!("{}: found {} speakers (\"NAME:\" lines); the task needs 10", path.display(), by_size.len());
    }
    let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for (label, (name, _)) in by_size.iter().take(10).enumerate() {
        let mut passages: Vec<Vec<i64>> = Vec::new();
        let mut current: Vec<u8> = Vec::new();
        for s in &speeches[name] {
            if !current.is_empty() {
                current.push(b'\n');
            }
            current.extend_from_slice(s.as_bytes());
            while current.len() >= PASSAGE {
                passages.push(current.drain(..PASSAGE).map(i64::from).collect());
            }
        }
        let n = passages.len();
        let (a, b) = (n * 8 / 10, n * 9 / 10);
        for (i, p) in passages.into_iter().enumerate() {
            let dst = if i < a {
                &mut train
            } else if i < b {
                &mut val
            } else {
                &mut test
            };
            dst.push((p, label as i64));
        }
    }
    Ok(Splits { train: labelled(train), val: labelled(val), test: labelled(test), vocab: 256, classes: 10 })
}
