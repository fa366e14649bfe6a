//! VLGPO's sequence VAE ([`SeqVae`], loaded from the release) as the decoder the posterior
//! sampler guides through.

use burn::prelude::*;

use super::sampler::LatentDecoder;
use crate::vae::SeqVae;

impl LatentDecoder for SeqVae {
    fn latent_dim(&self) -> usize {
        SeqVae::latent_dim(self)
    }

    fn decode_logits(&self, z: Tensor<2>) -> Tensor<3> {
        SeqVae::decode_logits(self, z)
    }
}
