//! Classical LTI basics against closed forms: discretisations, simulation, eigenvalues and
//! stability, the Kalman filter's steady state and the RTS smoother against dense Gaussian
//! conditioning.

use nalgebra::DMatrix;
use ndarray::{Array1, Array2, array};
use ssm_core::lti::{Discretisation, Kalman, Lti, LtiError};

fn scalar(a: f64, b: f64) -> Lti {
    Lti::new(array![[a]], array![[b]], array![[1.0]], array![[0.0]]).unwrap()
}

#[test]
fn scalar_discretisations_match_their_formulas() {
    let (a, b, dt) = (-0.7, 2.0, 0.3);
    let s = scalar(a, b);
    let zoh = s.discretise(dt, Discretisation::Zoh).unwrap();
    assert!((zoh.a[[0, 0]] - (a * dt).exp()).abs() < 1e-14);
    assert!((zoh.b[[0, 0]] - ((a * dt).exp() - 1.0) / a * b).abs() < 1e-14);
    let bil = s.discretise(dt, Discretisation::Bilinear).unwrap();
    assert!((bil.a[[0, 0]] - (1.0 + a * dt / 2.0) / (1.0 - a * dt / 2.0)).abs() < 1e-14);
    assert!((bil.b[[0, 0]] - dt * b / (1.0 - a * dt / 2.0)).abs() < 1e-14);
    let eul = s.discretise(dt, Discretisation::Euler).unwrap();
    assert_eq!((eul.a[[0, 0]], eul.b[[0, 0]]), (1.0 + a * dt, b * dt));
    // ZOH of a singular A (a pure integrator) is still defined: B̄ = Δ B.
    let int = scalar(0.0, 1.0).discretise(dt, Discretisation::Zoh).unwrap();
    assert!((int.a[[0, 0]] - 1.0).abs() < 1e-15 && (int.b[[0, 0]] - dt).abs() < 1e-15);
    assert_eq!(s.discretise(0.0, Discretisation::Zoh), Err(LtiError::Step(0.0)));
}

#[test]
fn spring_mass_damper_simulation_equals_the_closed_form() {
    let (m, k, c, dt) = (2.0, 8.0, 0.8, 0.05);
    let sys = Lti::spring_mass_damper(m, k, c);
    let (w, zeta) = ((k / m).sqrt(), c / (2.0 * (k * m).sqrt()));
    let wd = w * (1.0 - zeta * zeta).sqrt();
    let mut ev = sys.eigenvalues();
    ev.sort_by(|a, b| a.im.total_cmp(&b.im));
    assert!((ev[0].re + zeta * w).abs() < 1e-12 && (ev[0].im + wd).abs() < 1e-12, "{ev:?}");
    assert!((ev[1].re + zeta * w).abs() < 1e-12 && (ev[1].im - wd).abs() < 1e-12, "{ev:?}");
    assert!(sys.is_stable_continuous());
    let d = sys.discretise(dt, Discretisation::Zoh).unwrap();
    assert!(d.is_stable_discrete());
    let (xs, ys) = d.simulate(&array![1.0, 0.0], &Array2::zeros((400, 1))).unwrap();
    for i in 0..400 {
        let t = i as f64 * dt;
        let want = (-zeta * w * t).exp() * ((wd * t).cos() + zeta * w / wd * (wd * t).sin());
        assert!((xs[[i, 0]] - want).abs() < 1e-10, "t = {t}: {} vs {want}", xs[[i, 0]]);
        assert_eq!(ys[[i, 0]], xs[[i, 0]]);
    }
    // A constant force F settles at x = F / k (ZOH is exact for piecewise-constant inputs).
    let (xs, _) = d.simulate(&array![0.0, 0.0], &Array2::from_elem((2000, 1), 3.0)).unwrap();
    assert!((xs[[2000, 0]] - 3.0 / k).abs() < 1e-8);
    // Negative damping is unstable in both views.
    let unstable = Lti::spring_mass_damper(m, k, -0.1);
    assert!(!unstable.is_stable_continuous());
    assert!(!unstable.discretise(dt, Discretisation::Bilinear).unwrap().is_stable_discrete());
}

#[test]
fn bad_shapes_are_errors() {
    let e = Lti::new(array![[1.0, 0.0], [0.0, 1.0]], array![[1.0]], array![[1.0, 0.0]], array![[0.0]]);
    assert!(matches!(e, Err(LtiError::Shape { what: "B", .. })), "{e:?}");
    let s = Lti::spring_mass_damper(1.0, 1.0, 1.0);
    assert!(s.simulate(&array![1.0], &Array2::zeros((3, 1))).is_err());
}

#[test]
fn local_level_filter_reaches_the_closed_form_steady_state() {
    // Random walk + noise: the prior variance converges to P = (q + √(q² + 4qr)) / 2.
    let (q, r) = (0.3, 2.0);
    let kf = Kalman::new(array![[1.0]], array![[1.0]], array![[q]], array![[r]]).unwrap();
    let ys = Array2::from_shape_fn((200, 1), |(i, _)| (i as f64 * 0.37).sin());
    let f = kf.filter(&array![0.0], &array![[10.0]], &ys).unwrap();
    let p = (q + (q * q + 4.0 * q * r).sqrt()) / 2.0;
    assert!((f.pred_cov[199][[0, 0]] - p).abs() < 1e-10, "{} vs {p}", f.pred_cov[199][[0, 0]]);
    // Missing observations only predict: the variance grows by q.
    let mut gap = ys.clone();
    gap[[100, 0]] = f64::NAN;
    let g = kf.filter(&array![0.0], &array![[10.0]], &gap).unwrap();
    assert!((g.cov[100][[0, 0]] - g.pred_cov[100][[0, 0]]).abs() < 1e-15);
}

/// The posterior mean of x_0..T−1 given y by dense Gaussian conditioning of the joint prior.
fn dense_posterior(kf: &Kalman, x0: &Array1<f64>, p0: &Array2<f64>, ys: &Array2<f64>) -> Vec<f64> {
    let (t, n) = (ys.nrows(), x0.len());
    let na = |a: &Array2<f64>| DMatrix::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]]);
    let (f, h, q, r) = (na(&kf.f), na(&kf.h), na(&kf.q), na(&kf.r));
    // Means and covariances of the stacked states: Cov(x_i, x_j) = F^{i−j} Cov(x_j) for i ≥ j.
    let mut means = vec![DMatrix::from_fn(n, 1, |i, _| x0[i])];
    let mut covs = vec![na(p0)];
    for k in 1..t {
        means.push(&f * &means[k - 1]);
        covs.push(&f * &covs[k - 1] * f.transpose() + &q);
    }
    let mut sxx = DMatrix::zeros(t * n, t * n);
    for i in 0..t {
        for (j, cov) in covs.iter().enumerate().take(i + 1) {
            let c = f.pow((i - j) as u32) * cov;
            sxx.view_mut((i * n, j * n), (n, n)).copy_from(&c);
            sxx.view_mut((j * n, i * n), (n, n)).copy_from(&c.transpose());
        }
    }
    let mut hb = DMatrix::zeros(t, t * n);
    for i in 0..t {
        hb.view_mut((i, i * n), (1, n)).copy_from(&h);
    }
    let syy = &hb * &sxx * hb.transpose() + DMatrix::identity(t, t) * r[(0, 0)];
    let mx = DMatrix::from_fn(t * n, 1, |i, _| means[i / n][(i % n, 0)]);
    let resid = DMatrix::from_fn(t, 1, |i, _| ys[[i, 0]]) - &hb * &mx;
    let post = mx + &sxx * hb.transpose() * syy.lu().solve(&resid).unwrap();
    post.iter().copied().collect()
}

#[test]
fn rts_smoother_equals_dense_gaussian_conditioning() {
    let kf = Kalman::local_linear_trend(0.05, 0.01, 0.5);
    let ys = array![[1.0], [1.4], [0.9], [2.2], [2.8], [2.5], [3.9], [4.1]];
    let (x0, p0) = (array![0.5, 0.2], array![[2.0, 0.3], [0.3, 1.0]]);
    let f = kf.filter(&x0, &p0, &ys).unwrap();
    let (sm, _) = kf.smooth(&f).unwrap();
    let want = dense_posterior(&kf, &x0, &p0, &ys);
    let got: Vec<f64> = sm.iter().copied().collect();
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-10, "smoothed {g} vs dense {w}");
    }
    // The last filtered state is the last smoothed one.
    assert_eq!(f.mean.row(7), sm.row(7));
    // Forecasts of a local linear trend are level + k · slope.
    let fc = kf.forecast(&f.mean.row(7).to_owned(), 3);
    for k in 0..3 {
        assert!((fc[[k, 0]] - (f.mean[[7, 0]] + (k + 1) as f64 * f.mean[[7, 1]])).abs() < 1e-12);
    }
}
