//! The live supervision tree as JSON, one level at a time: a supervisor
//! with its children (at most a page of them, the rest counted), each child
//! with what the dashboard shows. A page expands a supervisor by asking for
//! its path, so a tree of 100K sessions is never shipped whole.

use arbor_runtime::{ProcessKind, ProcessRef};
use arbor_supervision::{
    find_path, ChaosError, ChildKind, Restart, Strategy, SupervisorRef, SupervisorStatus,
};
use serde::Serialize;

/// One process in the tree.
#[derive(Clone, Debug, Serialize)]
pub struct Node {
    /// Its path below the root (child ids joined by `/`; `""` is the root).
    pub path: String,
    /// Its child id (the root's name for the root).
    pub id: String,
    /// `supervisor` or `worker`.
    pub kind: &'static str,
    /// Its pid, as Erlang writes one.
    pub pid: String,
    /// `lightweight` or `ractor`.
    pub process: &'static str,
    /// Whether it runs (a child between a crash and its restart does not).
    pub alive: bool,
    /// Messages waiting for it.
    pub mailbox: usize,
    /// Its restart policy (none for the root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<&'static str>,
    /// For a supervisor: its strategy, intensity and restarts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supervisor: Option<Supervision>,
}

/// What a supervisor says of itself.
#[derive(Clone, Debug, Serialize)]
pub struct Supervision {
    /// Its name.
    pub name: String,
    /// `one_for_one`, `one_for_all` or `rest_for_one`.
    pub strategy: &'static str,
    /// The most restarts allowed within `period_ms`.
    pub intensity: u32,
    /// The window of the intensity, in ms.
    pub period_ms: u64,
    /// Restarts since it started.
    pub restarts: u64,
    /// Children that crashed or were killed since it started.
    pub abnormal_exits: u64,
    /// Restarts within the window: past `intensity` it gives up.
    pub recent_restarts: usize,
    /// Its children, running or not.
    pub children: usize,
    /// Of them, running.
    pub active: usize,
}

impl From<SupervisorStatus> for Supervision {
    fn from(s: SupervisorStatus) -> Self {
        Supervision {
            name: s.name.to_string(),
            strategy: match s.strategy {
                Strategy::OneForOne => "one_for_one",
                Strategy::OneForAll => "one_for_all",
                Strategy::RestForOne => "rest_for_one",
            },
            intensity: s.intensity,
            period_ms: s.period.as_millis() as u64,
            restarts: s.restarts,
            abnormal_exits: s.abnormal_exits,
            recent_restarts: s.recent_restarts,
            children: s.children.specs,
            active: s.children.active,
        }
    }
}

/// A supervisor and one page of its children.
#[derive(Clone, Debug, Serialize)]
pub struct Level {
    /// The supervisor (or worker, which has no children).
    pub node: Node,
    /// Its children from `offset`, at most a page.
    pub children: Vec<Node>,
    /// Where this page starts among its children.
    pub offset: usize,
    /// How many children come after this page.
    pub more: usize,
}

fn kind_name(kind: ChildKind) -> &'static str {
    match kind {
        ChildKind::Supervisor => "supervisor",
        ChildKind::Worker => "worker",
    }
}

fn restart_name(restart: Restart) -> &'static str {
    match restart {
        Restart::Permanent => "permanent",
        Restart::Transient => "transient",
        Restart::Temporary => "temporary",
    }
}

async fn node(
    path: String,
    id: String,
    kind: ChildKind,
    process: &ProcessRef,
    restart: Option<Restart>,
) -> Node {
    let supervisor = match SupervisorRef::from_process(process) {
        Some(sup) if process.is_alive() => sup.status().await.ok().map(Supervision::from),
        _ => None,
    };
    Node {
        path,
        id,
        kind: kind_name(kind),
        pid: process.pid().to_string(),
        process: match process.kind() {
            ProcessKind::Lightweight => "lightweight",
            ProcessKind::Ractor => "ractor",
        },
        alive: process.is_alive(),
        mailbox: process.mailbox_len(),
        restart: restart.map(restart_name),
        supervisor,
    }
}

/// The process at `path` (trimmed of slashes; `""`: the root, called
/// `root_name`) and its node.
async fn located(
    root: &SupervisorRef,
    root_name: &str,
    path: &str,
) -> Result<(ProcessRef, Node), ChaosError> {
    let (process, kind) = if path.is_empty() {
        (root.process(), ChildKind::Supervisor)
    } else {
        let found = find_path(root, path).await?;
        (found.process, found.kind)
    };
    let id = match path.rsplit('/').next() {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => root_name.to_string(),
    };
    let me = node(path.to_string(), id, kind, &process, None).await;
    Ok((process, me))
}

/// The process at `path` below `root` (`""`: the root, called `root_name`)
/// and a page of its children from `offset`.
///
/// # Errors
/// [`ChaosError`] when nothing runs at `path` or a supervisor does not
/// answer.
pub async fn level(
    root: &SupervisorRef,
    root_name: &str,
    path: &str,
    offset: usize,
    page: usize,
) -> Result<Level, ChaosError> {
    let path = path.trim_matches('/');
    let (process, me) = located(root, root_name, path).await?;
    let Some(sup) = SupervisorRef::from_process(&process) else {
        return Ok(Level {
            node: me,
            children: Vec::new(),
            offset: 0,
            more: 0,
        });
    };
    let all = sup.which_children().await?;
    let total = all.len();
    let mut children = Vec::new();
    for child in all.into_iter().skip(offset).take(page) {
        let child_path = if path.is_empty() {
            child.id.to_string()
        } else {
            format!("{path}/{}", child.id)
        };
        match &child.process {
            Some(p) => {
                children.push(
                    node(
                        child_path,
                        child.id.to_string(),
                        child.kind,
                        p,
                        Some(child.restart),
                    )
                    .await,
                );
            }
            None => children.push(Node {
                path: child_path,
                id: child.id.to_string(),
                kind: kind_name(child.kind),
                pid: String::new(),
                process: "",
                alive: false,
                mailbox: 0,
                restart: Some(restart_name(child.restart)),
                supervisor: None,
            }),
        }
    }
    let shown = offset.saturating_add(children.len()).min(total);
    Ok(Level {
        node: me,
        children,
        offset,
        more: total - shown,
    })
}

/// One process in detail: OTP's `process_info/2` for what arbor keeps.
#[derive(Clone, Debug, Serialize)]
pub struct Detail {
    /// The process as the tree shows it.
    pub node: Node,
    /// The pids it is linked to.
    pub links: Vec<String>,
    /// Monitors and exit callbacks set on it.
    pub watchers: usize,
    /// Whether it traps exits.
    pub traps_exits: bool,
    /// Why it exited, once it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_reason: Option<String>,
}

/// The process at `path` in detail.
///
/// # Errors
/// [`ChaosError`] when nothing runs at `path`.
pub async fn detail(
    root: &SupervisorRef,
    root_name: &str,
    path: &str,
) -> Result<Detail, ChaosError> {
    let (process, node) = located(root, root_name, path.trim_matches('/')).await?;
    let info = process.info();
    Ok(Detail {
        node,
        links: info
            .as_ref()
            .map(|i| i.links.iter().map(|p| p.to_string()).collect())
            .unwrap_or_default(),
        watchers: info.as_ref().map_or(0, |i| i.watchers),
        traps_exits: info.as_ref().is_some_and(|i| i.traps_exits),
        exit_reason: process.exit_reason().map(|r| r.to_string()),
    })
}
