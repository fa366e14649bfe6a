//! Cross-cutting gradient checks (f64): the explicit input gradients of the composed potentials
//! against finite differences, and parameter gradients taken by burn's first-order autodiff
//! *through* those explicit gradients against finite differences in the parameters.

use burn::prelude::*;
use burn::tensor::{DType, Distribution};
use em_core::gradcheck::{
    f64_autodiff_device, f64_device, input_gradient_error, max_relative_error, param_gradient_error,
};
use em_core::lid::hessian;
use em_core::nn::{
    Activation, ConvPotential2dConfig, ImageReadout, MlpPotentialConfig, SeqConvPotentialConfig,
    SeqReadout,
};
use em_core::potential::Potential;

/// A flow-matching-like loss on the explicit gradient: `mean_b ||-grad_x V(x_b) - u_b||^2`.
fn flow_like_loss<P: Potential>(p: &P, x: &Tensor<2>, u: &Tensor<2>) -> Tensor<1> {
    (p.grad_x(x.clone()).neg() - u.clone())
        .powi_scalar(2)
        .sum_dim(1)
        .mean()
}

fn normal(shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

#[test]
fn f64_devices_really_are_f64() {
    assert_eq!(normal([1, 1], &f64_device()).dtype(), DType::F64);
    assert_eq!(normal([1, 1], &f64_autodiff_device()).dtype(), DType::F64);
}

#[test]
fn composed_potentials_input_gradients_match_finite_differences() {
    let device = f64_device();
    let mlp = MlpPotentialConfig::new(5)
        .with_hidden(12)
        .with_blocks(3)
        .with_confinement(0.05)
        .init(&device);
    let err = input_gradient_error(&mlp, normal([4, 5], &device), 1e-5);
    eprintln!("MlpPotential input-gradient max rel err {err:e}");
    assert!(err < 1e-4, "MlpPotential: {err:e}");

    let seq = SeqConvPotentialConfig::new(7, 4)
        .with_hidden_channels(6)
        .with_kernel(5)
        .with_blocks(2)
        .with_head_hidden(8)
        .with_activation(Activation::Softplus)
        .init(&device);
    let err = input_gradient_error(&seq, normal([3, 28], &device), 1e-5);
    eprintln!("SeqConvPotential input-gradient max rel err {err:e}");
    assert!(err < 1e-4, "SeqConvPotential: {err:e}");

    let img = ConvPotential2dConfig::new(1, 4, 4)
        .with_hidden_channels(4)
        .with_blocks(2)
        .with_head_hidden(6)
        .with_activation(Activation::Tanh)
        .init(&device);
    let err = input_gradient_error(&img, normal([2, 16], &device), 1e-5);
    eprintln!("ConvPotential2d input-gradient max rel err {err:e}");
    assert!(err < 1e-4, "ConvPotential2d: {err:e}");

    // The per-position summed readouts (position embedding, output scale).
    let seq = SeqConvPotentialConfig::new(7, 4)
        .with_hidden_channels(6)
        .with_kernel(5)
        .with_blocks(2)
        .with_head_hidden(8)
        .with_readout(SeqReadout::PositionSum)
        .with_output_scale(100.0)
        .init(&device);
    let err = input_gradient_error(&seq, normal([3, 28], &device), 1e-5);
    eprintln!("SeqConvPotential (position sum) input-gradient max rel err {err:e}");
    assert!(err < 1e-4, "SeqConvPotential position sum: {err:e}");

    let img = ConvPotential2dConfig::new(1, 4, 4)
        .with_hidden_channels(4)
        .with_blocks(2)
        .with_head_hidden(6)
        .with_readout(ImageReadout::PositionSum)
        .with_output_scale(100.0)
        .init(&device);
    let err = input_gradient_error(&img, normal([2, 16], &device), 1e-5);
    eprintln!("ConvPotential2d (position sum) input-gradient max rel err {err:e}");
    assert!(err < 1e-4, "ConvPotential2d position sum: {err:e}");
}

#[test]
fn autodiff_through_explicit_gradient_trains_mlp_parameters() {
    let device = f64_autodiff_device();
    let model = MlpPotentialConfig::new(3)
        .with_hidden(6)
        .with_blocks(2)
        .with_activation(Activation::GeluTanh)
        .init(&device);
    let (x, u) = (normal([4, 3], &device), normal([4, 3], &device));
    let err = param_gradient_error(&model, |m| flow_like_loss(m, &x, &u), 1e-5, 8);
    eprintln!("MlpPotential d(flow loss)/d(theta) max rel err {err:e}");
    assert!(err < 1e-3, "max rel err {err:e}");
}

#[test]
fn autodiff_through_explicit_gradient_trains_conv_parameters() {
    let device = f64_autodiff_device();
    let seq = SeqConvPotentialConfig::new(5, 3)
        .with_hidden_channels(4)
        .with_kernel(3)
        .with_blocks(1)
        .with_head_hidden(4)
        .init(&device);
    let (x, u) = (normal([2, 15], &device), normal([2, 15], &device));
    let err = param_gradient_error(&seq, |m| flow_like_loss(m, &x, &u), 1e-5, 6);
    eprintln!("SeqConvPotential d(flow loss)/d(theta) max rel err {err:e}");
    assert!(err < 1e-3, "SeqConvPotential: {err:e}");

    let img = ConvPotential2dConfig::new(1, 4, 4)
        .with_hidden_channels(3)
        .with_blocks(1)
        .with_head_hidden(4)
        .with_activation(Activation::Softplus)
        .init(&device);
    let (x, u) = (normal([2, 16], &device), normal([2, 16], &device));
    let err = param_gradient_error(&img, |m| flow_like_loss(m, &x, &u), 1e-5, 6);
    eprintln!("ConvPotential2d d(flow loss)/d(theta) max rel err {err:e}");
    assert!(err < 1e-3, "ConvPotential2d: {err:e}");

    // Position-sum readouts: the embedding is a parameter the input gradient depends on.
    let seq = SeqConvPotentialConfig::new(5, 3)
        .with_hidden_channels(4)
        .with_kernel(3)
        .with_blocks(1)
        .with_head_hidden(4)
        .with_readout(SeqReadout::PositionSum)
        .with_output_scale(10.0)
        .init(&device);
    let (x, u) = (normal([2, 15], &device), normal([2, 15], &device));
    let err = param_gradient_error(&seq, |m| flow_like_loss(m, &x, &u), 1e-5, 6);
    eprintln!("SeqConvPotential (position sum) d(flow loss)/d(theta) max rel err {err:e}");
    assert!(err < 1e-3, "SeqConvPotential position sum: {err:e}");

    let img = ConvPotential2dConfig::new(1, 4, 4)
        .with_hidden_channels(3)
        .with_blocks(1)
        .with_head_hidden(4)
        .with_activation(Activation::Softplus)
        .with_readout(ImageReadout::PositionSum)
        .with_output_scale(10.0)
        .init(&device);
    let (x, u) = (normal([2, 16], &device), normal([2, 16], &device));
    let err = param_gradient_error(&img, |m| flow_like_loss(m, &x, &u), 1e-5, 6);
    eprintln!("ConvPotential2d (position sum) d(flow loss)/d(theta) max rel err {err:e}");
    assert!(err < 1e-3, "ConvPotential2d position sum: {err:e}");
}

#[test]
fn hessian_by_autodiff_through_grad_x_matches_finite_differences() {
    let x = [0.4, -0.2, 1.1];
    let config = MlpPotentialConfig::new(3).with_hidden(8).with_blocks(2);
    let ad = f64_autodiff_device();
    let model = config.init(&ad);
    let h_ad = hessian(&model, &x, 1e-4, &ad).expect("autodiff hessian");
    let model_plain = model.valid();
    let h_fd = hessian(&model_plain, &x, 1e-4, &f64_device()).expect("fd hessian");
    let err = max_relative_error(h_ad.as_slice(), h_fd.as_slice());
    eprintln!("Hessian autodiff vs finite differences max rel err {err:e}");
    assert!(err < 1e-5, "max rel err {err:e}");
}
