//! End-to-end tests of the tailer: real files in temp dirs, the real tailer, restarts from the
//! checkpoints it emitted.

mod discovery;
mod lines;
mod restart;
mod rotation;
mod util;
