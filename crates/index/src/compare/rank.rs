//! (field, value) pairs counted per side, and their ranking: the cardinality rule, the score,
//! the drill-down into the selection's category.

use std::collections::{HashMap, HashSet};

use super::{
    BASELINE, Candidate, CompareResult, HIGH_CARDINALITY, MARKER_SHARE, MAX_DRILL_DOWNS,
    MIN_DRILL_DOWN_UNITS, SELECTION, mix, score,
};

/// (field, value) pairs and the units carrying them.
pub(super) struct Pairs<'a> {
    candidates: &'a [Candidate],
    /// (candidate, value text) → pair id.
    pair_ids: HashMap<(usize, String), u32>,
    pairs: Vec<(usize, String)>,
    /// Per pair, units of each side carrying it.
    counts: Vec<[u64; 2]>,
    /// Per candidate, units of each side carrying the field.
    field_units: Vec<[u64; 2]>,
    /// Units read per side.
    units: [u64; 2],
    /// Every unit read: its side and its pairs.
    unit_pairs: Vec<(usize, Vec<u32>)>,
    /// Per pair, a hash of the set of units carrying it (XOR of the units' hashes): pairs that
    /// mark exactly the same units are shown once.
    fingerprints: Vec<u64>,
}

impl<'a> Pairs<'a> {
    pub(super) fn new(candidates: &'a [Candidate]) -> Pairs<'a> {
        Pairs {
            candidates,
            pair_ids: HashMap::new(),
            pairs: Vec::new(),
            counts: Vec::new(),
            field_units: vec![[0; 2]; candidates.len()],
            units: [0; 2],
            fingerprints: Vec::new(),
            unit_pairs: Vec::new(),
        }
    }

    /// The id of the pair (candidate, text).
    pub(super) fn intern(&mut self, candidate: usize, text: String) -> u32 {
        let next = self.pairs.len() as u32;
        *self
            .pair_ids
            .entry((candidate, text.clone()))
            .or_insert_with(|| {
                self.pairs.push((candidate, text));
                self.counts.push([0; 2]);
                self.fingerprints.push(0);
                next
            })
    }

    pub(super) fn add_unit(&mut self, side: usize, key: u64, pairs: Vec<u32>) {
        self.units[side] += 1;
        let unit_hash = mix(key ^ side as u64);
        let mut fields: Vec<usize> = Vec::new();
        for &p in &pairs {
            self.counts[p as usize][side] += 1;
            self.fingerprints[p as usize] ^= unit_hash;
            let field = self.pairs[p as usize].0;
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
        for f in fields {
            self.field_units[f][side] += 1;
        }
        self.unit_pairs.push((side, pairs));
    }

    /// Ranked results, best first; high-cardinality fields left out, and of pairs that mark
    /// exactly the same units only the first.
    pub(super) fn results(self) -> Vec<CompareResult> {
        let n = self.candidates.len();
        let (mut distinct, mut singletons) = (vec![0usize; n], vec![0usize; n]);
        let mut top = vec![0u64; n];
        for ((field, _), counts) in self.pairs.iter().zip(&self.counts) {
            let units = counts[SELECTION] + counts[BASELINE];
            distinct[*field] += 1;
            top[*field] = top[*field].max(units);
            if units == 1 {
                singletons[*field] += 1;
            }
        }
        // An id, a timestamp or a measurement: many values, each carried by few units — more
        // values than half the units, or none carried by 5% of them — or values that are
        // nearly all unique.
        let high_cardinality: Vec<bool> = (0..n)
            .map(|f| {
                let units = self.field_units[f][SELECTION] + self.field_units[f][BASELINE];
                let many = distinct[f] > HIGH_CARDINALITY
                    && ((distinct[f] as u64) * 2 > units || top[f] * 20 < units);
                let mostly_unique = distinct[f] >= 5 && singletons[f] * 5 >= distinct[f] * 4;
                many || mostly_unique
            })
            .collect();
        let [sel_units, base_units] = self.units;
        let share = |n: u64, units: u64| {
            if units == 0 {
                0.0
            } else {
                n as f64 / units as f64
            }
        };
        let eligible: Vec<bool> = self
            .pairs
            .iter()
            .zip(&self.counts)
            .map(|((field, _), counts)| !high_cardinality[*field] && counts[SELECTION] > 0)
            .collect();
        // Greedy, as a drill-down: while the best pair marks (nearly) every selected unit — the
        // selection's category, such as `http.response.status_code = 402` for one decline code
        // — it is listed, and the rest are scored against the baseline units that carry it
        // too: what is different about the selection *among declines*. Pairs that category
        // explains (every decline's status, its level) then score nothing and drop out.
        let mut in_baseline: Vec<bool> = self
            .unit_pairs
            .iter()
            .map(|(side, _)| *side == BASELINE)
            .collect();
        let mut base_counts: Vec<u64> = self.counts.iter().map(|c| c[BASELINE]).collect();
        let mut current_base_units = base_units;
        let mut chosen: Vec<(u32, f64)> = Vec::new();
        let mut scores: Vec<f64>;
        loop {
            scores = (0..self.pairs.len())
                .map(|p| {
                    if !eligible[p] || chosen.iter().any(|(c, _)| *c as usize == p) {
                        return 0.0;
                    }
                    score(
                        self.counts[p][SELECTION],
                        sel_units,
                        base_counts[p],
                        current_base_units,
                    )
                })
                .collect();
            if chosen.len() >= MAX_DRILL_DOWNS {
                break;
            }
            let best = (0..self.pairs.len())
                .filter(|&p| scores[p] > 0.0)
                .max_by(|&a, &b| {
                    scores[a]
                        .total_cmp(&scores[b])
                        .then_with(|| self.pairs[b].cmp(&self.pairs[a]))
                });
            let Some(best) = best else { break };
            if share(self.counts[best][SELECTION], sel_units) < MARKER_SHARE {
                break;
            }
            // The baseline units that carry the marker too.
            let narrowed: Vec<bool> = self
                .unit_pairs
                .iter()
                .zip(&in_baseline)
                .map(|((_, pairs), &inb)| inb && pairs.contains(&(best as u32)))
                .collect();
            let n_narrowed = narrowed.iter().filter(|&&b| b).count() as u64;
            if n_narrowed < MIN_DRILL_DOWN_UNITS {
                break;
            }
            chosen.push((best as u32, scores[best]));
            in_baseline = narrowed;
            current_base_units = n_narrowed;
            base_counts = vec![0; self.pairs.len()];
            for ((_, pairs), &inb) in self.unit_pairs.iter().zip(&in_baseline) {
                if inb {
                    for &p in pairs {
                        base_counts[p as usize] += 1;
                    }
                }
            }
        }
        let result = |p: usize, score: f64| CompareResult {
            field: self.candidates[self.pairs[p].0].label.clone(),
            value: self.pairs[p].1.clone(),
            selection_count: self.counts[p][SELECTION],
            baseline_count: self.counts[p][BASELINE],
            selection_share: share(self.counts[p][SELECTION], sel_units),
            baseline_share: share(self.counts[p][BASELINE], base_units),
            score,
        };
        let mut rest: Vec<(u64, CompareResult)> = (0..self.pairs.len())
            .filter(|&p| scores[p] > 0.0)
            .map(|p| (self.fingerprints[p], result(p, scores[p])))
            .collect();
        rest.sort_by(|(_, a), (_, b)| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| b.selection_count.cmp(&a.selection_count))
                .then_with(|| a.field.cmp(&b.field))
                .then_with(|| a.value.cmp(&b.value))
        });
        let mut seen = HashSet::new();
        chosen
            .into_iter()
            .map(|(p, score)| (self.fingerprints[p as usize], result(p as usize, score)))
            .chain(rest)
            .filter(|(fp, r)| seen.insert((*fp, r.selection_count, r.baseline_count)))
            .map(|(_, r)| r)
            .collect()
    }
}
