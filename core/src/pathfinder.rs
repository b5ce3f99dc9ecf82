//! A Pathfinder generator (the long-range task of Linsley et al., "Learning long-range spatial
//! dependencies with horizontal gated recurrent units", NeurIPS 2018, used by LRA at 32×32):
//! an image holds two marked end points and dashed curves; the label says whether one curve
//! joins the two marks. Read pixel by pixel (side² tokens) it asks a sequence model to connect
//! positions up to side² apart.
//!
//! Written for this project (seeded, reproducible): every curve is a smooth random walk
//! (heading changes ~ N(0, 0.35 rad) per pixel step, reflected at the borders) drawn as dashes
//! of `dash` pixels with `gap` blank pixels between them; curves never touch one another (a
//! curve that would is drawn again). Positive: the two marks sit on both ends of one curve,
//! and a second curve is unmarked. Negative: each mark sits on one end of a different curve.
//! So both classes show two curves and two marks, and only their connection differs.
//! `distractors` short unmarked curves are added to both. Tokens: 0 background, 1 curve,
//! 2 mark (a plus sign of 5 pixels).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Generator settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PathfinderConfig {
    pub side: usize,
    /// Steps of each of the two main curves.
    pub length: usize,
    pub distractors: usize,
    pub dash: usize,
    pub gap: usize,
}

impl PathfinderConfig {
    /// LRA's 32×32 setting.
    pub fn side_32() -> Self {
        PathfinderConfig { side: 32, length: 40, distractors: 2, dash: 3, gap: 1 }
    }
}

type Pixel = (usize, usize);

/// A smooth random walk of `steps` distinct pixels inside the image's 2-pixel margin.
fn walk(c: &PathfinderConfig, steps: usize, rng: &mut StdRng) -> Vec<Pixel> {
    let (lo, hi) = (2.0, (c.side - 3) as f64);
    let (mut x, mut y) = (rng.random_range(lo..hi), rng.random_range(lo..hi));
    let mut heading: f64 = rng.random_range(0.0..std::f64::consts::TAU);
    let mut path: Vec<Pixel> = vec![(x.round() as usize, y.round() as usize)];
    let mut guard = 0;
    while path.len() < steps && guard < 20 * steps {
        guard += 1;
        // Box–Muller for a normal turn.
        let turn =
            (-2.0 * (1.0 - rng.random::<f64>()).ln()).sqrt() * (std::f64::consts::TAU * rng.random::<f64>()).cos();
        heading += 0.35 * turn;
        let (nx, ny) = (x + heading.cos(), y + heading.sin());
        if !(lo..=hi).contains(&nx) {
            heading = std::f64::consts::PI - heading;
            continue;
        }
        if !(lo..=hi).contains(&ny) {
            heading = -heading;
            continue;
        }
        (x, y) = (nx, ny);
        let p = (x.round() as usize, y.round() as usize);
        if path.last() != Some(&p) && !path.contains(&p) {
            path.push(p);
        }
    }
    path
}

/// Whether two pixels are closer than 3 in the max-norm: a curve and a mark's arm on another
/// curve would then touch.
fn near(a: Pixel, b: Pixel) -> bool {
    a.0.abs_diff(b.0) <= 2 && a.1.abs_diff(b.1) <= 2
}

/// A walk of at least 2 pixels clear of every pixel in `taken`, if one is found in 50 tries.
fn clear_walk(c: &PathfinderConfig, steps: usize, taken: &[Pixel], rng: &mut StdRng) -> Option<Vec<Pixel>> {
    (0..50).map(|_| walk(c, steps, rng)).find(|w| w.len() >= 2 && !w.iter().any(|&p| taken.iter().any(|&q| near(p, q))))
}

fn draw_dashed(grid: &mut [u8], side: usize, path: &[Pixel], c: &PathfinderConfig) {
    for (i, &(x, y)) in path.iter().enumerate() {
        if i % (c.dash + c.gap) < c.dash || i + 1 == path.len() {
            grid[y * side + x] = grid[y * side + x].max(1);
        }
    }
}

fn mark(grid: &mut [u8], side: usize, (x, y): Pixel) {
    for (dx, dy) in [(0i64, 0i64), (1, 0), (-1, 0), (0, 1), (0, -1)] {
        let (px, py) = ((x as i64 + dx) as usize, (y as i64 + dy) as usize);
        if px < side && py < side {
            grid[py * side + px] = 2;
        }
    }
}

/// One example: side² tokens (row by row) and the label (1 = the marks are connected).
pub fn example(c: &PathfinderConfig, rng: &mut StdRng) -> (Vec<i64>, i64) {
    assert!(c.side >= 8 && c.length >= 2 && c.dash >= 1, "pathfinder: side ≥ 8, length ≥ 2, dash ≥ 1");
    let label = rng.random_bool(0.5);
    loop {
        if let Some(x) = attempt(c, label, rng) {
            return (x, i64::from(label));
        }
    }
}

/// One drawing of an example with `label`, or `None` when the curves could not be kept apart.
fn attempt(c: &PathfinderConfig, label: bool, rng: &mut StdRng) -> Option<Vec<i64>> {
    let mut grid = vec![0u8; c.side * c.side];
    let a = clear_walk(c, c.length, &[], rng)?;
    let b = clear_walk(c, c.length, &a, rng)?;
    let mut taken: Vec<Pixel> = a.iter().chain(&b).copied().collect();
    for _ in 0..c.distractors {
        let d = clear_walk(c, (c.length / 3).max(2), &taken, rng)?;
        draw_dashed(&mut grid, c.side, &d, c);
        taken.extend(d);
    }
    draw_dashed(&mut grid, c.side, &a, c);
    draw_dashed(&mut grid, c.side, &b, c);
    let (first, last) = (a[0], *a.last().expect("a walk has a pixel"));
    if label {
        mark(&mut grid, c.side, first);
        mark(&mut grid, c.side, last);
    } else {
        mark(&mut grid, c.side, first);
        mark(&mut grid, c.side, *b.last().expect("a walk has a pixel"));
    }
    Some(grid.into_iter().map(i64::from).collect())
}

/// `n` examples from `seed`.
pub fn generate(c: &PathfinderConfig, n: usize, seed: u64) -> (Vec<Vec<i64>>, Vec<i64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| example(c, &mut rng)).unzip()
}
