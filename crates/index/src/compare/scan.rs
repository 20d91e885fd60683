//! The pass over the compared units' records: candidate columns read as raw values, then
//! turned into (field, value) pairs for the fields that may rank.

use std::collections::HashMap;
use std::sync::Arc;

use model::Level;
use rustc_hash::FxHashMap;
use tantivy::columnar::{Column, DynamicColumn};
use tantivy::query::{EnableScoring, Query};
use tantivy::{DocId, DocSet, Searcher, SegmentOrdinal, SegmentReader};

use super::rank::Pairs;
use super::traces::SegmentTraces;
use super::{Candidate, HIGH_CARDINALITY, sampled};
use crate::agg_traces::float_text;
use crate::error::{Context as _, Result};

/// The pass over the units' records, in two steps. First every candidate column's values of
/// every unit are read as raw values (a string column's term ordinals) and each distinct raw
/// value of a column gets a slot. Then the fields that are high-cardinality whatever their
/// texts are dropped (see [`Scan::surely_high_cardinality`]), and only the others' slots are
/// turned into text — a string column's in one sorted pass over its dictionary — and into
/// (field, value) pairs, counted per side by [`Pairs`].
pub(super) struct Scan<'a> {
    candidates: &'a [Candidate],
    /// Every candidate column of every segment read.
    columns: Vec<ReadColumn>,
    /// Per slot: its column and its raw value.
    slots: Vec<(u32, u64)>,
    /// Every unit: its side, its key (for the sample and the fingerprints) and its slots.
    units: Vec<(usize, u64, Vec<u32>)>,
    /// Per slot, the unit it was last added to.
    last_unit: Vec<u32>,
}

/// One candidate's column in one segment, and the slots of the raw values read from it.
struct ReadColumn {
    candidate: usize,
    column: DynamicColumn,
    /// Raw value → slot, for a numeric column.
    slot_of_value: FxHashMap<u64, u32>,
    /// Term ordinal → slot (`u32::MAX`: not read), for a string column.
    slot_of_ord: Vec<u32>,
}

/// Reused buffers of a column read.
#[derive(Default)]
struct ReadBuffers {
    docs: Vec<DocId>,
    rows: Vec<u32>,
}

impl<'a> Scan<'a> {
    pub(super) fn new(candidates: &'a [Candidate]) -> Scan<'a> {
        Scan {
            candidates,
            columns: Vec::new(),
            slots: Vec::new(),
            units: Vec::new(),
            last_unit: Vec::new(),
        }
    }

    /// Reads the records of a side: each of `docs` (per segment, ascending) in a uniform
    /// sample of `rate` is a unit.
    pub(super) fn records(
        &mut self,
        searcher: &Searcher,
        docs: &[(SegmentOrdinal, Vec<DocId>)],
        side: usize,
        rate: f64,
    ) -> Result<()> {
        let mut buffers = ReadBuffers::default();
        for (seg_ord, seg_docs) in docs {
            let key = |doc: DocId| (u64::from(*seg_ord) << 32) | u64::from(doc);
            let read: Vec<DocId> = seg_docs
                .iter()
                .copied()
                .filter(|&doc| sampled(key(doc), rate))
                .collect();
            let first_unit = self.units.len() as u32;
            self.units
                .extend(read.iter().map(|&doc| (side, key(doc), Vec::new())));
            let unit_of: Vec<u32> = (first_unit..self.units.len() as u32).collect();
            let reader = searcher.segment_reader(*seg_ord);
            self.read(reader, &read, &unit_of, &mut buffers)?;
        }
        Ok(())
    }

    /// Reads the traces of `side_of` (by the low 64 bits of their ids; each is a unit): every
    /// record of them (in `in_range`, when given).
    pub(super) fn traces(
        &mut self,
        searcher: &Searcher,
        traces: &[Arc<SegmentTraces>],
        side_of: &HashMap<u64, usize>,
        in_range: Option<&dyn Query>,
    ) -> Result<()> {
        let mut unit_of_low: HashMap<u64, u32> = HashMap::with_capacity(side_of.len());
        for (&low, &side) in side_of {
            unit_of_low.insert(low, self.units.len() as u32);
            self.units.push((side, low, Vec::new()));
        }
        let in_range = in_range
            .map(|q| q.weight(EnableScoring::disabled_from_searcher(searcher)))
            .transpose()
            .context("preparing the time range")?;
        let mut buffers = ReadBuffers::default();
        for (reader, seg_traces) in searcher.segment_readers().iter().zip(traces) {
            let unit_of_term: Vec<u32> = seg_traces
                .lows
                .iter()
                .map(|low| unit_of_low.get(low).copied().unwrap_or(u32::MAX))
                .collect();
            let alive = reader.alive_bitset();
            let mut scorer = in_range
                .as_ref()
                .map(|w| w.scorer(reader, 1.0))
                .transpose()
                .context("reading the time range")?;
            let (mut read, mut unit_of) = (Vec::new(), Vec::new());
            for (doc, &term) in seg_traces.term_of_doc.iter().enumerate() {
                let Some(&unit) = unit_of_term.get(term as usize) else {
                    continue;
                };
                let doc = doc as DocId;
                if unit == u32::MAX || alive.is_some_and(|a| a.is_deleted(doc)) {
                    continue;
                }
                if let Some(scorer) = &mut scorer {
                    if scorer.doc() < doc {
                        scorer.seek(doc);
                    }
                    if scorer.doc() != doc {
                        continue;
                    }
                }
                read.push(doc);
                unit_of.push(unit);
            }
            self.read(reader, &read, &unit_of, &mut buffers)?;
        }
        Ok(())
    }

    /// Reads every candidate column of one segment for `docs` (ascending, distinct), adding
    /// the slots of `docs[i]`'s values to unit `unit_of[i]`.
    fn read(
        &mut self,
        reader: &SegmentReader,
        docs: &[DocId],
        unit_of: &[u32],
        buffers: &mut ReadBuffers,
    ) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        for (ci, c) in self.candidates.iter().enumerate() {
            let columns = crate::json_terms::columns(reader, &c.path).context("opening columns")?;
            for column in columns {
                let slot_of_ord = match &column {
                    DynamicColumn::Str(c) => vec![u32::MAX; c.num_terms()],
                    DynamicColumn::I64(_)
                    | DynamicColumn::U64(_)
                    | DynamicColumn::F64(_)
                    | DynamicColumn::Bool(_) => Vec::new(),
                    _ => continue,
                };
                let column_id = self.columns.len() as u32;
                let mut read = ReadColumn {
                    candidate: ci,
                    column,
                    slot_of_value: FxHashMap::default(),
                    slot_of_ord,
                };
                let slots = &mut self.slots;
                let units = &mut self.units;
                let last_unit = &mut self.last_unit;
                let mut add = |i: usize, raw: u64, slot: &mut u32| {
                    if *slot == u32::MAX {
                        *slot = slots.len() as u32;
                        slots.push((column_id, raw));
                        last_unit.push(u32::MAX);
                    }
                    // A trace's records are mostly neighbours: most repeats of a slot in a
                    // unit are skipped here, the rest when the unit's slots are deduplicated.
                    let unit = unit_of[i];
                    if last_unit[*slot as usize] != unit {
                        last_unit[*slot as usize] = unit;
                        units[unit as usize].2.push(*slot);
                    }
                };
                let ReadColumn {
                    column,
                    slot_of_value,
                    slot_of_ord,
                    ..
                } = &mut read;
                let mut by_value = |i: usize, raw: u64| {
                    add(i, raw, slot_of_value.entry(raw).or_insert(u32::MAX));
                };
                match column {
                    DynamicColumn::Str(c) => each_value(c.ords(), docs, buffers, |i, ord| {
                        add(i, ord, &mut slot_of_ord[ord as usize]);
                    }),
                    DynamicColumn::I64(c) => {
                        each_value(c, docs, buffers, |i, v| by_value(i, v as u64));
                    }
                    DynamicColumn::U64(c) => each_value(c, docs, buffers, &mut by_value),
                    DynamicColumn::F64(c) => each_value(c, docs, buffers, |i, v| {
                        // One raw value per text: 0 and -0 are both "0".
                        let v = if v == 0.0 { 0.0 } else { v };
                        by_value(i, v.to_bits());
                    }),
                    DynamicColumn::Bool(c) => {
                        each_value(c, docs, buffers, |i, v| by_value(i, u64::from(v)));
                    }
                    _ => {}
                }
                self.columns.push(read);
            }
        }
        Ok(())
    }

    /// Per candidate, whether the rule of [`Pairs::results`] surely finds it high-cardinality,
    /// from the slots alone (each unit's slots deduplicated): it has more distinct values than any one column of it has slots
    /// (a column's distinct raw values are distinct texts), and no value is carried by more
    /// units than the most-carried slot of each column together.
    fn surely_high_cardinality(&self) -> Vec<bool> {
        let n = self.candidates.len();
        let mut slot_units = vec![0u64; self.slots.len()];
        let mut field_units = vec![0u64; n];
        let mut last_unit = vec![usize::MAX; n];
        for (u, (_, _, slots)) in self.units.iter().enumerate() {
            for &slot in slots {
                slot_units[slot as usize] += 1;
                let ci = self.columns[self.slots[slot as usize].0 as usize].candidate;
                if last_unit[ci] != u {
                    last_unit[ci] = u;
                    field_units[ci] += 1;
                }
            }
        }
        let mut column_slots = vec![0u64; self.columns.len()];
        let mut column_top = vec![0u64; self.columns.len()];
        for (slot, &(column, _)) in self.slots.iter().enumerate() {
            column_slots[column as usize] += 1;
            column_top[column as usize] = column_top[column as usize].max(slot_units[slot]);
        }
        let mut distinct_at_least = vec![0u64; n];
        let mut top_at_most = vec![0u64; n];
        for (k, column) in self.columns.iter().enumerate() {
            let ci = column.candidate;
            distinct_at_least[ci] = distinct_at_least[ci].max(column_slots[k]);
            top_at_most[ci] += column_top[k];
        }
        (0..n)
            .map(|ci| {
                let (distinct, units) = (distinct_at_least[ci], field_units[ci]);
                distinct > HIGH_CARDINALITY as u64
                    && (distinct * 2 > units || top_at_most[ci] * 20 < units)
            })
            .collect()
    }

    /// The pairs of every unit: the slots of the fields that may be ranked, as text.
    pub(super) fn pairs(mut self) -> Pairs<'a> {
        for (_, _, slots) in &mut self.units {
            slots.sort_unstable();
            slots.dedup();
        }
        let dropped = self.surely_high_cardinality();
        let mut pairs = Pairs::new(self.candidates);
        let mut pair_of_slot = vec![u32::MAX; self.slots.len()];
        let mut texts: Vec<(u32, String)> = Vec::new();
        for column in &self.columns {
            if dropped[column.candidate] {
                continue;
            }
            texts.clear();
            let is_level = self.candidates[column.candidate].is_level;
            match &column.column {
                DynamicColumn::Str(c) => {
                    let (ords, slots): (Vec<u64>, Vec<u32>) = column
                        .slot_of_ord
                        .iter()
                        .enumerate()
                        .filter(|&(_, &slot)| slot != u32::MAX)
                        .map(|(ord, &slot)| (ord as u64, slot))
                        .unzip();
                    let mut slots = slots.into_iter();
                    let _ = c.dictionary().sorted_ords_to_term_cb(&ords, |bytes| {
                        if let Some(slot) = slots.next()
                            && let Ok(text) = std::str::from_utf8(bytes)
                        {
                            texts.push((slot, text.to_owned()));
                        }
                    });
                }
                typed => {
                    for (&raw, &slot) in &column.slot_of_value {
                        texts.push((slot, value_text(typed, raw, is_level)));
                    }
                }
            }
            for (slot, text) in texts.drain(..) {
                pair_of_slot[slot as usize] = pairs.intern(column.candidate, text);
            }
        }
        for (side, key, slots) in std::mem::take(&mut self.units) {
            let mut unit: Vec<u32> = slots
                .into_iter()
                .map(|slot| pair_of_slot[slot as usize])
                .filter(|&p| p != u32::MAX)
                .collect();
            unit.sort_unstable();
            unit.dedup();
            pairs.add_unit(side, key, unit);
        }
        pairs
    }
}

/// Every value of `column` of `docs` (ascending): `each(i, value)` for a value of `docs[i]`.
fn each_value<T>(
    column: &Column<T>,
    docs: &[DocId],
    buffers: &mut ReadBuffers,
    mut each: impl FnMut(usize, T),
) where
    T: PartialOrd + Copy + std::fmt::Debug + Send + Sync + Default + 'static,
{
    buffers.docs.clear();
    buffers.rows.clear();
    column.row_ids_for_docs(docs, &mut buffers.docs, &mut buffers.rows);
    let mut values = vec![T::default(); buffers.rows.len()];
    column.values.get_vals(&buffers.rows, &mut values);
    let mut i = 0;
    for (&doc, value) in buffers.docs.iter().zip(values) {
        while docs[i] < doc {
            i += 1;
        }
        each(i, value);
    }
}

/// The text of a numeric column's raw value, as the query language writes it.
fn value_text(column: &DynamicColumn, raw: u64, is_level: bool) -> String {
    match column {
        DynamicColumn::I64(_) => (raw as i64).to_string(),
        DynamicColumn::F64(_) => float_text(f64::from_bits(raw)),
        DynamicColumn::Bool(_) => (raw != 0).to_string(),
        _ => {
            let level = is_level
                .then(|| u8::try_from(raw).ok().and_then(Level::from_ordinal))
                .flatten();
            level.map_or_else(|| raw.to_string(), |l| l.as_str().into())
        }
    }
}
