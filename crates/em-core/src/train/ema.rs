//! Exponential moving average of a module's weights, `ema <- decay * ema + (1 - decay) * w`,
//! kept as a plain (non-autodiff) copy of the module matched to it by parameter id.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;

/// The EMA copy of a module; created from the module it tracks.
#[derive(Debug, Clone)]
pub struct Ema<M> {
    module: M,
    decay: f64,
}

impl<M: Module> Ema<M> {
    /// Starts the average at the current weights of `model` (a non-autodiff copy).
    pub fn new(model: &M, decay: f64) -> Self {
        Self {
            module: model.valid(),
            decay,
        }
    }

    /// Wraps an already-averaged module (e.g. loaded from a checkpoint).
    pub fn from_module(module: M, decay: f64) -> Self {
        Self { module, decay }
    }

    /// One update towards the current weights of `model` (same parameter ids).
    pub fn update(&mut self, model: &M) {
        let mut collect = Collect::default();
        model.visit(&mut collect);
        let mut mapper = Blend {
            weights: collect.weights,
            decay: self.decay,
        };
        self.module = self.module.clone().map(&mut mapper);
    }

    /// The averaged module (non-autodiff).
    pub fn module(&self) -> &M {
        &self.module
    }

    /// The decay rate.
    pub fn decay(&self) -> f64 {
        self.decay
    }
}

#[derive(Default)]
struct Collect {
    weights: HashMap<ParamId, Tensor<1>>,
}

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val().detach().without_autodiff();
        let n = t.shape().num_elements();
        self.weights.insert(param.id, t.reshape([n]));
    }
}

struct Blend {
    weights: HashMap<ParamId, Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(w) = self.weights.remove(&param.id) else {
            return param;
        };
        let decay = self.decay;
        param.map(|e| {
            let shape = e.shape();
            let w = w.reshape(shape).to_device(&e.device());
            e * decay + w * (1.0 - decay)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Module, Debug)]
    struct Tiny {
        w: Param<Tensor<2>>,
    }

    #[test]
    fn averages_by_param_id() {
        let dev = crate::gradcheck::f64_device();
        let m = Tiny {
            w: Param::from_tensor(Tensor::zeros([2, 2], &dev)),
        };
        let mut ema = Ema::new(&m, 0.9);
        let id = m.w.id;
        let m2 = Tiny {
            w: Param::initialized(id, Tensor::ones([2, 2], &dev)),
        };
        ema.update(&m2);
        ema.update(&m2);
        // 0 -> 0.1 -> 0.19
        let v = ema
            .module()
            .w
            .val()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(v.iter().all(|&a| (a - 0.19).abs() < 1e-6), "{v:?}");
    }
}
