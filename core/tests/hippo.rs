//! HiPPO matrices against closed forms: the steady state of a constant input is its projection
//! (Legendre: (1, 0, 0, …); Laguerre: 2(−1)ⁿ), LegS's normal-plus-low-rank split, FouT's
//! rotations, and spot entries of state-spaces/s4's `transition()` at N = 6.

use nalgebra::DMatrix;
use ndarray::{Array1, Array2};
use ssm_core::hippo::{Measure, legs_nplr, transition};
use std::f64::consts::PI;

fn steady_state(a: &Array2<f64>, b: &Array1<f64>) -> Vec<f64> {
    let n = b.len();
    let am = DMatrix::from_fn(n, n, |i, k| -a[[i, k]]);
    am.lu().solve(&DMatrix::from_fn(n, 1, |i, _| b[i])).expect("A is invertible").iter().copied().collect()
}

fn close(got: &[f64], want: &[f64], what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() < 1e-9, "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn a_constant_input_settles_at_its_projection() {
    for n in [1, 4, 9, 16] {
        let mut e0 = vec![0.0; n];
        e0[0] = 1.0;
        for m in [Measure::LegS, Measure::LegT] {
            let (a, b) = transition(m, n);
            close(&steady_state(&a, &b), &e0, &format!("{m:?} N={n}"));
        }
        let (a, b) = transition(Measure::LagT, n);
        let lag: Vec<f64> = (0..n).map(|i| if i % 2 == 0 { 2.0 } else { -2.0 }).collect();
        close(&steady_state(&a, &b), &lag, &format!("LagT N={n}"));
    }
}

#[test]
fn spot_entries_match_the_reference_transition() {
    let (a, b) = transition(Measure::LegS, 6);
    assert!((a[[1, 0]] + 3f64.sqrt()).abs() < 1e-12 && (a[[2, 1]] + 15f64.sqrt()).abs() < 1e-12);
    assert_eq!((a[[3, 3]], a[[0, 1]], b[2]), (-4.0, 0.0, 5f64.sqrt()));
    let (a, _) = transition(Measure::LegT, 6);
    assert!((a[[0, 1]] - 3f64.sqrt()).abs() < 1e-12 && (a[[1, 0]] + 3f64.sqrt()).abs() < 1e-12);
    assert!((a[[0, 2]] + 5f64.sqrt()).abs() < 1e-12);
    let (a, b) = transition(Measure::FouT, 6);
    assert_eq!(b.to_vec(), [1.0, 0.0, 2f64.sqrt(), 0.0, 2f64.sqrt(), 0.0]);
    assert!((a[[2, 3]] + PI).abs() < 1e-12 && (a[[3, 2]] - PI).abs() < 1e-12);
    assert!((a[[4, 5]] + 2.0 * PI).abs() < 1e-12 && (a[[5, 4]] - 2.0 * PI).abs() < 1e-12);
    assert!((a[[2, 2]] + 2.0).abs() < 1e-12 && (a[[0, 2]] + 2f64.sqrt()).abs() < 1e-12);
    // A + B Bᵀ is skew-symmetric for FouT (pure rotations).
    let n = 6;
    for i in 0..n {
        for k in 0..n {
            let s = |i: usize, k: usize| a[[i, k]] + b[i] * b[k];
            assert!((s(i, k) + s(k, i)).abs() < 1e-12);
        }
    }
}

#[test]
fn legs_is_normal_plus_low_rank() {
    let n = 12;
    let (a, _) = transition(Measure::LegS, n);
    let (s, p) = legs_nplr(n);
    for i in 0..n {
        assert!((p[i] - (i as f64 + 0.5).sqrt()).abs() < 1e-15);
        for k in 0..n {
            assert!((s[[i, k]] - p[i] * p[k] - a[[i, k]]).abs() < 1e-12, "A = S − P Pᵀ at ({i}, {k})");
            let want = if i == k { -1.0 } else { 0.0 };
            assert!((s[[i, k]] + s[[k, i]] - want).abs() < 1e-12, "S = −½I + skew at ({i}, {k})");
        }
    }
    // S is normal: S Sᵀ = Sᵀ S.
    let sm = DMatrix::from_fn(n, n, |i, k| s[[i, k]]);
    let d = &sm * sm.transpose() - sm.transpose() * &sm;
    assert!(d.amax() < 1e-10);
}
