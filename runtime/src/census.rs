//! How many processes live, by kind: two counters, moved when a process is
//! made and when it ends, so the figure is cheap enough to read on every
//! metrics scrape (nothing walks a process table, there is none).

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::process::ProcessKind;

static LIGHTWEIGHT: AtomicUsize = AtomicUsize::new(0);
static RACTOR: AtomicUsize = AtomicUsize::new(0);

fn counter(kind: ProcessKind) -> &'static AtomicUsize {
    match kind {
        ProcessKind::Lightweight => &LIGHTWEIGHT,
        ProcessKind::Ractor => &RACTOR,
    }
}

pub(crate) fn born(kind: ProcessKind) {
    counter(kind).fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn ended(kind: ProcessKind) {
    counter(kind).fetch_sub(1, Ordering::Relaxed);
}

/// Live processes, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessCounts {
    /// Lightweight actors.
    pub lightweight: usize,
    /// Ractor actors run through the bridge (supervisors among them).
    pub ractor: usize,
}

impl ProcessCounts {
    /// Both kinds together.
    pub fn total(&self) -> usize {
        self.lightweight + self.ractor
    }
}

/// How many processes live now, by kind.
///
/// # Examples
/// ```
/// use arbor_runtime::{process_counts, spawn, Actor, Context, Flow};
///
/// struct Idle;
/// impl Actor for Idle {
///     type Msg = ();
///     async fn handle(&mut self, _: (), _: &mut Context<Self>) -> Flow {
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let before = process_counts().lightweight;
/// let idle = spawn(Idle).await.unwrap();
/// assert!(process_counts().lightweight > before);
/// # drop(idle);
/// # }
/// ```
pub fn process_counts() -> ProcessCounts {
    ProcessCounts {
        lightweight: LIGHTWEIGHT.load(Ordering::Relaxed),
        ractor: RACTOR.load(Ordering::Relaxed),
    }
}
