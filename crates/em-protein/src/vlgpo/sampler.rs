//! VLGPO's posterior sampler (`posterior_sample` of `sample.py`), seeded with our RNG:
//! Euler steps of the prior's ODE, each followed by `J` guidance steps on
//! `0.5 (f_norm(softmax(decode(z + (1 - t - h) v(z, t)))) - 1)^2`, then argmax decoding,
//! deduplication and the top `k` by the predictor. Torch's RNG stream is not reproduced:
//! the same seed gives other starting latents than VLGPO's code.

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::softmax;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

use crate::cnn::Cnn;
use crate::sequence::Sequence;

use super::VlgpoError;
use super::settings::VlgpoSettings;
use super::unet::Unet1D;

/// A latent decoder the sampler can guide through: logits `[B, L, 20]` (our alphabet order)
/// of latents `[B, latent]`, differentiable in the latent on an autodiff device.
pub trait LatentDecoder: Module {
    /// The latent width.
    fn latent_dim(&self) -> usize;
    /// Per-position logits `[B, L, 20]` of latents `z [B, latent]`.
    fn decode_logits(&self, z: Tensor<2>) -> Tensor<3>;
}

/// The designs of one [`sample`] run.
#[derive(Debug, Clone, PartialEq)]
pub struct VlgpoDesigns {
    /// Up to `top_k` distinct sequences, best predictor score first.
    pub sequences: Vec<Sequence>,
    /// The predictor's raw score of each (one-hot input, [`Cnn::score`]).
    pub scores: Vec<f32>,
    /// Distinct sequences among the `n_samples` decoded latents.
    pub n_unique: usize,
}

/// Per-latent guidance loss `0.5 (f_norm - 1)^2` `[B]` at latents `z [B, 1, latent]`, time
/// `t` and step `h`: the one-step estimate `z + (1 - t - h) v(z, t)` of the ODE's end point
/// is decoded, the predictor scores its softmax, and `f_norm = (f - f_min) / (f_max - f_min)`.
pub fn guidance_loss<D: LatentDecoder>(
    unet: &Unet1D,
    decoder: &D,
    predictor: &Cnn,
    z: Tensor<3>,
    t: f64,
    h: f64,
    settings: &VlgpoSettings,
) -> Tensor<1> {
    let [batch, _, latent] = z.dims();
    let v = unet.forward(z.clone(), &vec![t; batch]);
    let end = (z + v * (1.0 - t - h)).reshape([batch, latent]);
    let probs = softmax(decoder.decode_logits(end), 2);
    let f = (predictor.forward(probs) - settings.f_min) / (settings.f_max - settings.f_min);
    (f - 1.0).square() * 0.5
}

/// Gradient of the summed [`guidance_loss`] with respect to `z` (same shape, no graph),
/// through the UNet, the decoder and the predictor. The modules must live on an autodiff
/// device (`module.clone().train().no_grad()`); `z` may be plain.
pub fn guidance_gradient<D: LatentDecoder>(
    unet: &Unet1D,
    decoder: &D,
    predictor: &Cnn,
    z: Tensor<3>,
    t: f64,
    h: f64,
    settings: &VlgpoSettings,
) -> Tensor<3> {
    let z = z.detach().autodiff().require_grad();
    let loss = guidance_loss(unet, decoder, predictor, z.clone(), t, h, settings);
    let grads = loss.sum().backward();
    z.grad(&grads)
        .expect("latent marked require_grad has a gradient")
}

/// Standard normal latents `[n, 1, latent]` from `StdRng::seed_from_u64(seed)`.
pub fn initial_latents(n: usize, latent: usize, seed: u64, device: &Device) -> Tensor<3> {
    let mut rng = StdRng::seed_from_u64(seed);
    let values: Vec<f32> = (0..n * latent)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    Tensor::from_data(TensorData::new(values, [n, 1, latent]), device)
}

/// The latents after the guided ODE (before decoding), `[n_samples, 1, latent]`.
pub fn guided_latents<D: LatentDecoder>(
    unet: &Unet1D,
    decoder: &D,
    predictor: &Cnn,
    settings: &VlgpoSettings,
    seed: u64,
) -> Result<Tensor<3>, VlgpoError> {
    settings.check()?;
    let plain_unet = unet.valid();
    let device = plain_unet.init_conv.weight.val().device();
    let (ad_unet, ad_decoder, ad_predictor) = (
        unet.clone().train().no_grad(),
        decoder.clone().train().no_grad(),
        predictor.clone().train().no_grad(),
    );
    let n = settings.n_samples;
    let mut z = initial_latents(n, decoder.latent_dim(), seed, &device);
    let steps = settings.ode_steps;
    let times: Vec<f64> = (0..=steps).map(|i| i as f64 / steps as f64).collect();
    for w in times.windows(2) {
        let (t, h) = (w[0], w[1] - w[0]);
        z = z.clone() + plain_unet.forward(z, &vec![t; n]) * h;
        for _ in 0..settings.j {
            let g = guidance_gradient(
                &ad_unet,
                &ad_decoder,
                &ad_predictor,
                z.clone(),
                t,
                h,
                settings,
            );
            z = z - g * (h * settings.alpha);
        }
    }
    Ok(z)
}

/// Runs VLGPO's posterior sampler: [`guided_latents`], argmax decoding, first occurrence of
/// each distinct sequence, then the `top_k` best by the predictor's one-hot score (ties keep
/// the order of first occurrence). Same seed, same designs.
pub fn sample<D: LatentDecoder>(
    unet: &Unet1D,
    decoder: &D,
    predictor: &Cnn,
    settings: &VlgpoSettings,
    seed: u64,
) -> Result<VlgpoDesigns, VlgpoError> {
    let z = guided_latents(unet, decoder, predictor, settings, seed)?;
    let [n, _, latent] = z.dims();
    let logits = decoder.valid().decode_logits(z.reshape([n, latent]));
    let [_, length, width] = logits.dims();
    if width != crate::alphabet::ALPHABET_SIZE {
        return Err(VlgpoError::Decoder(format!(
            "logits have {width} entries per position, expected {}",
            crate::alphabet::ALPHABET_SIZE
        )));
    }
    let indices: Vec<i64> = logits
        .argmax(2)
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("converted to i64");
    let mut seen = std::collections::HashSet::new();
    let mut unique: Vec<Vec<u8>> = Vec::new();
    for row in indices.chunks(length) {
        let seq: Vec<u8> = row.iter().map(|&i| i as u8).collect();
        if seen.insert(seq.clone()) {
            unique.push(seq);
        }
    }
    let scores = predictor.score(&unique)?;
    let mut order: Vec<usize> = (0..unique.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order.truncate(settings.top_k);
    let n_unique = unique.len();
    let sequences = order
        .iter()
        .map(|&i| {
            Sequence::from_indices(unique[i].clone()).map_err(|e| {
                VlgpoError::Decoder(format!("decoded a residue outside the alphabet: {e}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(VlgpoDesigns {
        sequences,
        scores: order.iter().map(|&i| scores[i]).collect(),
        n_unique,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cnn::CnnConfig;
    use crate::vlgpo::Unet1DConfig;
    use burn::nn::{Linear, LinearConfig};

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
            self.linear.forward(z).reshape([batch, self.length, 20]) * 4.0
        }
    }

    fn tiny(device: &Device) -> (Unet1D, LinearDecoder, Cnn, VlgpoSettings) {
        let unet = Unet1DConfig::vlgpo(4).init(3, device);
        let decoder = LinearDecoder {
            linear: LinearConfig::new(8, 6 * 20).init(device),
            length: 6,
        };
        let cnn = CnnConfig::new()
            .with_kernel_size(3)
            .with_channels(4)
            .with_embedding(6)
            .init(5, device);
        let settings = VlgpoSettings {
            n_samples: 6,
            ode_steps: 3,
            top_k: 4,
            j: 2,
            alpha: 5.0,
            f_min: -1.0,
            f_max: 1.0,
        };
        (unet, decoder, cnn, settings)
    }

    #[test]
    fn a_seed_gives_the_same_designs_and_guidance_moves_the_latents() {
        let device = Device::flex();
        let (unet, decoder, cnn, settings) = tiny(&device);
        let a = sample(&unet, &decoder, &cnn, &settings, 11).unwrap();
        let b = sample(&unet, &decoder, &cnn, &settings, 11).unwrap();
        assert_eq!(a, b);
        assert!(!a.sequences.is_empty() && a.sequences.len() <= settings.top_k);
        assert!(a.n_unique >= a.sequences.len());
        assert!(a.scores.windows(2).all(|w| w[0] >= w[1]), "{:?}", a.scores);
        let idx: Vec<Vec<u8>> = a.sequences.iter().map(|s| s.indices().to_vec()).collect();
        assert_eq!(cnn.score(&idx).unwrap(), a.scores);
        let z = |s: &VlgpoSettings, seed| {
            crate::cnn::tensor_to_vec(guided_latents(&unet, &decoder, &cnn, s, seed).unwrap())
        };
        let guided = z(&settings, 11);
        assert_ne!(guided, z(&settings, 12));
        let unguided = VlgpoSettings {
            alpha: 0.0,
            ..settings.clone()
        };
        let moved = guided
            .iter()
            .zip(z(&unguided, 11))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            moved > 1e-4,
            "guidance left the latents unchanged ({moved})"
        );
    }

    #[test]
    fn bad_settings_and_decoders_are_named() {
        let device = Device::flex();
        let (unet, decoder, cnn, mut settings) = tiny(&device);
        settings.ode_steps = 0;
        let err = sample(&unet, &decoder, &cnn, &settings, 0).unwrap_err();
        assert!(err.to_string().contains("ode_steps"), "{err}");
    }
}
