//! A running supervision tree as text, one process per line, as OTP's
//! `observer` draws it: for a look at a live tree from a terminal or a log.

use std::fmt;

use arbor_runtime::{CallError, Pid};

use crate::chaos::descendants;
use crate::spec::ChildKind;
use crate::supervisor::SupervisorRef;

/// A snapshot of the tree below a supervisor.
///
/// Its [`Display`](fmt::Display) is indented text, each line a child's id,
/// its kind, its pid and its mailbox depth, ending with a line that says
/// what those mean.
///
/// # Examples
/// ```
/// use arbor_runtime::{spawn, Actor, Context, Flow};
/// use arbor_supervision::{ChildSpec, Strategy, Supervisor, TreeView};
///
/// struct Worker;
/// impl Actor for Worker {
///     type Msg = ();
///     async fn handle(&mut self, _: (), _: &mut Context<Self>) -> Flow {
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let root = Supervisor::new(Strategy::OneForOne)
///     .child(ChildSpec::worker("worker", || spawn(Worker)))
///     .start()
///     .await?;
/// let text = TreeView::of("root", &root).await?.to_string();
/// assert!(text.starts_with("root supervisor <0."));
/// assert!(text.contains("\n  worker worker <0."));
/// root.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TreeView {
    name: String,
    root: Pid,
    rows: Vec<Row>,
}

#[derive(Clone, Debug)]
struct Row {
    depth: usize,
    id: String,
    kind: ChildKind,
    pid: Pid,
    mailbox: usize,
}

impl TreeView {
    /// The tree below `root`, which is called `name` on the first line.
    ///
    /// # Errors
    /// A [`CallError`] if a supervisor does not answer.
    pub async fn of(name: &str, root: &SupervisorRef) -> Result<TreeView, CallError> {
        let rows = descendants(root)
            .await?
            .into_iter()
            .map(|d| Row {
                depth: d.path.matches('/').count() + 1,
                id: d.path.rsplit('/').next().unwrap_or(&d.path).to_string(),
                kind: d.kind,
                pid: d.process.pid(),
                mailbox: d.process.mailbox_len(),
            })
            .collect();
        Ok(TreeView {
            name: name.to_string(),
            root: root.pid(),
            rows,
        })
    }

    /// How many processes are below the root.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether nothing runs below the root.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl fmt::Display for TreeView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} supervisor {}", self.name, self.root)?;
        for row in &self.rows {
            let kind = match row.kind {
                ChildKind::Supervisor => "supervisor",
                ChildKind::Worker => "worker",
            };
            writeln!(
                f,
                "{}{} {kind} {} mailbox={}",
                "  ".repeat(row.depth),
                row.id,
                row.pid,
                row.mailbox
            )?;
        }
        write!(
            f,
            "({} processes; <0.N.0> is a process id, written as Erlang writes \
             pids; mailbox=N is how many messages wait for it)",
            self.rows.len() + 1
        )
    }
}
