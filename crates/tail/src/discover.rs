//! Discovery: which files the sources' globs match now, and which directories to watch.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::{SourceConfig, TailError};

/// Deepest directory level walked under a `**`.
const MAX_DEPTH: usize = 32;

/// The compiled globs of every source.
#[derive(Debug)]
pub(crate) struct Sources {
    sources: Vec<Source>,
}

/// The files matched by one sweep, and the directories they were looked for in.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// (path, source index), in discovery order, each path once.
    pub files: Vec<(PathBuf, usize)>,
    pub dirs: BTreeSet<PathBuf>,
}

#[derive(Debug)]
struct Source {
    include: GlobSet,
    exclude_path: GlobSet,
    exclude_name: GlobSet,
    /// Where to walk, and how deep (`None`: any depth, for `**`).
    roots: Vec<(PathBuf, Option<usize>)>,
}

impl Sources {
    pub fn new(configs: &[SourceConfig]) -> Result<Sources, TailError> {
        let sources = configs
            .iter()
            .enumerate()
            .map(|(index, config)| Source::new(index, config))
            .collect::<Result<_, _>>()?;
        Ok(Sources { sources })
    }

    /// Walks every source's roots. A path matched by several sources belongs to the first.
    pub fn find(&self) -> Found {
        let mut found = Found::default();
        let mut seen = std::collections::HashSet::new();
        for (index, source) in self.sources.iter().enumerate() {
            for (root, depth) in &source.roots {
                walk(
                    root,
                    depth.unwrap_or(MAX_DEPTH),
                    &mut found.dirs,
                    &mut |path| {
                        if source.matches(path) && seen.insert(path.to_owned()) {
                            found.files.push((path.to_owned(), index));
                        }
                    },
                );
            }
        }
        found
    }

    /// The source whose globs match `path`, if any.
    pub fn source_of(&self, path: &Path) -> Option<usize> {
        self.sources.iter().position(|s| s.matches(path))
    }
}

impl Source {
    fn new(index: usize, config: &SourceConfig) -> Result<Source, TailError> {
        if config.include.is_empty() {
            return Err(TailError::NoInclude {
                source_index: index,
            });
        }
        let names: Vec<String> = config
            .exclude
            .iter()
            .filter(|p| !p.contains('/'))
            .cloned()
            .collect();
        Ok(Source {
            include: glob_set(index, &config.include)?,
            exclude_path: glob_set(index, &config.exclude)?,
            exclude_name: glob_set(index, &names)?,
            roots: config.include.iter().map(|p| root_of(p)).collect(),
        })
    }

    fn matches(&self, path: &Path) -> bool {
        self.include.is_match(path)
            && !self.exclude_path.is_match(path)
            && !path
                .file_name()
                .is_some_and(|name| self.exclude_name.is_match(name))
    }
}

fn glob_set(index: usize, patterns: &[String]) -> Result<GlobSet, TailError> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| TailError::Glob {
                source_index: index,
                pattern: pattern.clone(),
                message: e.to_string(),
            })?;
        set.add(glob);
    }
    set.build().map_err(|e| TailError::Glob {
        source_index: index,
        pattern: patterns.join(", "),
        message: e.to_string(),
    })
}

/// The literal directory a glob starts in, and how many levels below it it reaches.
fn root_of(pattern: &str) -> (PathBuf, Option<usize>) {
    let is_glob = |c: &str| c.contains(['*', '?', '[', '{', '\\']);
    let components: Vec<&str> = pattern.split('/').collect();
    let literal = components[..components.len() - 1]
        .iter()
        .take_while(|c| !is_glob(c))
        .count();
    let rest = &components[literal..];
    let depth = if rest.contains(&"**") {
        None
    } else {
        Some(rest.len())
    };
    let root = if literal == 0 {
        PathBuf::from(".")
    } else if literal == 1 && components[0].is_empty() {
        PathBuf::from("/")
    } else {
        PathBuf::from(components[..literal].join("/"))
    };
    (root, depth)
}

/// Calls `visit` for every non-directory at most `depth` levels below `dir`, recording the
/// directories walked. Directory symlinks are not followed (no loops); file symlinks are.
fn walk(dir: &Path, depth: usize, dirs: &mut BTreeSet<PathBuf>, visit: &mut dyn FnMut(&Path)) {
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    dirs.insert(dir.to_owned());
    for entry in entries.flatten() {
        // Paths stay as the globs spell them: no "./" in front of a relative glob's matches.
        let path = if dir == Path::new(".") {
            PathBuf::from(entry.file_name())
        } else {
            entry.path()
        };
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, depth - 1, dirs, visit),
            Ok(_) => visit(&path),
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots() {
        assert_eq!(
            root_of("/var/log/*.log"),
            (PathBuf::from("/var/log"), Some(1))
        );
        assert_eq!(
            root_of("/var/log/app.log"),
            (PathBuf::from("/var/log"), Some(1))
        );
        assert_eq!(root_of("/var/*/x/*.log"), (PathBuf::from("/var"), Some(3)));
        assert_eq!(root_of("/var/**/*.log"), (PathBuf::from("/var"), None));
        assert_eq!(root_of("*.log"), (PathBuf::from("."), Some(1)));
        assert_eq!(root_of("/a.log"), (PathBuf::from("/"), Some(1)));
    }
}
