//! The shipped image potential's input gradient against central finite differences, in
//! f64. Its own test process: the f64 flex device must be set up before any f32 tensor.

use burn::prelude::*;
use em_core::gradcheck::{f64_device, input_gradient_error};
use em_image::energy_net::{ImageShape, potential_config};

#[test]
fn mnist_potential_input_gradient_matches_finite_differences() {
    // The shipped per-position readout on a small image (8x8, pooled twice to 2x2).
    let d = f64_device();
    let v = potential_config(ImageShape {
        channels: 1,
        height: 8,
        width: 8,
    })
    .with_hidden_channels(3)
    .with_head_hidden(4)
    .init(&d);
    let x = Tensor::<2>::random([2, 64], burn::tensor::Distribution::Normal(0.0, 1.0), &d);
    let err = input_gradient_error(&v, x, 1e-5);
    assert!(err < 1e-4, "max rel err {err:e}");
}
