//! Finite-difference checks for explicit gradients: input gradients of potentials, layer VJPs,
//! and parameter gradients of any scalar loss of a burn module (used by the engine's tests).
//!
//! Relative error convention (all helpers): `max_i |a_i - n_i| / max(|a_i|, |n_i|, floor)`
//! with `floor = 1e-3 * max_j |n_j|` (plus a tiny absolute floor), so entries that are
//! numerically zero do not blow up the ratio while every entry of normal size is held to a
//! per-element relative bar. Run checks in f64 ([`f64_device`]).

use std::sync::OnceLock;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::{FloatDType, Gradients, TensorData};

use crate::nn::VjpLayer;
use crate::potential::Potential;

/// The flex CPU device configured once per process to use f64 floats.
///
/// # Panics
/// If the flex device was already initialised with another float type before the first call
/// (create every f64 tensor of a test process through this function).
pub fn f64_device() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            let mut device = Device::flex();
            // An `Err` here means something already initialised the device; the assert below
            // reports it with the dtype that was actually set.
            let _ = device.configure(FloatDType::F64);
            let dtype = device.settings().float_dtype;
            assert_eq!(
                dtype,
                FloatDType::F64,
                "flex device was initialised before f64_device() with {dtype:?}"
            );
            device
        })
        .clone()
}

/// [`f64_device`] with autodiff.
pub fn f64_autodiff_device() -> Device {
    f64_device().autodiff()
}

/// Every float parameter of `module`, in visit order, as one `Vec<f32>` (tests compare
/// trained weights with it; reading a parameter also materialises a lazy initialisation).
pub fn param_values<M: Module>(module: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let data = p.val().into_data().convert::<f32>();
            self.0
                .extend(data.try_to_vec::<f32>().expect("converted to f32"));
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

/// Flattens any float tensor to `Vec<f64>` (row-major).
pub fn to_vec_f64<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// Builds a float tensor of `shape` from row-major `values` on `device`.
pub fn tensor_from_f64<const D: usize>(
    values: &[f64],
    shape: [usize; D],
    device: &Device,
) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
}

/// Central finite differences `(f(x + h e_i) - f(x - h e_i)) / 2h` of a scalar function.
pub fn central_difference(mut f: impl FnMut(&[f64]) -> f64, x: &[f64], h: f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|i| {
            xp[i] = x[i] + h;
            let fp = f(&xp);
            xp[i] = x[i] - h;
            let fm = f(&xp);
            xp[i] = x[i];
            (fp - fm) / (2.0 * h)
        })
        .collect()
}

/// Maximum elementwise relative error of `analytic` against `numeric` (convention in the
/// module doc). Returns `f64::INFINITY` on a length mismatch or a non-finite entry.
pub fn max_relative_error(analytic: &[f64], numeric: &[f64]) -> f64 {
    if analytic.len() != numeric.len() {
        return f64::INFINITY;
    }
    let scale = numeric.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let floor = (1e-3 * scale).max(1e-12);
    analytic
        .iter()
        .zip(numeric)
        .map(|(a, n)| {
            let err = (a - n).abs() / a.abs().max(n.abs()).max(floor);
            if err.is_finite() { err } else { f64::INFINITY }
        })
        .fold(0.0, f64::max)
}

/// Max relative error of `potential.grad_x(x)` (and of the gradient from
/// `energy_and_grad`) against central differences of `potential.energy` with step `h`.
///
/// Column `d` is perturbed in every row at once: `V(x_b)` depends on row `b` only, so one
/// pair of energy evaluations gives the column for the whole batch (2·dim evaluations).
pub fn input_gradient_error<P: Potential>(potential: &P, x: Tensor<2>, h: f64) -> f64 {
    let [batch, dim] = x.dims();
    let device = x.device();
    let analytic = to_vec_f64(potential.grad_x(x.clone()));
    let (_, g2) = potential.energy_and_grad(x.clone());
    let analytic2 = to_vec_f64(g2);
    let base = to_vec_f64(x);
    let mut numeric = vec![0.0; batch * dim];
    let mut xp = base.clone();
    for d in 0..dim {
        let eval = |sign: f64, xp: &mut Vec<f64>| {
            for b in 0..batch {
                xp[b * dim + d] = base[b * dim + d] + sign * h;
            }
            let e = to_vec_f64(potential.energy(tensor_from_f64(xp, [batch, dim], &device)));
            for b in 0..batch {
                xp[b * dim + d] = base[b * dim + d];
            }
            e
        };
        let ep = eval(1.0, &mut xp);
        let em = eval(-1.0, &mut xp);
        for b in 0..batch {
            numeric[b * dim + d] = (ep[b] - em[b]) / (2.0 * h);
        }
    }
    max_relative_error(&analytic, &numeric).max(max_relative_error(&analytic2, &numeric))
}

/// Max relative error of a vector-Jacobian product against finite differences.
///
/// With a fixed cotangent `u` (same shape as `f(x)`), the scalar `s(x) = sum(u * f(x))` has
/// gradient `J^T u`, which `vjp(x, u)` must return; it is compared to central differences of
/// `s` in every input element.
pub fn vjp_error<const DI: usize, const DO: usize>(
    f: impl Fn(Tensor<DI>) -> Tensor<DO>,
    vjp: impl Fn(Tensor<DI>, Tensor<DO>) -> Tensor<DI>,
    x: Tensor<DI>,
    u: Tensor<DO>,
    h: f64,
) -> f64 {
    let device = x.device();
    let shape: [usize; DI] = x.dims();
    let analytic = to_vec_f64(vjp(x.clone(), u.clone()));
    let numeric = central_difference(
        |v| {
            let xt = tensor_from_f64(v, shape, &device);
            (f(xt) * u.clone()).sum().into_scalar::<f64>()
        },
        &to_vec_f64(x),
        h,
    );
    max_relative_error(&analytic, &numeric)
}

/// [`vjp_error`] for any [`VjpLayer`] with step `1e-5`: `x` is the input, `u` a cotangent
/// shaped like the output.
pub fn layer_vjp_error<const I: usize, const O: usize, L: VjpLayer<I, O>>(
    layer: &L,
    x: Tensor<I>,
    u: Tensor<O>,
) -> f64 {
    vjp_error(
        |x| layer.forward_cached(x).0,
        |x, u| {
            let (_, cache) = layer.forward_cached(x);
            layer.input_vjp(&cache, u)
        },
        x,
        u,
        1e-5,
    )
}

/// Max relative error of burn's autodiff gradient of `loss(module)` with respect to the
/// module's float parameters against central differences, perturbing one parameter element
/// at a time.
///
/// `module` must live on an autodiff device and `loss` must return a one-element tensor. At
/// most `max_per_param` elements of each parameter tensor are checked (evenly strided; pass
/// `usize::MAX` for all), which keeps the cost at `2 * checked` loss evaluations.
pub fn param_gradient_error<M: Module + Clone>(
    module: &M,
    loss: impl Fn(&M) -> Tensor<1>,
    h: f64,
    max_per_param: usize,
) -> f64 {
    let grads = loss(module).backward();
    let mut collect = CollectGrads {
        grads: &grads,
        out: Vec::new(),
    };
    module.visit(&mut collect);

    let mut analytic = Vec::new();
    let mut numeric = Vec::new();
    for (p, (values, grad)) in collect.out.iter().enumerate() {
        let n = values.len();
        let stride = n.div_ceil(max_per_param.max(1)).max(1);
        for i in (0..n).step_by(stride) {
            let eval = |delta: f64| {
                let mut mapper = PerturbOne {
                    target: p,
                    index: i,
                    delta,
                    seen: 0,
                };
                loss(&module.clone().map(&mut mapper)).into_scalar::<f64>()
            };
            numeric.push((eval(h) - eval(-h)) / (2.0 * h));
            analytic.push(grad.as_ref().map_or(0.0, |g| g[i]));
        }
    }
    max_relative_error(&analytic, &numeric)
}

/// Visits float parameters in module order, recording values and gradients.
struct CollectGrads<'a> {
    grads: &'a Gradients,
    out: Vec<(Vec<f64>, Option<Vec<f64>>)>,
}

impl ModuleVisitor for CollectGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let grad = value.grad(self.grads).map(to_vec_f64);
        self.out.push((to_vec_f64(value), grad));
    }
}

/// Adds `delta` to element `index` of the `target`-th float parameter (module order).
struct PerturbOne {
    target: usize,
    index: usize,
    delta: f64,
    seen: usize,
}

impl ModuleMapper for PerturbOne {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let this = self.seen;
        self.seen += 1;
        if this != self.target {
            return param;
        }
        let (index, delta) = (self.index, self.delta);
        param.map(|t| {
            let shape: [usize; D] = t.dims();
            let device = t.device();
            let mut v = to_vec_f64(t);
            v[index] += delta;
            tensor_from_f64(&v, shape, &device)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Linear, LinearConfig};

    #[test]
    fn central_difference_of_a_cubic() {
        let g = central_difference(|v| v[0].powi(3) + v[0] * v[1], &[2.0, -1.0], 1e-5);
        assert!(max_relative_error(&g, &[11.0, 2.0]) < 1e-9, "{g:?}");
    }

    #[test]
    fn relative_error_convention() {
        assert_eq!(max_relative_error(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        assert!((max_relative_error(&[1.1], &[1.0]) - 0.1 / 1.1).abs() < 1e-12);
        // A near-zero entry is measured against 1e-3 of the largest one.
        assert!(max_relative_error(&[1.0, 1e-9], &[1.0, 0.0]) < 1e-5);
        assert_eq!(max_relative_error(&[1.0], &[1.0, 2.0]), f64::INFINITY);
        assert_eq!(max_relative_error(&[f64::NAN], &[1.0]), f64::INFINITY);
    }

    #[test]
    fn param_check_passes_true_gradients_and_catches_missing_ones() {
        let device = f64_autodiff_device();
        let layer = LinearConfig::new(3, 2).init(&device);
        let x = Tensor::<2>::ones([2, 3], &device);
        let good = |l: &Linear| l.forward(x.clone()).powi_scalar(2).sum();
        assert!(param_gradient_error(&layer, good, 1e-5, usize::MAX) < 1e-8);
        // Detaching the weight hides its gradient from autodiff: the check must fail.
        let bad = |l: &Linear| {
            (x.clone().matmul(l.weight.val().detach()))
                .powi_scalar(2)
                .sum()
        };
        assert!(param_gradient_error(&layer, bad, 1e-5, usize::MAX) > 0.5);
    }
}
