//! End-to-end tests: run the `emdesign` binary on tiny inputs (ripgrep style). Each module
//! below holds one kind of check.

// Shared helpers: temp dirs and running the binary.
#[allow(dead_code)]
mod util;

// Bad workflow files and data: exit != 0, the message names file:line and field, and no
// partial output is left behind.
mod bad_inputs;

// Tiny workflows end to end: cache hits, --force, determinism, kill-and-resume.
mod workflows;

// Protein subcommands: data split sizes, oracle and eval on the data directory.
mod protein;

// The protein workflow on workflows/smoke.toml: outputs, cache hits, determinism,
// kill-and-resume, bad workflow files (data-dir tests skip without the data directory).
mod protein_workflow;

// workflows/own-protein.toml on the shipped example: no oracle, FASTA headers, constraints,
// bad own-data inputs.
mod own_protein;

// `emdesign round` on own data: three lab rounds with the oracle as the lab (data-dir
// test), and the refusals of bad results files and benchmark workflows.
mod rounds;

// The image workflow (tiny MNIST run, cache hit, bad TOML, CIFAR-10 without its files) and
// `image fid`.
mod image_workflow;

// `emdesign bench`: a tiny methods x tasks x seeds grid, outputs, resume, narrowing.
mod bench;

// What a cluster engine drives: `run --only`, per-stage locks and `unlock`, `export
// snakemake` (the Snakemake run itself needs snakemake, installed by .ci/run).
mod cluster;

// The protein workflow in a sequence-VAE latent ([latent], issue 18): the smoke workflow with
// VLGPO's published VAE (data-dir test), and the refusals of own data and a missing VAE.
mod latent_workflow;
