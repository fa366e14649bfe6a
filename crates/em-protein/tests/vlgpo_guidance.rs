//! VLGPO's guidance gradient (through the UNet prior, a decoder and the GGS CNN predictor)
//! against central finite differences of the guidance loss, on tiny random modules in f64.
//! Its own test binary: the f64 device must be the first flex device of the process.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use em_core::gradcheck::{
    central_difference, f64_device, max_relative_error, tensor_from_f64, to_vec_f64,
};
use em_protein::cnn::CnnConfig;
use em_protein::vlgpo::{
    LatentDecoder, Unet1DConfig, VlgpoSettings, guidance_gradient, guidance_loss,
};

/// A linear map latent -> logits `[L, 20]`, a stand-in for the VAE decoder.
#[derive(Module, Debug)]
struct LinearDecoder {
    linear: Linear,
    #[module(skip)]
    length: usize,
}

impl LatentDecoder for LinearDecoder {
    fn latent_dim(&self) -> usize {
        self.linear.weight.dims()[0]
    }
    fn decode_logits(&self, z: Tensor<2>) -> Tensor<3> {
        let [batch, _] = z.dims();
        self.linear.forward(z).reshape([batch, self.length, 20]) * 3.0
    }
}

#[test]
fn guidance_gradient_matches_finite_differences() {
    let device = f64_device();
    let (batch, latent) = (2, 8);
    let unet = Unet1DConfig::vlgpo(4).init(7, &device);
    let decoder = LinearDecoder {
        linear: LinearConfig::new(latent, 6 * 20).init(&device),
        length: 6,
    };
    let cnn = CnnConfig::new()
        .with_kernel_size(3)
        .with_channels(4)
        .with_embedding(6)
        .init(5, &device);
    let settings = VlgpoSettings {
        f_min: -0.5,
        f_max: 0.5,
        ..VlgpoSettings::published(
            em_protein::datasets::Task::Aav,
            em_protein::benchmark::Difficulty::Medium,
        )
    };
    let (t, h) = (0.3125, 1.0 / 32.0);
    let z0: Vec<f64> = (0..batch * latent)
        .map(|i| 1.3 * ((i as f64) * 0.77 + 0.2).sin())
        .collect();
    let loss = |z: &[f64]| -> f64 {
        let z = tensor_from_f64(z, [batch, 1, latent], &device);
        to_vec_f64(guidance_loss(&unet, &decoder, &cnn, z, t, h, &settings))
            .iter()
            .sum()
    };
    let numeric = central_difference(loss, &z0, 1e-5);
    let analytic = to_vec_f64(guidance_gradient(
        &unet.clone().train().no_grad(),
        &decoder.clone().train().no_grad(),
        &cnn.clone().train().no_grad(),
        tensor_from_f64(&z0, [batch, 1, latent], &device),
        t,
        h,
        &settings,
    ));
    let scale = numeric.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = max_relative_error(&analytic, &numeric);
    eprintln!("guidance gradient: max rel error {err:.2e} (max |grad| {scale:.2e})");
    assert!(scale > 1e-6, "the loss does not depend on z");
    assert!(err < 1e-6, "relative error {err}");
}
