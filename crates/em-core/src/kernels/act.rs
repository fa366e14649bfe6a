//! Fused bias + activation + derivative passes over row-major `[rows, width]` f32 blocks, with
//! a branch-free polynomial `exp` that the compiler vectorises inside pulp's runtime
//! CPU-feature dispatch (AVX2/FMA where present, scalar otherwise; no `target-cpu`).

use crate::nn::Activation;

/// sqrt(2 / pi), the constant of the tanh approximation of GELU.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
/// Cubic coefficient of the tanh approximation of GELU.
const GELU_CUBIC: f32 = 0.044_715;

/// `e^x` for f32, relative error about 2 ulp on `[-87, 88]`; inputs are clamped there, so
/// the result is always finite and positive (Cephes `expf`: range reduction by `ln 2` split in
/// two parts and a degree-5 polynomial on `[-ln2/2, ln2/2]`).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    let r2 = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r2 + r + 1.0;
    // 2^n by building the exponent bits; n + 127 is in [1, 254] after the clamp. The integer
    // n is read from the low mantissa bits of n + 1.5 * 2^23 (a bitcast): a float -> int `as`
    // saturates and maps NaN to 0, a branch per element that keeps the loop scalar.
    const MAGIC: f32 = 12_582_912.0;
    let n_bits = (n + MAGIC).to_bits().wrapping_sub(MAGIC.to_bits());
    e * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

/// `(act(z), act'(z))` of one pre-activation, all through [`exp`] except softplus's log.
#[inline(always)]
fn value_and_slope(act: Activation, z: f32) -> (f32, f32) {
    match act {
        Activation::Silu => {
            let s = 1.0 / (1.0 + exp(-z));
            (z * s, s * (1.0 + z * (1.0 - s)))
        }
        Activation::Softplus => {
            let e = exp(-z.abs());
            let s = if z >= 0.0 {
                1.0 / (1.0 + e)
            } else {
                e / (1.0 + e)
            };
            (z.max(0.0) + e.ln_1p(), s)
        }
        Activation::Tanh => {
            let t = tanh(z);
            (t, 1.0 - t * t)
        }
        Activation::GeluTanh => {
            let z2 = z * z;
            let t = tanh(SQRT_2_OVER_PI * (z + GELU_CUBIC * z2 * z));
            let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * z2);
            (
                0.5 * z * (1.0 + t),
                0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * du,
            )
        }
    }
}

/// `(act(z), act'(z), act''(z))` of one pre-activation: the curvature is what the
/// parameter gradient of a loss on `grad_x V` needs (forward-mode tangents through `act'`).
#[inline(always)]
fn value_slope_curvature(act: Activation, z: f32) -> (f32, f32, f32) {
    match act {
        Activation::Silu => {
            let s = 1.0 / (1.0 + exp(-z));
            let q = s * (1.0 - s);
            (
                z * s,
                s * (1.0 + z * (1.0 - s)),
                q * (2.0 + z * (1.0 - 2.0 * s)),
            )
        }
        Activation::Softplus => {
            let (v, s) = value_and_slope(act, z);
            (v, s, s * (1.0 - s))
        }
        Activation::Tanh => {
            let t = tanh(z);
            let d = 1.0 - t * t;
            (t, d, -2.0 * t * d)
        }
        Activation::GeluTanh => {
            let z2 = z * z;
            let t = tanh(SQRT_2_OVER_PI * (z + GELU_CUBIC * z2 * z));
            let dt = 1.0 - t * t;
            let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * z2);
            let ddu = SQRT_2_OVER_PI * 6.0 * GELU_CUBIC * z;
            (
                0.5 * z * (1.0 + t),
                0.5 * (1.0 + t) + 0.5 * z * dt * du,
                dt * (du + 0.5 * z * (ddu - 2.0 * t * du * du)),
            )
        }
    }
}

/// `tanh(u) = 1 - 2 / (e^{2u} + 1)`, odd-symmetrised so small `|u|` keeps its sign.
#[inline(always)]
fn tanh(u: f32) -> f32 {
    let a = u.abs();
    let t = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
    t.copysign(u)
}

struct BiasAct<'a> {
    act: Activation,
    z: &'a mut [f32],
    slope: &'a mut [f32],
    bias: &'a [f32],
}

impl pulp::WithSimd for BiasAct<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let width = self.bias.len();
        let rows = self
            .z
            .chunks_exact_mut(width)
            .zip(self.slope.chunks_exact_mut(width));
        // One monomorphic loop per activation, so each vectorises on its own.
        macro_rules! run {
            ($a:expr) => {
                for (zr, sr) in rows {
                    for ((z, s), &b) in zr.iter_mut().zip(sr.iter_mut()).zip(self.bias) {
                        let (v, d) = value_and_slope($a, *z + b);
                        *z = v;
                        *s = d;
                    }
                }
            };
        }
        match self.act {
            Activation::Silu => run!(Activation::Silu),
            Activation::Softplus => run!(Activation::Softplus),
            Activation::Tanh => run!(Activation::Tanh),
            Activation::GeluTanh => run!(Activation::GeluTanh),
        }
    }
}

/// In place over `z: [rows, bias.len()]`: `z <- act(z + bias)` and `slope <- act'(z + bias)`.
/// An empty `bias` slice is not allowed; pass zeros for a bias-free layer.
pub fn bias_act(act: Activation, z: &mut [f32], bias: &[f32], slope: &mut [f32]) {
    assert!(
        !bias.is_empty() && z.len().is_multiple_of(bias.len()) && slope.len() == z.len(),
        "bias_act shapes"
    );
    pulp::Arch::new().dispatch(BiasAct {
        act,
        z,
        slope,
        bias,
    });
}

struct BiasActCurvature<'a> {
    act: Activation,
    z: &'a mut [f32],
    slope: &'a mut [f32],
    curvature: &'a mut [f32],
    bias: &'a [f32],
}

impl pulp::WithSimd for BiasActCurvature<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let width = self.bias.len();
        let rows = self
            .z
            .chunks_exact_mut(width)
            .zip(self.slope.chunks_exact_mut(width))
            .zip(self.curvature.chunks_exact_mut(width));
        macro_rules! run {
            ($a:expr) => {
                for ((zr, sr), cr) in rows {
                    for (((z, s), c), &b) in zr
                        .iter_mut()
                        .zip(sr.iter_mut())
                        .zip(cr.iter_mut())
                        .zip(self.bias)
                    {
                        let (v, d, k) = value_slope_curvature($a, *z + b);
                        *z = v;
                        *s = d;
                        *c = k;
                    }
                }
            };
        }
        match self.act {
            Activation::Silu => run!(Activation::Silu),
            Activation::Softplus => run!(Activation::Softplus),
            Activation::Tanh => run!(Activation::Tanh),
            Activation::GeluTanh => run!(Activation::GeluTanh),
        }
    }
}

/// [`bias_act`] that also writes `curvature <- act''(z + bias)`.
pub fn bias_act_curvature(
    act: Activation,
    z: &mut [f32],
    bias: &[f32],
    slope: &mut [f32],
    curvature: &mut [f32],
) {
    assert!(
        !bias.is_empty()
            && z.len().is_multiple_of(bias.len())
            && slope.len() == z.len()
            && curvature.len() == z.len(),
        "bias_act_curvature shapes"
    );
    pulp::Arch::new().dispatch(BiasActCurvature {
        act,
        z,
        slope,
        curvature,
        bias,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed_form(act: Activation, z: f64) -> (f64, f64) {
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        match act {
            Activation::Silu => (z * sig(z), sig(z) * (1.0 + z * (1.0 - sig(z)))),
            Activation::Softplus => (z.max(0.0) + (-z.abs()).exp().ln_1p(), sig(z)),
            Activation::Tanh => (z.tanh(), 1.0 - z.tanh().powi(2)),
            Activation::GeluTanh => {
                let c = f64::from(SQRT_2_OVER_PI);
                let k = f64::from(GELU_CUBIC);
                let t = (c * (z + k * z.powi(3))).tanh();
                let du = c * (1.0 + 3.0 * k * z * z);
                (
                    0.5 * z * (1.0 + t),
                    0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * du,
                )
            }
        }
    }

    /// The curvature against a central difference of the f64 closed-form slope, and value
    /// and slope equal to [`bias_act`]'s, on a grid over [-30, 30].
    #[test]
    fn curvature_matches_the_slopes_derivative() {
        let width = 5;
        let bias: Vec<f32> = (0..width).map(|j| 0.2 * j as f32 - 0.4).collect();
        let pre: Vec<f32> = (0..width * 601).map(|i| -30.0 + 0.02 * i as f32).collect();
        for act in [
            Activation::Silu,
            Activation::Softplus,
            Activation::Tanh,
            Activation::GeluTanh,
        ] {
            let (mut z, mut s, mut c) = (pre.clone(), vec![0.0; pre.len()], vec![0.0; pre.len()]);
            bias_act_curvature(act, &mut z, &bias, &mut s, &mut c);
            let (mut z1, mut s1) = (pre.clone(), vec![0.0; pre.len()]);
            bias_act(act, &mut z1, &bias, &mut s1);
            assert_eq!(
                (&z, &s),
                (&z1, &s1),
                "{act:?}: value and slope differ from bias_act"
            );
            for (i, &p) in pre.iter().enumerate() {
                let zin = f64::from(p + bias[i % width]);
                let h = 1e-5;
                let want = (closed_form(act, zin + h).1 - closed_form(act, zin - h).1) / (2.0 * h);
                assert!(
                    (f64::from(c[i]) - want).abs() < 1e-5 * (1.0 + want.abs()) + 2e-6,
                    "{act:?}''({zin}) = {} vs {want}",
                    c[i]
                );
            }
        }
    }

    #[test]
    fn exp_is_accurate_and_finite_everywhere() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = f64::from(x).exp();
            worst = worst.max((f64::from(exp(x)) - want).abs() / want);
            x += 0.013;
        }
        assert!(worst < 5e-7, "max relative error {worst:e}");
        for x in [-1e30f32, -200.0, 200.0, 1e30] {
            assert!(exp(x).is_finite() && exp(x) > 0.0, "exp({x})");
        }
    }

    /// Every activation and its slope against f64 closed forms, through the dispatched pass
    /// (bias included), on a grid over [-30, 30] that covers saturation on both sides.
    #[test]
    fn fused_pass_matches_closed_forms() {
        let width = 7;
        let bias: Vec<f32> = (0..width).map(|j| 0.25 * j as f32 - 0.75).collect();
        let pre: Vec<f32> = (0..width * 341).map(|i| -30.0 + 0.025 * i as f32).collect();
        for act in [
            Activation::Silu,
            Activation::Softplus,
            Activation::Tanh,
            Activation::GeluTanh,
        ] {
            let mut z = pre.clone();
            let mut s = vec![0.0; z.len()];
            bias_act(act, &mut z, &bias, &mut s);
            for (i, &p) in pre.iter().enumerate() {
                let zin = f64::from(p + bias[i % width]);
                let (v, d) = closed_form(act, zin);
                let tol = 2e-6 * (1.0 + v.abs());
                assert!(
                    (f64::from(z[i]) - v).abs() < tol,
                    "{act:?}({zin}) = {} vs {v}",
                    z[i]
                );
                assert!(
                    (f64::from(s[i]) - d).abs() < 2e-6,
                    "{act:?}'({zin}) = {} vs {d}",
                    s[i]
                );
            }
        }
    }
}
