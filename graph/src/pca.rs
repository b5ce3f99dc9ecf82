//! Two-dimensional PCA of node embeddings (for the `embed` plot): the covariance's two leading
//! eigenvectors by power iteration with deflation.

/// Projects the rows of `x` (`n × d`, row-major) on their first two principal components.
pub fn pca2(x: &[f32], n: usize, d: usize) -> Vec<(f64, f64)> {
    if n == 0 || d == 0 {
        return Vec::new();
    }
    let mean: Vec<f64> = (0..d).map(|j| (0..n).map(|i| x[i * d + j] as f64).sum::<f64>() / n as f64).collect();
    let mut cov = vec![0f64; d * d];
    for row in x.chunks(d) {
        for a in 0..d {
            let va = row[a] as f64 - mean[a];
            for b in 0..d {
                cov[a * d + b] += va * (row[b] as f64 - mean[b]);
            }
        }
    }
    let first = leading_eigenvector(&cov, d);
    let lambda = rayleigh(&cov, &first, d);
    for a in 0..d {
        for b in 0..d {
            cov[a * d + b] -= lambda * first[a] * first[b];
        }
    }
    let second = leading_eigenvector(&cov, d);
    let proj =
        |row: &[f32], v: &[f64]| row.iter().zip(&mean).zip(v).map(|((&r, m), v)| (r as f64 - m) * v).sum::<f64>();
    x.chunks(d).map(|row| (proj(row, &first), proj(row, &second))).collect()
}

fn mat_vec(m: &[f64], v: &[f64], d: usize) -> Vec<f64> {
    (0..d).map(|a| (0..d).map(|b| m[a * d + b] * v[b]).sum()).collect()
}

fn rayleigh(m: &[f64], v: &[f64], d: usize) -> f64 {
    mat_vec(m, v, d).iter().zip(v).map(|(a, b)| a * b).sum()
}

/// Unit eigenvector of the largest eigenvalue of the symmetric PSD matrix `m` (`d × d`).
pub fn leading_eigenvector(m: &[f64], d: usize) -> Vec<f64> {
    let mut v: Vec<f64> = (0..d).map(|i| 1.0 + (i as f64 * 0.618).fract()).collect();
    for _ in 0..500 {
        let w = mat_vec(m, &v, d);
        let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm < 1e-300 {
            break;
        }
        let next: Vec<f64> = w.iter().map(|x| x / norm).collect();
        let delta: f64 = next.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum();
        v = next;
        if delta < 1e-12 {
            break;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_principal_axes_of_a_stretched_cloud() {
        // Points on the line y = 2x (variance along (1,2)/√5) plus a small orthogonal spread.
        let pts: Vec<f32> = (0..200)
            .flat_map(|i| {
                let t = i as f32 / 10.0 - 10.0;
                let s = if i % 2 == 0 { 0.1 } else { -0.1 };
                [t - 2.0 * s, 2.0 * t + s, 5.0]
            })
            .collect();
        let p = pca2(&pts, 200, 3);
        let var = |f: &dyn Fn(&(f64, f64)) -> f64| p.iter().map(|q| f(q).powi(2)).sum::<f64>() / 200.0;
        let (v1, v2) = (var(&|q| q.0), var(&|q| q.1));
        let total: f64 = (0..200)
            .map(|i| {
                let t = i as f64 / 10.0 - 10.0;
                5.0 * t * t
            })
            .sum::<f64>()
            / 200.0;
        assert!((v1 - total).abs() / total < 0.01, "first component variance {v1} vs {total}");
        assert!(v2 < 0.1 && v2 > 0.01, "second component variance {v2}");
    }
}
