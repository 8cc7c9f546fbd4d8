//! How many processes live, by kind: two counters, moved when a process is
//! made and when it ends, so the figure is cheap enough to read on every
//! metrics scrape (nothing walks a process table, there is none).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The live processes of one kind.
pub(crate) struct Live(AtomicUsize);

/// Live lightweight actors.
pub(crate) static LIGHTWEIGHT: Live = Live(AtomicUsize::new(0));
/// Live ractor actors.
pub(crate) static RACTOR: Live = Live(AtomicUsize::new(0));
/// Starts and ends since the process began: any change to the set of
/// processes moves it, so a watcher polls one number to know whether to
/// look again.
static CHURN: AtomicU64 = AtomicU64::new(0);

impl Live {
    pub(crate) fn born(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
        CHURN.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn ended(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
        CHURN.fetch_add(1, Ordering::Relaxed);
    }

    fn now(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Live processes, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessCounts {
    /// Lightweight actors.
    pub lightweight: usize,
    /// Ractor actors run through the bridge (supervisors among them).
    pub ractor: usize,
    /// Starts and ends of processes so far: unchanged means no process
    /// started or ended in between.
    pub churn: u64,
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
/// let churn = process_counts().churn;
/// assert!(process_counts().lightweight > before);
/// idle.process().kill();
/// idle.process().wait().await;
/// assert!(process_counts().churn > churn);
/// # }
/// ```
pub fn process_counts() -> ProcessCounts {
    ProcessCounts {
        lightweight: LIGHTWEIGHT.now(),
        ractor: RACTOR.now(),
        churn: CHURN.load(Ordering::Relaxed),
    }
}
