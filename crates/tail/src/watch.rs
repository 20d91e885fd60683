//! The only module that touches `notify`: it watches the directories the globs reach
//! (non-recursively, so a file created after a rename is seen) and turns events into wake-ups.
//! Events are never trusted for what changed; every wake-up runs a full sweep.

use std::collections::BTreeSet;
use std::path::PathBuf;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Why the tailer is woken before its next sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Something changed in a watched directory.
    Changed,
    /// Events were lost (queue overflow, watcher error): everything may have changed.
    Rescan,
}

/// Watches directories; without a working watcher (limits, file systems without events) it
/// does nothing and the sweep alone keeps the tailer correct.
pub(crate) struct DirWatcher {
    watcher: Option<RecommendedWatcher>,
    watched: BTreeSet<PathBuf>,
}

impl DirWatcher {
    /// Wake-ups go to `tx`; a full channel means one is already pending, so events coalesce.
    /// Not `enabled`, it watches nothing.
    pub fn new(tx: mpsc::Sender<Wake>, enabled: bool) -> DirWatcher {
        if !enabled {
            return DirWatcher {
                watcher: None,
                watched: BTreeSet::new(),
            };
        }
        let handler = move |event: notify::Result<notify::Event>| {
            let wake = match event {
                Ok(event) if event.need_rescan() => Wake::Rescan,
                // Our own opens and reads show up as access events.
                Ok(event) if matches!(event.kind, EventKind::Access(_)) => return,
                Ok(_) => Wake::Changed,
                Err(_) => Wake::Rescan,
            };
            let _ = tx.try_send(wake);
        };
        DirWatcher {
            watcher: notify::recommended_watcher(handler).ok(),
            watched: BTreeSet::new(),
        }
    }

    /// Watches exactly `dirs` from now on.
    pub fn set_dirs(&mut self, dirs: &BTreeSet<PathBuf>) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        for gone in self.watched.difference(dirs) {
            let _ = watcher.unwatch(gone);
        }
        self.watched.retain(|dir| dirs.contains(dir));
        for dir in dirs.difference(&self.watched.clone()) {
            // A failure (e.g. the watch limit) leaves that directory to the sweep.
            if watcher.watch(dir, RecursiveMode::NonRecursive).is_ok() {
                self.watched.insert(dir.clone());
            }
        }
    }
}

impl std::fmt::Debug for DirWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirWatcher")
            .field("active", &self.watcher.is_some())
            .field("watched", &self.watched.len())
            .finish()
    }
}
