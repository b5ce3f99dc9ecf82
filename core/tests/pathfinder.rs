//! The Pathfinder generator: reproducible, balanced, and its labels are what the pixels show.

use ssm_core::pathfinder::{PathfinderConfig, generate};

/// Whether the two mark clusters (value 2) are joined through non-zero pixels (8-neighbours).
fn marks_connected(img: &[i64], side: usize) -> bool {
    let start = img.iter().position(|&v| v == 2).expect("a mark");
    let mut seen = vec![false; img.len()];
    let mut stack = vec![start];
    seen[start] = true;
    while let Some(i) = stack.pop() {
        let (x, y) = ((i % side) as i64, (i / side) as i64);
        for dy in -1..=1 {
            for dx in -1..=1 {
                let (nx, ny) = (x + dx, y + dy);
                if (0..side as i64).contains(&nx) && (0..side as i64).contains(&ny) {
                    let j = ny as usize * side + nx as usize;
                    if img[j] > 0 && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
    }
    // connected when no mark pixel is left unreached
    img.iter().zip(&seen).all(|(&v, &s)| v != 2 || s)
}

#[test]
fn labels_match_the_drawn_connection() {
    // Solid curves (no gaps) so the connection is visible to a flood fill.
    let c = PathfinderConfig { gap: 0, ..PathfinderConfig::side_32() };
    let (xs, ys) = generate(&c, 300, 7);
    for (i, (x, &y)) in xs.iter().zip(&ys).enumerate() {
        assert_eq!(x.len(), 32 * 32);
        assert_eq!(marks_connected(x, 32), y == 1, "example {i}: label {y}");
    }
    let positives = ys.iter().filter(|&&y| y == 1).count();
    assert!((120..=180).contains(&positives), "{positives} of 300 positive");
}

#[test]
fn the_dashed_task_is_reproducible() {
    let c = PathfinderConfig::side_32();
    assert_eq!(generate(&c, 20, 3), generate(&c, 20, 3));
    assert_ne!(generate(&c, 20, 3).0, generate(&c, 20, 4).0);
    let (xs, _) = generate(&c, 50, 1);
    for x in &xs {
        let marks = x.iter().filter(|&&v| v == 2).count();
        assert!((6..=10).contains(&marks), "two plus-shaped marks, got {marks} mark pixels");
        assert!(x.iter().filter(|&&v| v == 1).count() > 30, "curves drawn");
    }
}
