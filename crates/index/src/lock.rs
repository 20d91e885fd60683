//! One writer per index across processes: an advisory `flock` on `.threadline.lock` in the index
//! directory, with its holder's pid inside, taken before anything in the directory is touched.
//!
//! tantivy's own writer lock is taken only when the `IndexWriter` is built, after the index has
//! been opened (or created); this one is checked first, so a second `serve`, `ingest` or `demo`
//! changes nothing before it refuses. The kernel drops the lock when its holder exits, however
//! it exits: a stale lock file is harmless.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The lock file's name in the index directory.
pub const LOCK_FILE: &str = ".threadline.lock";

/// Held while this process may write the index; released on drop (or exit).
#[derive(Debug)]
pub struct IndexLock {
    /// Open for as long as the lock is held: closing it releases the lock.
    _file: File,
    dir: PathBuf,
}

impl IndexLock {
    /// Takes the lock of the index in `dir` (creating the directory and the lock file), or
    /// fails with [`Error::Locked`] naming the process that holds it.
    pub fn acquire(dir: &Path) -> Result<IndexLock> {
        std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(LOCK_FILE);
        let lock_err = |source| Error::Lock {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(lock_err)?;
        // fs4's method by its full name: std's `File` has lock methods of its own since 1.89.
        if !fs4::fs_std::FileExt::try_lock_exclusive(&file).map_err(lock_err)? {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(Error::Locked {
                dir: std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned()),
                pid: text.trim().parse().ok(),
            });
        }
        // For the message of whoever comes next.
        file.set_len(0).map_err(lock_err)?;
        file.rewind().map_err(lock_err)?;
        writeln!(file, "{}", std::process::id()).map_err(lock_err)?;
        Ok(IndexLock {
            _file: file,
            dir: dir.to_owned(),
        })
    }

    /// The directory of the locked index.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
