//! Where an index's bytes go: per component and field, and the terms of each indexed field
//! (per JSON path for the attribute fields), to decide what to index, store or keep fast.
//!
//! ```sh
//! cargo run --release -p index --example index_space -- DIR
//! ```

use std::collections::BTreeMap;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: index_space INDEX_DIR")?;
    let index = index::Index::open(&dir)?;
    print!("{}", index.space_report()?.summary(12));
    let searcher = index.tantivy().reader()?.searcher();
    // Terms per field (summed over segments), and per JSON path for JSON fields.
    let schema = index.tantivy().schema();
    let mut per_path: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_field: BTreeMap<String, u64> = BTreeMap::new();
    for segment in searcher.segment_readers() {
        for (field, entry) in schema.fields() {
            if !entry.is_indexed() {
                continue;
            }
            let inverted = segment.inverted_index(field)?;
            let terms = inverted.terms();
            *per_field.entry(entry.name().to_owned()).or_default() += terms.num_terms() as u64;
            if !entry.field_type().is_json() {
                continue;
            }
            let mut stream = terms.stream()?;
            while stream.advance() {
                let key = stream.key();
                let path = key.split(|&b| b == 0).next().unwrap_or(key);
                let path = String::from_utf8_lossy(path).replace('\u{1}', ".");
                *per_path
                    .entry(format!("{}.{path}", entry.name()))
                    .or_default() += 1;
            }
        }
    }
    println!("terms per field:");
    for (field, n) in &per_field {
        if *n > 0 {
            println!("  {field} {n}");
        }
    }
    let mut paths: Vec<_> = per_path.into_iter().collect();
    paths.sort_by_key(|p| std::cmp::Reverse(p.1));
    println!("JSON paths with the most terms:");
    for (path, n) in paths.iter().take(25) {
        println!("  {path} {n}");
    }
    Ok(())
}
