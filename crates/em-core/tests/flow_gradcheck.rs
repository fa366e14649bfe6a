//! d(flow loss)/d(theta) by burn autodiff through the explicit input gradient of an
//! `MlpPotential`, against central finite differences in f64 (relative error < 1e-3).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use em_core::loss::{FlowBatch, flow_loss};
use em_core::nn::{Activation, MlpPotential, MlpPotentialConfig};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Flattened values of every float parameter, in visit order.
struct Flatten(Vec<Vec<f64>>);
impl ModuleVisitor for Flatten {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.0.push(
            p.val()
                .into_data()
                .convert::<f64>()
                .try_to_vec::<f64>()
                .unwrap(),
        );
    }
}

/// Gradients of every float parameter, in visit order. A parameter outside the graph (the
/// head bias: a constant shift of V, invisible to grad_x V) has gradient zero.
struct GradsOf<'a>(&'a GradientsParams, Vec<Vec<f64>>);
impl ModuleVisitor for GradsOf<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let g = match self.0.get::<D>(p.id) {
            Some(g) => g.into_data().convert::<f64>().try_to_vec::<f64>().unwrap(),
            None => vec![0.0; p.val().shape().num_elements()],
        };
        self.1.push(g);
    }
}

/// Adds `h` to entry `entry` of float parameter number `param`.
struct Nudge {
    param: usize,
    entry: usize,
    h: f64,
    seen: usize,
}
impl ModuleMapper for Nudge {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let idx = self.seen;
        self.seen += 1;
        if idx != self.param {
            return p;
        }
        let (entry, h) = (self.entry, self.h);
        p.map(|t| {
            let shape = t.shape();
            let dev = t.device();
            let mut v = t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap();
            v[entry] += h;
            Tensor::from_data(TensorData::new(v, shape), &dev)
        })
    }
}

#[test]
fn flow_loss_parameter_gradient_matches_finite_differences() {
    let base = em_core::gradcheck::f64_device();
    let dev = base.clone().autodiff();
    dev.seed(3);
    let cfg = MlpPotentialConfig::new(2)
        .with_hidden(6)
        .with_blocks(1)
        .with_activation(Activation::Softplus)
        .with_confinement(0.1);
    let model: MlpPotential = cfg.init(&dev);

    let x1 = Tensor::<2>::from_data(
        TensorData::new(
            vec![1.0f64, 0.5, -1.2, 0.3, 0.4, -0.9, 2.0, 1.1, -0.5, -1.5],
            [5, 2],
        ),
        &dev,
    );
    let mut batch = FlowBatch::draw(x1, true, &mut StdRng::seed_from_u64(8)).unwrap();
    batch.t[0] = 0.95; // one sample in the down-weighted region t > t_cut
    let loss = flow_loss(&model, &batch, 0.9);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut ad = GradsOf(&grads, Vec::new());
    model.visit(&mut ad);

    let plain = model.valid();
    let mut flat = Flatten(Vec::new());
    plain.visit(&mut flat);
    let inner = |t: &Tensor<2>| Tensor::<2>::from_data(t.to_data(), &base);
    let plain_batch = FlowBatch {
        x0: inner(&batch.x0),
        x1: inner(&batch.x1),
        t: batch.t.clone(),
    };
    let eval = |m: MlpPotential| flow_loss(&m, &plain_batch, 0.9).into_scalar::<f64>();

    let h = 1e-6;
    let (mut num, mut den, mut checked) = (0.0f64, 0.0f64, 0usize);
    for (p, values) in flat.0.iter().enumerate() {
        for e in 0..values.len() {
            let up = eval(plain.clone().map(&mut Nudge {
                param: p,
                entry: e,
                h,
                seen: 0,
            }));
            let dn = eval(plain.clone().map(&mut Nudge {
                param: p,
                entry: e,
                h: -h,
                seen: 0,
            }));
            let fd = (up - dn) / (2.0 * h);
            let a = ad.1[p][e];
            let rel = (fd - a).abs() / fd.abs().max(a.abs()).max(1e-4);
            assert!(
                rel < 1e-3,
                "param {p} entry {e}: autodiff {a} vs finite diff {fd}"
            );
            num += (fd - a).powi(2);
            den += fd * fd;
            checked += 1;
        }
    }
    assert!(checked > 50, "checked only {checked} entries");
    assert!(
        (num / den).sqrt() < 1e-5,
        "global relative error {}",
        (num / den).sqrt()
    );
}
