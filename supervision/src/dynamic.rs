//! Dynamic supervisors: many children of one template, started and stopped
//! at run time (OTP's `simple_one_for_one`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arbor_runtime::{CallError, ExitReason, Pid, ProcessRef};

use crate::spec::{
    ChildId, ChildKind, ChildSpec, Restart, Shutdown, StartFn, StartFuture, DEFAULT_WORKER_SHUTDOWN,
};
use crate::supervisor::{
    ChildCounts, ChildError, ChildInfo, StartError, Supervisor, SupervisorRef,
};

/// The template every child of a dynamic supervisor is started from.
pub(crate) struct Template<A> {
    id: ChildId,
    start: Arc<dyn Fn(A) -> StartFuture + Send + Sync>,
    restart: Restart,
    shutdown: Shutdown,
    kind: ChildKind,
}

impl<A: Clone + Send + Sync + 'static> Template<A> {
    fn spec(&self, args: A) -> ChildSpec {
        let start = self.start.clone();
        ChildSpec {
            id: self.id.clone(),
            start: StartFn(Arc::new(move || start(args.clone()))),
            restart: self.restart,
            shutdown: self.shutdown,
            kind: self.kind,
        }
    }
}

/// A dynamic supervisor's specification: a child template plus limits.
///
/// Children are one_for_one: each restarts alone, by the template's
/// [`Restart`] (default [`Restart::Permanent`]), with the arguments it was
/// started with. Children that are not restarted are removed. On shutdown all
/// children are stopped at once. Defaults: no child limit, at most 3 restarts
/// in 5 seconds.
pub struct DynamicSupervisor<A> {
    sup: Supervisor,
    template: Arc<Template<A>>,
}

impl<A> Clone for DynamicSupervisor<A> {
    fn clone(&self) -> Self {
        DynamicSupervisor {
            sup: self.sup.clone(),
            template: self.template.clone(),
        }
    }
}

impl<A> std::fmt::Debug for DynamicSupervisor<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicSupervisor")
            .field("supervisor", &self.sup)
            .field("child", &self.template.id)
            .finish()
    }
}

impl<A: Clone + Send + Sync + 'static> DynamicSupervisor<A> {
    /// Children named `id-N`, each started by `start(args)`.
    pub fn new<F, Fut, P, E>(id: impl Into<ChildId>, start: F) -> Self
    where
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<P, E>> + Send + 'static,
        P: Into<ProcessRef>,
        E: Into<ExitReason>,
    {
        let start = Arc::new(move |args: A| -> StartFuture {
            let fut = start(args);
            Box::pin(async move { fut.await.map(Into::into).map_err(Into::into) })
        });
        DynamicSupervisor {
            sup: Supervisor::dynamic(None),
            template: Arc::new(Template {
                id: id.into(),
                start,
                restart: Restart::Permanent,
                shutdown: DEFAULT_WORKER_SHUTDOWN,
                kind: ChildKind::Worker,
            }),
        }
    }

    fn template(mut self, edit: impl FnOnce(&mut Template<A>)) -> Self {
        let t = &self.template;
        let mut template = Template {
            id: t.id.clone(),
            start: t.start.clone(),
            restart: t.restart,
            shutdown: t.shutdown,
            kind: t.kind,
        };
        edit(&mut template);
        self.template = Arc::new(template);
        self
    }

    /// Sets the children's restart policy.
    pub fn restart(self, restart: Restart) -> Self {
        self.template(|t| t.restart = restart)
    }

    /// Sets how children are stopped.
    pub fn shutdown(self, shutdown: Shutdown) -> Self {
        self.template(|t| t.shutdown = shutdown)
    }

    /// Marks the children as supervisors (infinite shutdown by default).
    pub fn supervisor_children(self) -> Self {
        self.template(|t| {
            t.kind = ChildKind::Supervisor;
            t.shutdown = Shutdown::Infinity;
        })
    }

    /// Refuses children beyond `max` with [`ChildError::MaxChildren`].
    pub fn max_children(mut self, max: usize) -> Self {
        self.sup = self.sup.max_children(max);
        self
    }

    /// Allows at most `max_restarts` restarts within `period`.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.sup = self.sup.intensity(max_restarts, period);
        self
    }

    /// Names the supervisor.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.sup = self.sup.name(name);
        self
    }

    /// Starts the supervisor, with no children.
    ///
    /// # Errors
    /// [`StartError::InvalidPeriod`] or [`StartError::Spawn`].
    pub async fn start(self) -> Result<DynamicSupervisorRef<A>, StartError> {
        let sup = self.sup.start().await?;
        Ok(DynamicSupervisorRef {
            sup,
            template: self.template,
        })
    }
}

/// A handle to a running dynamic supervisor.
pub struct DynamicSupervisorRef<A> {
    sup: SupervisorRef,
    template: Arc<Template<A>>,
}

impl<A> Clone for DynamicSupervisorRef<A> {
    fn clone(&self) -> Self {
        DynamicSupervisorRef {
            sup: self.sup.clone(),
            template: self.template.clone(),
        }
    }
}

impl<A> std::fmt::Debug for DynamicSupervisorRef<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicSupervisorRef")
            .field("pid", &self.sup.pid())
            .finish()
    }
}

impl<A: Clone + Send + Sync + 'static> DynamicSupervisorRef<A> {
    /// The underlying supervisor.
    pub fn supervisor(&self) -> &SupervisorRef {
        &self.sup
    }

    /// The supervisor as a process.
    pub fn process(&self) -> ProcessRef {
        self.sup.process()
    }

    /// Starts a child from the template with `args`.
    ///
    /// # Errors
    /// [`ChildError::MaxChildren`], [`ChildError::StartFailed`] or
    /// [`ChildError::Call`].
    pub async fn start_child(&self, args: A) -> Result<ProcessRef, ChildError> {
        self.sup.start_child(self.template.spec(args)).await
    }

    /// Stops the child with this pid and removes it.
    ///
    /// # Errors
    /// [`ChildError::NoSuchPid`] or [`ChildError::Call`].
    pub async fn terminate_child(&self, pid: Pid) -> Result<(), ChildError> {
        self.sup.terminate_pid(pid).await
    }

    /// Every child, in start order.
    ///
    /// # Errors
    /// A [`CallError`] if the supervisor does not answer.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, CallError> {
        self.sup.which_children().await
    }

    /// How many children there are.
    ///
    /// # Errors
    /// A [`CallError`] if the supervisor does not answer.
    pub async fn count_children(&self) -> Result<ChildCounts, CallError> {
        self.sup.count_children().await
    }
}
