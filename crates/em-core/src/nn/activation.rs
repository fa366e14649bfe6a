//! Smooth activations with their derivatives written as tensor ops, so an input gradient that
//! passes through them stays differentiable in the parameters.

use burn::prelude::*;
use burn::tensor::activation::sigmoid;

/// sqrt(2 / pi), the constant of the tanh approximation of GELU.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// Cubic coefficient of the tanh approximation of GELU.
const GELU_CUBIC: f64 = 0.044_715;

/// A smooth (C-infinity) elementwise activation. ReLU is deliberately absent: EM trains on
/// `grad_x V`, and a piecewise-linear network has a piecewise-constant, zero-curvature
/// gradient field.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x * sigmoid(x)`.
    Silu,
    /// `ln(1 + e^x)`, computed as `max(x, 0) + ln(1 + e^{-|x|})` (no overflow).
    Softplus,
    /// `tanh(x)`.
    Tanh,
    /// GELU, tanh approximation: `x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
    GeluTanh,
}

impl Activation {
    /// Applies the activation elementwise.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Silu => x.clone() * sigmoid(x),
            Activation::Softplus => {
                let neg_abs = x.clone().abs().neg();
                x.clamp_min(0.0) + neg_abs.exp().log1p()
            }
            Activation::Tanh => x.tanh(),
            Activation::GeluTanh => {
                let inner = (x.clone() + x.clone().powi_scalar(3) * GELU_CUBIC) * SQRT_2_OVER_PI;
                x * (inner.tanh() + 1.0) * 0.5
            }
        }
    }

    /// The derivative `act'(x)` elementwise, as differentiable tensor ops.
    pub fn derivative<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Silu => {
                let s = sigmoid(x.clone());
                // s + x s (1 - s)
                s.clone() * (x * (s.neg() + 1.0) + 1.0)
            }
            Activation::Softplus => sigmoid(x),
            Activation::Tanh => x.tanh().powi_scalar(2).neg() + 1.0,
            Activation::GeluTanh => {
                let x2 = x.clone().powi_scalar(2);
                let inner = (x.clone() + x.clone() * x2.clone() * GELU_CUBIC) * SQRT_2_OVER_PI;
                let th = inner.tanh();
                let dinner = (x2 * (3.0 * GELU_CUBIC) + 1.0) * SQRT_2_OVER_PI;
                (th.clone() + 1.0) * 0.5 + x * (th.powi_scalar(2).neg() + 1.0) * dinner * 0.5
            }
        }
    }

    /// Forward pass keeping the pre-activation for [`Activation::input_vjp`].
    pub fn forward_cached<const D: usize>(&self, x: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
        (self.forward(x.clone()), x)
    }

    /// Vector-Jacobian product: `grad_y * act'(pre)`, with `pre` the cached pre-activation.
    pub fn input_vjp<const D: usize>(&self, pre: &Tensor<D>, grad_y: Tensor<D>) -> Tensor<D> {
        grad_y * self.derivative(pre.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{f64_device, tensor_from_f64, to_vec_f64, vjp_error};
    use burn::tensor::Distribution;

    const ALL: [Activation; 4] = [
        Activation::Silu,
        Activation::Softplus,
        Activation::Tanh,
        Activation::GeluTanh,
    ];

    #[test]
    fn derivatives_match_finite_differences() {
        let device = f64_device();
        let x = Tensor::<2>::random([3, 5], Distribution::Normal(0.0, 2.0), &device);
        let u = Tensor::<2>::random([3, 5], Distribution::Normal(0.0, 1.0), &device);
        for act in ALL {
            let err = vjp_error(
                |x| act.forward(x),
                |x, u| act.input_vjp(&x, u),
                x.clone(),
                u.clone(),
                1e-5,
            );
            assert!(err < 1e-4, "{act:?}: max rel err {err:e}");
        }
    }

    #[test]
    fn forward_matches_closed_forms_and_softplus_does_not_overflow() {
        let device = f64_device();
        let xs = [-800.0, -2.0, 0.0, 0.5, 800.0];
        let x = tensor_from_f64(&xs, [5], &device);
        let sp = to_vec_f64(Activation::Softplus.forward(x.clone()));
        let silu = to_vec_f64(Activation::Silu.forward(x));
        for (i, &v) in xs.iter().enumerate() {
            let want_sp = if v > 30.0 { v } else { v.exp().ln_1p() };
            assert!((sp[i] - want_sp).abs() < 1e-12, "softplus({v}) = {}", sp[i]);
            let want_silu = v / (1.0 + (-v).exp());
            assert!(
                (silu[i] - want_silu).abs() < 1e-12,
                "silu({v}) = {}",
                silu[i]
            );
        }
    }
}
