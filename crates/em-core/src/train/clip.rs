//! Global gradient norm over all of a module's parameters and clipping by it (burn's own
//! clipping works per parameter; Energy Matching clips the whole gradient to norm 1), and the
//! sum of two loss terms' gradients (so each term's norm can be logged before they are added).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

struct SquaredSum<'a> {
    grads: &'a GradientsParams,
    parts: Vec<Tensor<1>>,
}

impl ModuleVisitor for SquaredSum<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.parts.push(g.powi_scalar(2).sum());
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g * self.factor);
        }
    }
}

struct Add<'a> {
    into: &'a mut GradientsParams,
    from: &'a mut GradientsParams,
}

impl ModuleVisitor for Add<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let sum = match (
            self.into.remove::<D>(param.id),
            self.from.remove::<D>(param.id),
        ) {
            (Some(a), Some(b)) => a + b,
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => return,
        };
        self.into.register(param.id, sum);
    }
}

/// `a + b` parameter by parameter (a parameter missing from one side counts as zero).
pub fn add_grads<M: Module>(
    module: &M,
    mut a: GradientsParams,
    mut b: GradientsParams,
) -> GradientsParams {
    module.visit(&mut Add {
        into: &mut a,
        from: &mut b,
    });
    a
}

/// Euclidean norm of the gradient of all `module` parameters (one host sync).
pub fn global_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    let mut v = SquaredSum {
        grads,
        parts: Vec::new(),
    };
    module.visit(&mut v);
    if v.parts.is_empty() {
        return 0.0;
    }
    let sq = Tensor::cat(v.parts, 0).sum().into_scalar::<f64>();
    sq.sqrt()
}

/// Rescales the gradients so that their global norm is at most `max_norm`; returns the norm
/// before clipping. `max_norm <= 0` disables clipping.
pub fn clip_global_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let norm = global_norm(module, grads);
    if max_norm > 0.0 && norm.is_finite() && norm > max_norm {
        module.visit(&mut Scale {
            grads,
            factor: max_norm / norm,
        });
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Module, Debug)]
    struct Tiny {
        a: Param<Tensor<1>>,
        b: Param<Tensor<2>>,
    }

    #[test]
    fn norm_and_clip() {
        let dev = crate::gradcheck::f64_device().autodiff();
        let m = Tiny {
            a: Param::from_tensor(Tensor::from_data(TensorData::new(vec![1.0f32], [1]), &dev)),
            b: Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![2.0f32], [1, 1]),
                &dev,
            )),
        };
        // loss = 3a + 4b -> grad (3, 4), norm 5
        let loss = m.a.val().sum() * 3.0 + m.b.val().sum() * 4.0;
        let mut g = GradientsParams::from_grads(loss.backward(), &m);
        assert!((global_norm(&m, &g) - 5.0).abs() < 1e-6);
        assert!((clip_global_norm(&m, &mut g, 1.0) - 5.0).abs() < 1e-6);
        assert!((global_norm(&m, &g) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn two_backward_passes_add_up_to_one_on_the_sum() {
        let dev = crate::gradcheck::f64_device().autodiff();
        let m = Tiny {
            a: Param::from_tensor(Tensor::from_data(TensorData::new(vec![1.0f32], [1]), &dev)),
            b: Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![2.0f32], [1, 1]),
                &dev,
            )),
        };
        // f = a^2 b (grad (2ab, a^2) = (4, 1)), g = 3b (grad (0, 3)): sum (4, 4), norm sqrt 32
        let f = m.a.val().powi_scalar(2).sum() * m.b.val().sum();
        let g = m.b.val().sum() * 3.0;
        let gf = GradientsParams::from_grads(f.backward(), &m);
        let gg = GradientsParams::from_grads(g.backward(), &m);
        assert!((global_norm(&m, &gf) - 17f64.sqrt()).abs() < 1e-6);
        assert!((global_norm(&m, &gg) - 3.0).abs() < 1e-6);
        let sum = add_grads(&m, gf, gg);
        assert!((global_norm(&m, &sum) - 32f64.sqrt()).abs() < 1e-6);
    }
}
