//! `threadline check`: recomputes the checksum of every file of every committed segment and
//! names the damaged ones. Opening an index does not do this (it reads every byte).

use std::path::{Path, PathBuf};

use tantivy::Directory as _;

use crate::error::{Error, Result};

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub segments: usize,
    /// Files whose checksum was computed.
    pub files: usize,
    /// Documents the committed segments hold (deletes excluded).
    pub docs: u64,
    pub damaged: Vec<DamagedFile>,
}

/// A segment file that is missing, unreadable, or whose content does not match its checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedFile {
    /// The segment id (32 hex digits).
    pub segment: String,
    /// The file, relative to the index directory.
    pub file: PathBuf,
    pub problem: String,
}

/// Validates the index in `dir` file by file. An unreadable `meta.json` (or none) is an error:
/// then nothing says which segments there are.
pub fn check(dir: &Path) -> Result<CheckReport> {
    if !dir.join("meta.json").exists() {
        crate::refuse_leftovers(dir)?;
        return Err(Error::NoIndex {
            path: dir.to_owned(),
        });
    }
    let open_err = |source| Error::Open {
        path: dir.to_owned(),
        source,
    };
    let index = tantivy::Index::open_in_dir(dir).map_err(open_err)?;
    // Its files may all be sound, but this version cannot read it: say so, not "0 damaged".
    crate::schema::Fields::from_schema(&index.schema())
        .map_err(|e| Error::other_version(dir, e))?;
    let metas = index.load_metas().map_err(open_err)?;
    let directory = index.directory();
    let all_files = metas.list_segment_files();
    let mut report = CheckReport {
        segments: metas.segments.len(),
        files: 0,
        docs: 0,
        damaged: Vec::new(),
    };
    for segment in &metas.segments {
        report.docs += u64::from(segment.num_docs());
        let id = segment.id().uuid_string();
        let mut files: Vec<&PathBuf> = all_files
            .iter()
            .filter(|path| {
                let name = path.to_string_lossy();
                name.starts_with(&id)
                    && !name.ends_with(".temp")
                    // A segment without deletes has no delete file.
                    && (segment.has_deletes() || !name.ends_with(".del"))
            })
            .collect();
        files.sort();
        for file in files {
            let problem = match directory.exists(file) {
                Ok(false) => Some("missing".to_owned()),
                Err(e) => Some(format!("cannot be read: {e}")),
                Ok(true) => match directory.validate_checksum(file) {
                    Ok(true) => None,
                    Ok(false) => Some("checksum mismatch (the content is damaged)".to_owned()),
                    Err(e) => Some(format!("cannot be read (cut short?): {e}")),
                },
            };
            report.files += 1;
            if let Some(problem) = problem {
                report.damaged.push(DamagedFile {
                    segment: id.clone(),
                    file: file.clone(),
                    problem,
                });
            }
        }
    }
    Ok(report)
}
