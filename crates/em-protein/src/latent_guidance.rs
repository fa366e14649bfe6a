//! Predictor guidance in a sequence-VAE latent: an [`EnergyTerm`] over latents `z` that
//! decodes them with the VAE, feeds the decoder's softmax to the GGS CNN predictor(s) and
//! pulls the normalised fitness towards 1, as the Energy Matching paper's protein sampler
//! (`pred.forward_soft(vae.decode(x))`), with its gradient back to `z` by burn autodiff.

use burn::prelude::*;
use burn::tensor::activation::softmax;
use em_core::energy::EnergyTerm;

use crate::cnn::Cnn;
use crate::vae::SeqVae;

/// `E(z) = (eps/zeta^2) · 1/2 · (f_norm(softmax(decode_logits(z))) - 1)^2`.
///
/// `f_norm = (f - min_gt) / (max_gt - min_gt)` is a predictor's raw score normalised like
/// the oracle's; with `k` members `f = mean_i f_i - kappa · std_i f_i` (population std, see
/// [`conservative_mean`]). The softmax is over the 20 logits of each position at
/// temperature 1 (the paper's `forward_soft`). The VAE and the CNNs are fixed: the
/// gradient is taken with respect to `z` only.
#[derive(Debug, Clone)]
pub struct LatentGuidance {
    vae: SeqVae,
    members: Vec<Cnn>,
    kappa: f64,
    zeta: f64,
    min_gt: f64,
    max_gt: f64,
}

impl LatentGuidance {
    /// Guidance through `vae`'s decoder by `predictors` (at least one; more form an
    /// ensemble guided on `mean - kappa · std`). Callers check the numbers first:
    /// `zeta > 0`, `kappa >= 0`, `max_gt > min_gt`. Panics on an empty `predictors`.
    pub fn new(
        vae: SeqVae,
        predictors: &[Cnn],
        kappa: f64,
        zeta: f64,
        min_gt: f64,
        max_gt: f64,
    ) -> Self {
        assert!(
            !predictors.is_empty(),
            "latent guidance needs at least one predictor"
        );
        Self {
            vae: vae.valid(),
            members: predictors.iter().map(|p| p.valid()).collect(),
            kappa,
            zeta,
            min_gt,
            max_gt,
        }
    }

    /// The VAE the latents are decoded with.
    pub fn vae(&self) -> &SeqVae {
        &self.vae
    }

    /// The guided fitness of latents with the given modules (plain or autodiff copies).
    fn fitness_with(&self, vae: &SeqVae, cnns: &[Cnn], z: Tensor<2>) -> Tensor<1> {
        let soft = softmax(vae.decode_logits(z), 2);
        let span = self.max_gt - self.min_gt;
        let fs = cnns
            .iter()
            .map(|c| (c.forward(soft.clone()) - self.min_gt) / span)
            .collect();
        conservative_mean(fs, self.kappa)
    }

    /// Normalised predicted fitness `[B]` of latents `z: [B, latent_dim]` (the ensemble's
    /// `mean - kappa · std`), without autodiff.
    pub fn fitness(&self, z: Tensor<2>) -> Tensor<1> {
        self.fitness_with(&self.vae, &self.members, z)
    }

    fn scale(&self, eps: f64) -> f64 {
        eps / (self.zeta * self.zeta)
    }
}

/// `mean_i f_i - kappa · std_i f_i` over `k >= 1` members' scores `[B]` (population std;
/// one member is its score itself), as differentiable tensor ops. The std's square root
/// has its argument floored at 1e-30, so its gradient is finite where members agree.
pub fn conservative_mean(mut fs: Vec<Tensor<1>>, kappa: f64) -> Tensor<1> {
    if fs.len() == 1 {
        return fs.remove(0);
    }
    let k = fs.len() as f64;
    let f = Tensor::stack::<2>(fs, 0);
    let mean = f.clone().mean_dim(0);
    if kappa == 0.0 {
        return mean.squeeze_dim(0);
    }
    let var = (f - mean.clone()).powi_scalar(2).sum_dim(0) / k;
    let std = var.clamp_min(1e-30).sqrt();
    (mean - std * kappa).squeeze_dim(0)
}

impl EnergyTerm for LatentGuidance {
    fn name(&self) -> &str {
        "latent_predictor_guidance"
    }

    fn energy(&self, z: Tensor<2>, _t: f64, eps: f64) -> Tensor<1> {
        (self.fitness(z) - 1.0).powi_scalar(2) * (0.5 * self.scale(eps))
    }

    fn grad(&self, z: Tensor<2>, _t: f64, eps: f64) -> Tensor<2> {
        let c = self.scale(eps);
        if c == 0.0 {
            return z.zeros_like();
        }
        // First-order autodiff in z only: parameters are not tracked.
        let vae = self.vae.clone().train().no_grad();
        let cnns: Vec<Cnn> = self
            .members
            .iter()
            .map(|cnn| cnn.clone().train().no_grad())
            .collect();
        let za = z.detach().autodiff().require_grad();
        let e = (self.fitness_with(&vae, &cnns, za.clone()) - 1.0).powi_scalar(2) * (0.5 * c);
        let grads = e.sum().backward();
        za.grad(&grads)
            .expect("input marked require_grad has a gradient")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cnn::CnnConfig;
    use crate::vae::SeqVaeConfig;

    fn parts() -> (SeqVae, Vec<Cnn>) {
        let device = Device::flex();
        let cfg = SeqVaeConfig {
            length: 6,
            input_dim: 8,
            latent_dim: 3,
            embedding_dim: 8,
        };
        let cnn = |s| {
            CnnConfig::new()
                .with_kernel_size(3)
                .with_channels(4)
                .with_embedding(6)
                .init(s, &device)
        };
        (cfg.init(2, &device), vec![cnn(5), cnn(6)])
    }

    #[test]
    fn energy_is_the_formula_and_zero_eps_gives_zero_gradient() {
        let (vae, cnns) = parts();
        let g = LatentGuidance::new(vae, &cnns, 0.5, 0.5, -0.1, 0.1);
        let z = Tensor::<2>::ones([2, 3], &Device::flex()) * 0.3;
        let f = g
            .fitness(z.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let e = g
            .energy(z.clone(), 0.0, 0.2)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (fi, ei) in f.iter().zip(&e) {
            let want = 0.2 / 0.25 * 0.5 * (fi - 1.0).powi(2);
            assert!((ei - want).abs() < 1e-5 * want.max(1.0), "{ei} vs {want}");
        }
        let grad = g
            .grad(z.clone(), 0.0, 0.0)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(grad.iter().all(|&v| v == 0.0));
        let grad = g.grad(z, 0.0, 0.2);
        assert_eq!(grad.dims(), [2, 3]);
        let grad = grad.into_data().try_to_vec::<f32>().unwrap();
        assert!(grad.iter().any(|&v| v != 0.0));
    }

    #[test]
    fn one_member_is_its_own_fitness_and_kappa_subtracts_the_spread() {
        let (vae, cnns) = parts();
        let z = Tensor::<2>::ones([2, 3], &Device::flex()) * -0.4;
        let vals = |g: &LatentGuidance| {
            g.fitness(z.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let one: Vec<Vec<f32>> = cnns
            .iter()
            .map(|c| {
                vals(&LatentGuidance::new(
                    vae.clone(),
                    &[c.clone()],
                    3.0,
                    0.5,
                    -0.1,
                    0.1,
                ))
            })
            .collect();
        let both = vals(&LatentGuidance::new(vae, &cnns, 0.7, 0.5, -0.1, 0.1));
        for b in 0..2 {
            let (p, q) = (f64::from(one[0][b]), f64::from(one[1][b]));
            let want = (p + q) / 2.0 - 0.7 * (p - q).abs() / 2.0;
            assert!((p - q).abs() > 1e-4, "members agree");
            assert!(
                (f64::from(both[b]) - want).abs() < 1e-5,
                "{} vs {want}",
                both[b]
            );
        }
    }
}
