//! Checkpoints: what the tailer needs to resume a file exactly where the index stopped, stored
//! by the index writer as opaque JSON, keyed by a file key that is stable across renames.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::TailError;

/// Bytes of a file's head that identify it (with device and inode).
pub(crate) const HEAD_BYTES: u64 = 1024;
/// Bytes before a checkpoint's offset that must be unchanged for the offset to be trusted.
pub(crate) const MARKER_BYTES: u64 = 32;

/// File key → checkpoint value, as stored in (and handed back from) the last commit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoints {
    map: BTreeMap<String, serde_json::Value>,
}

/// The checkpoint value of one file (`v` 1). `offset` is just past the last complete line
/// emitted; `marker_*` hash the `marker_len` bytes before it; `head_*` hash the file's first
/// `head_len` bytes (1 KiB, or the whole file when it was shorter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileCheckpoint {
    pub v: u32,
    pub dev: u64,
    pub ino: u64,
    pub head_len: u64,
    pub head_hash: String,
    pub offset: u64,
    pub marker_len: u64,
    pub marker_hash: String,
    pub path: String,
    /// A `.gz` file: offsets are in the decompressed stream.
    #[serde(default, skip_serializing_if = "is_false")]
    pub gz: bool,
    /// A `.gz` file read to its end: never read again while it exists.
    #[serde(default, skip_serializing_if = "is_false")]
    pub done: bool,
}

impl Checkpoints {
    pub fn new() -> Checkpoints {
        Checkpoints::default()
    }

    /// Reads a JSON object of file key → checkpoint value (`null` means none). Values are
    /// opaque here; one the tailer cannot use is ignored at start (its file is read from 0).
    pub fn from_json(value: &serde_json::Value) -> Result<Checkpoints, TailError> {
        match value {
            serde_json::Value::Null => Ok(Checkpoints::new()),
            serde_json::Value::Object(map) => Ok(map
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()),
            _ => Err(TailError::Checkpoints),
        }
    }

    /// The JSON object of file key → checkpoint value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.map.clone().into_iter().collect())
    }

    /// Records a batch's checkpoint: a `null` value removes the key.
    pub fn apply(&mut self, key: String, value: serde_json::Value) {
        if value.is_null() {
            self.map.remove(&key);
        } else {
            self.map.insert(key, value);
        }
    }

    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.map.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &serde_json::Value)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl FromIterator<(String, serde_json::Value)> for Checkpoints {
    fn from_iter<I: IntoIterator<Item = (String, serde_json::Value)>>(iter: I) -> Checkpoints {
        let mut checkpoints = Checkpoints::new();
        for (key, value) in iter {
            checkpoints.apply(key, value);
        }
        checkpoints
    }
}

impl FileCheckpoint {
    pub fn from_value(value: &serde_json::Value) -> Option<FileCheckpoint> {
        let checkpoint: FileCheckpoint = serde_json::from_value(value.clone()).ok()?;
        (checkpoint.v == 1).then_some(checkpoint)
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// The key of a file: its identity when first seen. It never changes for that file, so renames
/// keep it; the head hash keeps a reused inode from sharing a key with its previous file.
pub(crate) fn file_key(dev: u64, ino: u64, head_hash: u64) -> String {
    format!("{dev}:{ino}:{head_hash:016x}")
}

/// 64-bit FNV-1a: stable across Rust versions and platforms (checkpoints outlive builds), and
/// plenty for ≤1 KiB identity checks that are always paired with device and inode.
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// `out[k]` is `hash(&bytes[..k])`, for every `k` from 0 to `bytes.len()`: one pass.
pub(crate) fn prefix_hashes(bytes: &[u8]) -> Vec<u64> {
    let mut out = Vec::with_capacity(bytes.len() + 1);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    out.push(h);
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        out.push(h);
    }
    out
}

pub(crate) fn hex(h: u64) -> String {
    format!("{h:016x}")
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_removes_and_json_round_trips() {
        let mut cps = Checkpoints::new();
        cps.apply("a".into(), serde_json::json!({"offset": 1}));
        cps.apply("b".into(), serde_json::json!({"offset": 2}));
        cps.apply("a".into(), serde_json::Value::Null);
        assert_eq!(cps.len(), 1);
        let back = Checkpoints::from_json(&cps.to_json()).unwrap();
        assert_eq!(back, cps);
        assert!(Checkpoints::from_json(&serde_json::json!([1])).is_err());
        assert!(
            Checkpoints::from_json(&serde_json::Value::Null)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        let prefixes = prefix_hashes(b"abc");
        assert_eq!(prefixes, [hash(b""), hash(b"a"), hash(b"ab"), hash(b"abc")]);
    }
}
