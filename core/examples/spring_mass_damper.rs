//! The survey's opening example: a spring–mass–damper as a continuous LTI system, discretised
//! three ways and simulated from a displaced start, against the closed-form solution; then a
//! Kalman filter and RTS smoother tracking its position from noisy readings.
//!
//! `cargo run --release -p ssm-core --example spring_mass_damper -- [OUT.png]`

use ndarray::{Array1, Array2, array};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ssm_core::lti::{Discretisation, Kalman, Lti};
use ssm_core::plot::{Scale, line_chart};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "spring_mass_damper.png".into());
    let (m, k, c, dt, steps) = (1.0, 4.0, 0.4, 0.1, 150);
    let sys = Lti::spring_mass_damper(m, k, c);
    let (w, zeta): (f64, f64) = ((k / m).sqrt(), c / (2.0 * (k * m).sqrt()));
    let wd = w * (1.0 - zeta * zeta).sqrt();
    println!("eigenvalues of A: {:?} (closed form −ζω ± iω_d = {:.4} ± {:.4}i)", sys.eigenvalues(), -zeta * w, wd);
    println!("stable (continuous): {}", sys.is_stable_continuous());
    let exact: Vec<(f64, f64)> = (0..=steps)
        .map(|i| {
            let t = i as f64 * dt;
            (t, (-zeta * w * t).exp() * ((wd * t).cos() + zeta * w / wd * (wd * t).sin()))
        })
        .collect();
    let mut series = vec![("closed form".to_string(), exact.clone())];
    let u = Array2::zeros((steps, 1));
    for method in [Discretisation::Zoh, Discretisation::Bilinear, Discretisation::Euler] {
        let d = sys.discretise(dt, method)?;
        let (xs, _) = d.simulate(&array![1.0, 0.0], &u)?;
        let pts: Vec<(f64, f64)> = (0..=steps).map(|i| (i as f64 * dt, xs[[i, 0]])).collect();
        let err = pts.iter().zip(&exact).map(|(a, b)| (a.1 - b.1).abs()).fold(0.0, f64::max);
        println!("{method:?}: stable (discrete) {}, max |x − exact| {err:.2e}", d.is_stable_discrete());
        series.push((format!("{method:?}"), pts));
    }
    // Kalman: the ZOH system with process noise, position read with noise σ = 0.2.
    let d = sys.discretise(dt, Discretisation::Zoh)?;
    let kf = Kalman::new(d.a.clone(), d.c.clone(), Array2::eye(2) * 1e-4, array![[0.04]])?;
    let mut rng = StdRng::seed_from_u64(7);
    // Box–Muller: σ = 0.2 Gaussian noise.
    let mut noise =
        || 0.2 * (-2.0 * (1.0 - rng.random::<f64>()).ln()).sqrt() * (std::f64::consts::TAU * rng.random::<f64>()).cos();
    let ys = Array2::from_shape_fn((steps, 1), |(i, _)| exact[i].1 + noise());
    let f = kf.filter(&Array1::zeros(2), &Array2::eye(2), &ys)?;
    let (sm, _) = kf.smooth(&f)?;
    let rmse =
        |v: &dyn Fn(usize) -> f64| ((0..steps).map(|i| (v(i) - exact[i].1).powi(2)).sum::<f64>() / steps as f64).sqrt();
    println!(
        "noisy readings RMSE {:.4}, Kalman filter {:.4}, RTS smoother {:.4}",
        rmse(&|i| ys[[i, 0]]),
        rmse(&|i| f.mean[[i, 0]]),
        rmse(&|i| sm[[i, 0]])
    );
    series.push(("readings".into(), (0..steps).map(|i| (i as f64 * dt, ys[[i, 0]])).collect()));
    series.push(("RTS smoother".into(), (0..steps).map(|i| (i as f64 * dt, sm[[i, 0]])).collect()));
    let title = format!("spring-mass-damper m={m} k={k} c={c}, Δ={dt}");
    line_chart(out.as_ref(), &title, "time (s)", "position", &series, Scale::Linear, Scale::Linear)?;
    println!("wrote {out}");
    Ok(())
}
