//! Design constraints a lab sets (fixed positions, banned residues, allowed residues per
//! position, a cap on mutations from the wild type, a minimum distance between designs that
//! `selection` applies to the top-k), enforced while sampling: a
//! [`ConstraintTerm`] pins forbidden one-hot coordinates to the clamp box after every
//! Langevin step, decoding takes the argmax over allowed residues only, and every design
//! is re-checked ([`Constraints::violations`]).

use std::collections::BTreeMap;

use burn::prelude::*;
use burn::tensor::TensorData;
use em_core::energy::EnergyTerm;
use serde::{Deserialize, Serialize};

use crate::alphabet::{ALPHABET_SIZE, AMINO_ACIDS, residue_index, residue_letter};
use crate::sequence::Sequence;

/// Constraint settings (workflow `[design.constraints]`); positions use the wild type's
/// numbering (`first_position` is the number of its first residue, 1 by default).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConstraintsConfig {
    /// Positions kept at the wild type, as a list of numbers and ranges: `"1-10,25"`.
    pub fixed: String,
    /// Residues never placed anywhere (unless the wild type has them at a fixed
    /// position, which is an error), e.g. `"C"`.
    pub banned: String,
    /// Allowed residues per position (keys are positions or ranges), e.g. `"30" = "AGS"`.
    pub allowed: BTreeMap<String, String>,
    /// At most this many substitutions from the wild type (unset: no cap).
    pub max_mutations: Option<usize>,
    /// Any two designs written differ at least at this many positions (greedy by predicted
    /// score: a design is kept only if it is this far from every better one kept; unset:
    /// distinct designs). Left out of stage keys when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_distance: Option<usize>,
}

/// A constraint setting that cannot be applied: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {why}")]
pub struct ConstraintError {
    /// Dotted field under `design.constraints`.
    pub field: String,
    /// What is wrong.
    pub why: String,
}

fn cerr(field: &str, why: impl Into<String>) -> ConstraintError {
    ConstraintError {
        field: format!("design.constraints.{field}"),
        why: why.into(),
    }
}

/// Parses `"1-10,25"` into 0-based indices of a sequence of `length` numbered from `first`.
fn parse_positions(
    text: &str,
    first: usize,
    length: usize,
    field: &str,
) -> Result<Vec<usize>, ConstraintError> {
    let last = first + length - 1;
    let number = |t: &str| -> Result<usize, ConstraintError> {
        let n: usize = t
            .trim()
            .parse()
            .map_err(|_| cerr(field, format!("'{}' is not a position number", t.trim())))?;
        if n < first || n > last {
            return Err(cerr(
                field,
                format!("position {n} is outside the wild type (positions {first}-{last})"),
            ));
        }
        Ok(n - first)
    };
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if a > b {
                    return Err(cerr(
                        field,
                        format!("range '{}' runs backwards", part.trim()),
                    ));
                }
                out.extend(a..=b);
            }
            None => out.push(number(part)?),
        }
    }
    Ok(out)
}

fn parse_residues(text: &str, field: &str) -> Result<[bool; ALPHABET_SIZE], ConstraintError> {
    let mut set = [false; ALPHABET_SIZE];
    for (i, b) in text.bytes().enumerate() {
        if b == b',' || b.is_ascii_whitespace() {
            continue;
        }
        let r = residue_index(b).ok_or_else(|| {
            cerr(
                field,
                format!(
                    "character {}: unknown residue '{}' (expected one of ARNDCQEGHILKMFPSTWYV)",
                    i + 1,
                    b as char
                ),
            )
        })?;
        set[r as usize] = true;
    }
    Ok(set)
}

/// Checked constraints against one wild type.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraints {
    wild_type: Sequence,
    first_position: usize,
    /// `allowed[p][r]`: residue `r` may be placed at position `p`.
    allowed: Vec<[bool; ALPHABET_SIZE]>,
    fixed: Vec<bool>,
    max_mutations: Option<usize>,
    min_distance: Option<usize>,
}

impl ConstraintsConfig {
    /// Whether nothing is constrained.
    pub fn is_empty(&self) -> bool {
        self.fixed.trim().is_empty()
            && self.banned.trim().is_empty()
            && self.allowed.is_empty()
            && self.max_mutations.is_none()
            && self.min_distance.is_none()
    }

    /// Checks the settings against `wild_type` (numbered from `first_position`): positions
    /// inside it, residue letters known, and a satisfiable set (every position keeps an
    /// allowed residue, a fixed position's wild-type residue is allowed, the positions that
    /// must mutate fit under `max_mutations`), `min_distance` in `1..=length`.
    ///
    /// ```
    /// use em_protein::constraints::ConstraintsConfig;
    /// let wt = "MKCV".parse().unwrap();
    /// let cfg = ConstraintsConfig { fixed: "1".into(), banned: "C".into(), ..Default::default() };
    /// let c = cfg.check(&wt, 1).unwrap();
    /// assert!(c.violations(&"MKCV".parse().unwrap()).contains(&"C3: residue C is not allowed at 3".to_string()));
    /// assert!(c.violations(&"MKAV".parse().unwrap()).is_empty());
    /// ```
    pub fn check(
        &self,
        wild_type: &Sequence,
        first_position: usize,
    ) -> Result<Constraints, ConstraintError> {
        let length = wild_type.len();
        if let Some(n) = self.min_distance
            && !(1..=length).contains(&n)
        {
            return Err(cerr(
                "min_distance",
                format!(
                    "must be between 1 and the sequence length {length} (substitutions \
                     between two designs), got {n}"
                ),
            ));
        }
        let banned = parse_residues(&self.banned, "banned")?;
        if banned.iter().all(|&b| b) {
            return Err(cerr("banned", "bans every residue"));
        }
        let mut allowed = vec![banned.map(|b| !b); length];
        for (key, letters) in &self.allowed {
            let field = format!("allowed.\"{key}\"");
            let set = parse_residues(letters, &field)?;
            for p in parse_positions(key, first_position, length, &field)? {
                for r in 0..ALPHABET_SIZE {
                    allowed[p][r] &= set[r];
                }
            }
        }
        let mut fixed = vec![false; length];
        for p in parse_positions(&self.fixed, first_position, length, "fixed")? {
            let wt = wild_type.indices()[p] as usize;
            if !allowed[p][wt] {
                return Err(cerr(
                    "fixed",
                    format!(
                        "position {} is fixed to the wild type's {}, which `banned` or \
                         `allowed` excludes there",
                        p + first_position,
                        residue_letter(wt as u8) as char
                    ),
                ));
            }
            fixed[p] = true;
            allowed[p] = [false; ALPHABET_SIZE];
            allowed[p][wt] = true;
        }
        if let Some(p) = allowed.iter().position(|a| !a.iter().any(|&x| x)) {
            return Err(cerr(
                "allowed",
                format!(
                    "no residue is left at position {} after `banned` and `allowed`",
                    p + first_position
                ),
            ));
        }
        let forced = (0..length)
            .filter(|&p| !allowed[p][wild_type.indices()[p] as usize])
            .count();
        if let Some(k) = self.max_mutations
            && forced > k
        {
            return Err(cerr(
                "max_mutations",
                format!(
                    "{forced} positions must leave the wild type (its residue is excluded \
                     there), more than max_mutations = {k}"
                ),
            ));
        }
        Ok(Constraints {
            wild_type: wild_type.clone(),
            first_position,
            allowed,
            fixed,
            max_mutations: self.max_mutations,
            min_distance: self.min_distance,
        })
    }
}

impl Constraints {
    /// Sequence length.
    pub fn length(&self) -> usize {
        self.allowed.len()
    }

    /// The wild type.
    pub fn wild_type(&self) -> &Sequence {
        &self.wild_type
    }

    /// Whether residue `r` may be placed at 0-based position `p`.
    pub fn allows(&self, p: usize, r: u8) -> bool {
        self.allowed[p][r as usize]
    }

    /// The cap on substitutions from the wild type, when set.
    pub fn max_mutations(&self) -> Option<usize> {
        self.max_mutations
    }

    /// The minimum number of substitutions between two designs, when set.
    pub fn min_distance(&self) -> Option<usize> {
        self.min_distance
    }

    /// Positions fixed to the wild type (0-based).
    pub fn fixed_count(&self) -> usize {
        self.fixed.iter().filter(|&&f| f).count()
    }

    /// Every way `seq` breaks the constraints, as `A23G: why` (empty when none).
    pub fn violations(&self, seq: &Sequence) -> Vec<String> {
        let mut out = Vec::new();
        if seq.len() != self.length() {
            out.push(format!(
                "length {} differs from the wild type's {}",
                seq.len(),
                self.length()
            ));
            return out;
        }
        let wt = self.wild_type.indices();
        for (p, &r) in seq.indices().iter().enumerate() {
            let num = p + self.first_position;
            let name = format!("{}{num}", residue_letter(r) as char);
            if self.fixed[p] && r != wt[p] {
                out.push(format!("{name}: position {num} is fixed"));
            } else if !self.allows(p, r) {
                out.push(format!(
                    "{name}: residue {} is not allowed at {num}",
                    residue_letter(r) as char
                ));
            }
        }
        let n = mutation_count(&self.wild_type, seq);
        if let Some(k) = self.max_mutations
            && n > k
        {
            out.push(format!(
                "{n} mutations from the wild type exceed max_mutations = {k}"
            ));
        }
        out
    }

    /// The Langevin term that pins forbidden coordinates of states in the box `clamp` when
    /// the sampler steps with `dt`.
    pub fn term(&self, clamp: [f64; 2], dt: f64, device: &Device) -> ConstraintTerm {
        let [lo, hi] = clamp;
        let dim = self.length() * ALPHABET_SIZE;
        let (mut pinned, mut target) = (vec![0.0f32; dim], vec![0.0f32; dim]);
        for (p, allowed) in self.allowed.iter().enumerate() {
            let only = allowed.iter().filter(|&&a| a).count() == 1;
            for (r, &ok) in allowed.iter().enumerate() {
                let i = p * ALPHABET_SIZE + r;
                if !ok {
                    (pinned[i], target[i]) = (1.0, lo as f32);
                } else if only {
                    (pinned[i], target[i]) = (1.0, hi as f32);
                }
            }
        }
        let row = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [1, dim]), device);
        // Beyond the target by far more than any gradient or noise moves a coordinate in
        // one step, so the clamp lands it exactly on the target.
        let push: Vec<f32> = target
            .iter()
            .zip(&pinned)
            .map(|(&t, &m)| {
                let sign = if t as f64 <= lo { 1.0 } else { -1.0 };
                m * sign * (PUSH * (hi - lo)) as f32
            })
            .collect();
        ConstraintTerm {
            pinned: row(pinned),
            target: row(target),
            push: row(push),
            dt,
        }
    }

    /// Decodes host states (`rows * length*20` values) by the argmax over each position's
    /// allowed residues (ties to the lower index), then, over `max_mutations`, reverts the
    /// mutated positions whose residue leads the wild type's by the smallest margin until
    /// the cap holds. Every returned sequence satisfies the constraints.
    pub fn decode(&self, values: &[f32]) -> Vec<Sequence> {
        let width = self.length() * ALPHABET_SIZE;
        let wt = self.wild_type.indices();
        values
            .chunks(width)
            .map(|row| {
                let mut seq: Vec<u8> = row
                    .chunks(ALPHABET_SIZE)
                    .enumerate()
                    .map(|(p, v)| {
                        let mut best: Option<usize> = None;
                        for r in (0..ALPHABET_SIZE).filter(|&r| self.allowed[p][r]) {
                            if best.is_none_or(|b| v[r] > v[b]) {
                                best = Some(r);
                            }
                        }
                        best.expect("checked: every position allows a residue") as u8
                    })
                    .collect();
                if let Some(k) = self.max_mutations {
                    let mut revertible: Vec<(f32, usize)> = (0..seq.len())
                        .filter(|&p| seq[p] != wt[p] && self.allowed[p][wt[p] as usize])
                        .map(|p| {
                            let v = &row[p * ALPHABET_SIZE..(p + 1) * ALPHABET_SIZE];
                            (v[seq[p] as usize] - v[wt[p] as usize], p)
                        })
                        .collect();
                    revertible.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                    let mut n = (0..seq.len()).filter(|&p| seq[p] != wt[p]).count();
                    for (_, p) in revertible {
                        if n <= k {
                            break;
                        }
                        seq[p] = wt[p];
                        n -= 1;
                    }
                }
                Sequence::from_indices(seq).expect("indices lie in 0..20")
            })
            .collect()
    }

    /// The mutations of `seq` from the wild type in standard notation (`A23G`), numbered
    /// from the wild type's first position.
    pub fn mutations(&self, seq: &Sequence) -> Vec<String> {
        mutation_list(&self.wild_type, seq, self.first_position)
    }
}

/// How far past the box a pinned coordinate is pushed, in box widths (ours: far beyond any
/// step of the potential (output scale 1000) or the noise, still finite in f32).
const PUSH: f64 = 1e6;

/// Substitutions between two equal-length sequences.
pub fn mutation_count(wild_type: &Sequence, seq: &Sequence) -> usize {
    wild_type
        .indices()
        .iter()
        .zip(seq.indices())
        .filter(|(a, b)| a != b)
        .count()
}

/// The substitutions turning `wild_type` into `seq` as `A23G` tokens, positions numbered
/// from `first_position`.
///
/// ```
/// let p = |t: &str| t.parse().unwrap();
/// assert_eq!(em_protein::constraints::mutation_list(&p("ARN"), &p("GRD"), 1), ["A1G", "N3D"]);
/// ```
pub fn mutation_list(wild_type: &Sequence, seq: &Sequence, first_position: usize) -> Vec<String> {
    wild_type
        .indices()
        .iter()
        .zip(seq.indices())
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(p, (&a, &b))| {
            format!(
                "{}{}{}",
                AMINO_ACIDS[a as usize] as char,
                p + first_position,
                AMINO_ACIDS[b as usize] as char
            )
        })
        .collect()
}

/// The Langevin term of [`Constraints::term`]: zero energy, and at every pinned coordinate
/// a gradient that takes one step of size `dt` from `x` to far beyond its target, so the
/// clamp box puts it on the target (the clamp minimum for a forbidden residue, the maximum
/// for a position's only allowed one). Free coordinates get no gradient.
pub struct ConstraintTerm {
    pinned: Tensor<2>,
    target: Tensor<2>,
    push: Tensor<2>,
    dt: f64,
}

impl EnergyTerm for ConstraintTerm {
    fn name(&self) -> &str {
        "constraints"
    }

    fn energy(&self, x: Tensor<2>, _t: f64, _eps: f64) -> Tensor<1> {
        let [b, _] = x.dims();
        Tensor::zeros([b], &x.device())
    }

    fn grad(&self, x: Tensor<2>, _t: f64, _eps: f64) -> Tensor<2> {
        ((x - self.target.clone()) * self.pinned.clone() + self.push.clone()) / self.dt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use em_core::langevin::{LangevinConfig, sample};
    use em_core::loss::flow::host_normal;
    use em_core::potential::Potential;
    use em_core::schedule::Schedule;
    use rand::SeedableRng;

    fn seq(s: &str) -> Sequence {
        s.parse().unwrap()
    }

    fn check(cfg: ConstraintsConfig, wt: &str) -> Result<Constraints, String> {
        cfg.check(&seq(wt), 1).map_err(|e| e.to_string())
    }

    /// `V = -sum_i w_i x_i`: pulls every coordinate towards a fixed random corner, i.e. a
    /// tiny potential whose unconstrained minimum breaks the constraints.
    struct Tilt(Vec<f32>);
    impl Potential for Tilt {
        fn dim(&self) -> usize {
            self.0.len()
        }
        fn energy(&self, x: Tensor<2>) -> Tensor<1> {
            self.energy_and_grad(x).0
        }
        fn energy_and_grad(&self, x: Tensor<2>) -> (Tensor<1>, Tensor<2>) {
            let [b, d] = x.dims();
            let w = Tensor::<2>::from_data(TensorData::new(self.0.clone(), [1, d]), &x.device());
            let e = (x * w.clone()).sum_dim(1).squeeze_dim::<1>(1).neg();
            (e, w.neg().expand([b, d]))
        }
    }

    #[test]
    fn sampled_designs_never_violate_the_constraints() {
        let wt = seq("MKCVLAGE");
        let cfg = ConstraintsConfig {
            fixed: "1-2,7".into(),
            banned: "CW".into(),
            allowed: [
                ("4".to_string(), "VIL".to_string()),
                ("5-6".into(), "AGS".into()),
            ]
            .into_iter()
            .collect(),
            max_mutations: Some(2),
            min_distance: None,
        };
        let c = cfg.check(&wt, 1).unwrap();
        let device = Device::flex();
        let dim = wt.len() * ALPHABET_SIZE;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        // The tilt favours W (banned) everywhere, strongly, and random residues otherwise.
        let w: Vec<f32> = (0..dim)
            .map(|i| {
                if i % ALPHABET_SIZE == 17 {
                    50.0
                } else {
                    (i * 7 % 13) as f32
                }
            })
            .collect();
        let potential = Tilt(w);
        let mut lcfg = LangevinConfig::new(60, 0.01, Schedule::Constant { eps: 0.5 });
        lcfg.clamp = Some((-1.0, 1.0));
        let term = c.term([-1.0, 1.0], lcfg.dt, &device);
        let x0 = host_normal(64, dim, &mut rng, &device);
        let free = sample(&potential, &[], x0.clone(), &lcfg, 5).unwrap();
        let free_seqs = crate::representation::decode(free.x, wt.len());
        assert!(
            free_seqs.iter().all(|s| !c.violations(s).is_empty()),
            "the tilt alone breaks them"
        );
        let out = sample(&potential, &[&term], x0, &lcfg, 5).unwrap();
        let values = crate::cnn::tensor_to_vec(out.x);
        // Forbidden coordinates sit exactly on the clamp minimum, fixed residues on the maximum.
        for row in values.chunks(dim) {
            for p in 0..wt.len() {
                for r in 0..ALPHABET_SIZE {
                    let v = row[p * ALPHABET_SIZE + r];
                    if !c.allows(p, r as u8) {
                        assert_eq!(v, -1.0, "position {p} residue {r}");
                    }
                    if c.fixed[p] && r as u8 == wt.indices()[p] {
                        assert_eq!(v, 1.0);
                    }
                }
            }
        }
        let designs = c.decode(&values);
        assert_eq!(designs.len(), 64);
        for d in &designs {
            assert!(c.violations(d).is_empty(), "{d}: {:?}", c.violations(d));
            assert!(mutation_count(&wt, d) <= 2);
        }
        // The cap is what limits them: without it the same states decode to more mutations.
        let uncapped = ConstraintsConfig {
            max_mutations: None,
            ..cfg
        }
        .check(&wt, 1)
        .unwrap();
        assert!(
            uncapped
                .decode(&values)
                .iter()
                .any(|d| mutation_count(&wt, d) > 2)
        );
    }

    #[test]
    fn decoding_never_picks_a_forbidden_tie() {
        let c = check(
            ConstraintsConfig {
                banned: "A".into(),
                ..Default::default()
            },
            "R",
        )
        .unwrap();
        // All channels tied at the clamp minimum: plain argmax would give A (index 0).
        assert_eq!(c.decode(&[-1.0; 20])[0].to_string(), "R");
        assert_eq!(
            crate::representation::decode(
                Tensor::<2>::from_data(
                    TensorData::new(vec![-1.0f32; 20], [1, 20]),
                    &Device::flex()
                ),
                1
            )[0]
            .to_string(),
            "A"
        );
    }

    #[test]
    fn bad_settings_name_the_field_and_the_value() {
        let bad = |cfg: ConstraintsConfig, want: &str| {
            let e = check(cfg, "MKCV").unwrap_err();
            assert!(e.contains(want), "{e}");
        };
        bad(
            ConstraintsConfig {
                fixed: "2-9".into(),
                ..Default::default()
            },
            "field `design.constraints.fixed`: position 9 is outside the wild type (positions 1-4)",
        );
        bad(
            ConstraintsConfig {
                fixed: "1,x".into(),
                ..Default::default()
            },
            "field `design.constraints.fixed`: 'x' is not a position number",
        );
        bad(
            ConstraintsConfig {
                fixed: "3-1".into(),
                ..Default::default()
            },
            "runs backwards",
        );
        bad(
            ConstraintsConfig {
                banned: "CB".into(),
                ..Default::default()
            },
            "field `design.constraints.banned`: character 2: unknown residue 'B'",
        );
        bad(
            ConstraintsConfig {
                fixed: "3".into(),
                banned: "C".into(),
                ..Default::default()
            },
            "position 3 is fixed to the wild type's C",
        );
        bad(
            ConstraintsConfig {
                banned: "A".into(),
                allowed: [("2".into(), "A".into())].into_iter().collect(),
                ..Default::default()
            },
            "field `design.constraints.allowed`: no residue is left at position 2",
        );
        bad(
            ConstraintsConfig {
                banned: "CV".into(),
                max_mutations: Some(1),
                ..Default::default()
            },
            "2 positions must leave the wild type",
        );
        bad(
            ConstraintsConfig {
                allowed: [("0".into(), "A".into())].into_iter().collect(),
                ..Default::default()
            },
            "field `design.constraints.allowed.\"0\"`: position 0 is outside",
        );
        for n in [0, 5] {
            bad(
                ConstraintsConfig {
                    min_distance: Some(n),
                    ..Default::default()
                },
                &format!(
                    "field `design.constraints.min_distance`: must be between 1 and the \
                     sequence length 4 (substitutions between two designs), got {n}"
                ),
            );
        }
        let c = check(
            ConstraintsConfig {
                min_distance: Some(4),
                ..Default::default()
            },
            "MKCV",
        )
        .unwrap();
        assert_eq!(c.min_distance(), Some(4));
    }

    #[test]
    fn violations_are_listed_in_standard_notation() {
        let c = check(
            ConstraintsConfig {
                fixed: "1".into(),
                banned: "W".into(),
                max_mutations: Some(1),
                ..Default::default()
            },
            "MKCV",
        )
        .unwrap();
        assert_eq!(
            c.violations(&seq("AKWV")),
            [
                "A1: position 1 is fixed",
                "W3: residue W is not allowed at 3",
                "2 mutations from the wild type exceed max_mutations = 1"
            ]
        );
        assert_eq!(c.mutations(&seq("MKAV")), ["C3A"]);
    }
}
