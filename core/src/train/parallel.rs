//! Data parallelism over several devices (`--devices a,b,…`): the model is replicated on every
//! device; each optimiser step runs one micro-batch per device at once (a thread per replica),
//! averages the gradients on the first device, takes the optimiser step there and sends the new
//! weights back to the replicas. With k devices a step sees k micro-batches — the one of step
//! `s · k + i` on device i — so a step equals one single-device step on their concatenation
//! (the losses are means over equal micro-batches).
//!
//! burn 0.22 has DDP of its own (`DistributedContext`, parameters marked `set_distributed`, an
//! all-reduce inside `backward`), but its all-reduce exists only on CUDA (NCCL) and cubecl's CPU
//! runtime: burn-flex and wgpu refuse it, so no machine without CUDA could run or test it. This
//! reduction moves gradients with `to_device` and weights with `fork`, on any backend. Neither
//! does more than one machine.

use super::{DataSource, Stats, Trainable};
use burn::module::{ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Bool, Device, Int, Tensor};

/// The replicas of the model on the devices after the first (empty: one device).
pub(super) struct Replicas<M> {
    copies: Vec<(M, Device)>,
}

impl<M: Trainable> Replicas<M> {
    /// Replicas of `model` on `devices` (autodiff devices are made of them). burn initialises
    /// parameters lazily, and a copy sent to a device before that would draw its own values:
    /// every parameter is materialised first.
    pub(super) fn new(model: &M, devices: &[Device]) -> Self {
        if !devices.is_empty() {
            model.visit(&mut Materialise);
        }
        let copies = devices
            .iter()
            .map(|d| {
                let d = d.clone().autodiff();
                (model.clone().fork(&d), d)
            })
            .collect();
        Self { copies }
    }

    /// Number of devices, the first included.
    pub(super) fn devices(&self) -> usize {
        self.copies.len() + 1
    }

    /// The averaged gradients (on `device`) and the summed tallies of one step: micro-batch
    /// `step · k + i` on device i, the first (`model`, `device`) on the calling thread. With
    /// one device, simply the step's batch.
    pub(super) fn gradients(
        &self,
        model: &M,
        data: &mut dyn DataSource<M::Batch>,
        step: usize,
        device: &Device,
    ) -> (GradientsParams, Stats) {
        let k = self.devices();
        let first = data.train_batch(step * k, device);
        if k == 1 {
            return one_batch(model, &first);
        }
        let others: Vec<M::Batch> =
            self.copies.iter().enumerate().map(|(i, (_, d))| data.train_batch(step * k + i + 1, d)).collect();
        let (mut grads, mut stats, rest) = std::thread::scope(|s| {
            let handles: Vec<_> =
                self.copies.iter().zip(others).map(|((m, _), batch)| s.spawn(move || one_batch(m, &batch))).collect();
            let (grads, stats) = one_batch(model, &first);
            let rest: Vec<_> = handles.into_iter().map(|h| h.join().expect("a replica's step panicked")).collect();
            (grads, stats, rest)
        });
        let mut others = Vec::with_capacity(rest.len());
        for (g, st) in rest {
            stats.add(st);
            others.push(g);
        }
        model.visit(&mut Average { first: &mut grads, others: &others, k: k as f64 });
        (grads, stats)
    }

    /// Sends the stepped weights of the first device's model to every replica.
    pub(super) fn broadcast(&mut self, model: &M) {
        for (m, d) in &mut self.copies {
            *m = model.clone().fork(d);
        }
    }
}

fn one_batch<M: Trainable>(model: &M, batch: &M::Batch) -> (GradientsParams, Stats) {
    let (loss, stats) = model.loss(batch);
    (GradientsParams::from_grads(loss.backward(), model), stats)
}

/// Replaces each gradient of `first` by the mean over `first` and `others`, on the device of
/// `first`'s.
struct Average<'a> {
    first: &'a mut GradientsParams,
    others: &'a [GradientsParams],
    k: f64,
}

impl ModuleVisitor for Average<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(mut sum) = self.first.remove::<D>(param.id) else { return };
        let device = sum.device();
        for g in self.others {
            if let Some(t) = g.get::<D>(param.id) {
                sum = sum + t.to_device(&device);
            }
        }
        self.first.register::<D>(param.id, sum / self.k);
    }
}

/// Forces every parameter's lazy initialisation.
struct Materialise;

impl ModuleVisitor for Materialise {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<D, Int>>) {
        let _ = param.val();
    }
    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<D, Bool>>) {
        let _ = param.val();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::nn::LinearConfig;
    use burn::tensor::TensorData;

    /// The gradients of `layer` for the loss Σ w ⊙ layer(x).
    fn grads_for(layer: &burn::nn::Linear, w: f32) -> GradientsParams {
        let dev = Device::flex().autodiff();
        let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0], [1, 3]), &dev);
        let loss = (layer.forward(x) * w).sum();
        GradientsParams::from_grads(loss.backward(), layer)
    }

    #[test]
    fn average_is_the_mean_of_the_replicas_gradients() {
        let layer = LinearConfig::new(3, 2).init(&Device::flex().autodiff());
        let (mut first, others) = (grads_for(&layer, 1.0), [grads_for(&layer, 2.0), grads_for(&layer, 6.0)]);
        let want = grads_for(&layer, 3.0); // (1 + 2 + 6) / 3
        layer.visit(&mut Average { first: &mut first, others: &others, k: 3.0 });
        let id = layer.weight.id;
        let (got, want) = (first.get::<2>(id).unwrap().into_data(), want.get::<2>(id).unwrap().into_data());
        got.assert_approx_eq::<f32>(&want, burn::tensor::Tolerance::default());
    }
}
