//! Dynamic supervisors: many children of one template, started and stopped
//! at run time (OTP's `simple_one_for_one`).
//!
//! `start_child` hands back the child's own typed handle `H` (an
//! `ActorRef<M>`, or a pair carrying whatever else the start function made),
//! not only its [`ProcessRef`]. Children that are never restarted take their
//! arguments by value ([`DynamicSupervisor::temporary`]): a socket can be
//! moved into the child that serves it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arbor_runtime::{CallError, ExitReason, Pid, ProcessRef};
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::cascade::Cascade;
use crate::spec::{
    ChildHandle, ChildId, ChildKind, ChildSpec, IntoStarted, Restart, Shutdown, StartFn, Started,
    DEFAULT_WORKER_SHUTDOWN,
};
use crate::supervisor::{
    ChildCounts, ChildError, ChildInfo, StartError, Supervisor, SupervisorRef,
};

/// A template's start function, typed.
type TypedStart<A, H> =
    Arc<dyn Fn(A) -> BoxFuture<'static, Result<Started<H>, ExitReason>> + Send + Sync>;

/// Where one child's arguments wait for its start function: taken by a
/// temporary child's only start, cloned by each start of a restartable one,
/// and taken back by the caller when no start ran.
type Args<A> = Arc<Mutex<Option<A>>>;

/// The template every child of a dynamic supervisor is started from.
pub(crate) struct Template<A, H> {
    id: ChildId,
    start: TypedStart<A, H>,
    /// Takes the arguments for one start: a clone while the child may be
    /// restarted, the arguments themselves while it may not.
    args_for_start: fn(&Mutex<Option<A>>) -> Option<A>,
    restart: Restart,
    shutdown: Shutdown,
    kind: ChildKind,
}

impl<A, H> Clone for Template<A, H> {
    fn clone(&self) -> Self {
        Template {
            id: self.id.clone(),
            start: self.start.clone(),
            args_for_start: self.args_for_start,
            restart: self.restart,
            shutdown: self.shutdown,
            kind: self.kind,
        }
    }
}

fn cloned<A: Clone>(args: &Mutex<Option<A>>) -> Option<A> {
    args.lock().clone()
}

fn taken<A>(args: &Mutex<Option<A>>) -> Option<A> {
    args.lock().take()
}

impl<A: Send + 'static, H: ChildHandle> Template<A, H> {
    /// The specification of one child: its first start sends its typed
    /// handle to `handle`.
    fn spec(&self, args: Args<A>, handle: oneshot::Sender<H>) -> ChildSpec {
        let (start, args_for_start) = (self.start.clone(), self.args_for_start);
        let handle = Arc::new(Mutex::new(Some(handle)));
        ChildSpec {
            id: self.id.clone(),
            start: StartFn(Arc::new(move || {
                let args = args_for_start(&args);
                let (start, handle) = (start.clone(), handle.clone());
                Box::pin(async move {
                    let args = args.ok_or_else(|| {
                        ExitReason::error("a temporary child's arguments were used by its start")
                    })?;
                    match start(args).await? {
                        Started::Running(h) => {
                            let process = h.child_process();
                            if let Some(first) = handle.lock().take() {
                                let _ = first.send(h);
                            }
                            Ok(Started::Running(process))
                        }
                        Started::Ignore => Ok(Started::Ignore),
                    }
                })
            })),
            restart: self.restart,
            shutdown: self.shutdown,
            kind: self.kind,
            significant: false,
        }
    }
}

/// A dynamic supervisor's specification: a child template plus limits.
///
/// Children are one_for_one: each restarts alone, by the template's
/// [`Restart`], with the arguments it was started with. Children that are not
/// restarted are removed. On shutdown all children are stopped at once.
/// Defaults: no child limit, at most 3 restarts in 5 seconds.
///
/// # Examples
/// ```
/// use arbor_runtime::{spawn, Actor, ActorRef, Context, Flow};
/// use arbor_supervision::DynamicSupervisor;
///
/// struct Greeter(String);
/// impl Actor for Greeter {
///     type Msg = ();
///     async fn handle(&mut self, _: (), _: &mut Context<Self>) -> Flow {
///         println!("hello, {}", self.0);
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Temporary children take their arguments by value.
/// let sup = DynamicSupervisor::temporary("greeter", |name: String| spawn(Greeter(name)))
///     .start()
///     .await?;
/// let greeter: ActorRef<()> = sup.start_child("ada".into()).await?.running().unwrap();
/// greeter.try_send(())?;
/// assert_eq!(sup.count_children().await?.active, 1);
/// # Ok(())
/// # }
/// ```
pub struct DynamicSupervisor<A, H> {
    sup: Supervisor,
    template: Arc<Template<A, H>>,
}

impl<A, H> Clone for DynamicSupervisor<A, H> {
    fn clone(&self) -> Self {
        DynamicSupervisor {
            sup: self.sup.clone(),
            template: self.template.clone(),
        }
    }
}

impl<A, H> std::fmt::Debug for DynamicSupervisor<A, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicSupervisor")
            .field("supervisor", &self.sup)
            .field("child", &self.template.id)
            .finish()
    }
}

fn typed<A, F, Fut, P, E>(start: F) -> TypedStart<A, P::Handle>
where
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<P, E>> + Send + 'static,
    P: IntoStarted,
    E: Into<ExitReason>,
{
    Arc::new(move |args: A| {
        let fut = start(args);
        Box::pin(async move { Ok(fut.await.map_err(Into::into)?.into_started()) })
    })
}

impl<A: Clone + Send + 'static, H: ChildHandle> DynamicSupervisor<A, H> {
    /// Permanent children named `id-N`, each started by `start(args)` and
    /// restarted with a clone of `args`.
    pub fn new<F, Fut, P, E>(id: impl Into<ChildId>, start: F) -> Self
    where
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<P, E>> + Send + 'static,
        P: IntoStarted<Handle = H>,
        E: Into<ExitReason>,
    {
        Self::from_template(id.into(), typed(start), cloned::<A>, Restart::Permanent)
    }

    /// Sets the children's restart policy. Restartable children start again
    /// with a clone of their arguments, so this needs `A: Clone`.
    pub fn restart(self, restart: Restart) -> Self {
        self.template(|t| {
            t.restart = restart;
            t.args_for_start = cloned::<A>;
        })
    }
}

impl<A: Send + 'static, H: ChildHandle> DynamicSupervisor<A, H> {
    /// Temporary children named `id-N`, each started once by `start(args)`
    /// with the arguments moved in, and never restarted.
    pub fn temporary<F, Fut, P, E>(id: impl Into<ChildId>, start: F) -> Self
    where
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<P, E>> + Send + 'static,
        P: IntoStarted<Handle = H>,
        E: Into<ExitReason>,
    {
        Self::from_template(id.into(), typed(start), taken::<A>, Restart::Temporary)
    }

    fn from_template(
        id: ChildId,
        start: TypedStart<A, H>,
        args_for_start: fn(&Mutex<Option<A>>) -> Option<A>,
        restart: Restart,
    ) -> Self {
        DynamicSupervisor {
            sup: Supervisor::dynamic(None),
            template: Arc::new(Template {
                id,
                start,
                args_for_start,
                restart,
                shutdown: DEFAULT_WORKER_SHUTDOWN,
                kind: ChildKind::Worker,
            }),
        }
    }

    fn template(mut self, edit: impl FnOnce(&mut Template<A, H>)) -> Self {
        let mut template = (*self.template).clone();
        edit(&mut template);
        self.template = Arc::new(template);
        self
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

    /// Counts the children's abnormal exits in `cascade`; see
    /// [`Supervisor::cascade`].
    pub fn cascade(mut self, cascade: Cascade) -> Self {
        self.sup = self.sup.cascade(cascade);
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
    pub async fn start(self) -> Result<DynamicSupervisorRef<A, H>, StartError> {
        let sup = self.sup.start().await?;
        Ok(DynamicSupervisorRef {
            sup,
            template: self.template,
        })
    }
}

/// A handle to a running dynamic supervisor whose children take `A` and
/// hand back `H`.
pub struct DynamicSupervisorRef<A, H> {
    sup: SupervisorRef,
    template: Arc<Template<A, H>>,
}

impl<A, H> Clone for DynamicSupervisorRef<A, H> {
    fn clone(&self) -> Self {
        DynamicSupervisorRef {
            sup: self.sup.clone(),
            template: self.template.clone(),
        }
    }
}

impl<A, H> std::fmt::Debug for DynamicSupervisorRef<A, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicSupervisorRef")
            .field("pid", &self.sup.pid())
            .finish()
    }
}

impl<A: Send + 'static, H: Send + 'static> ChildHandle for DynamicSupervisorRef<A, H> {
    fn child_process(&self) -> ProcessRef {
        self.sup.process()
    }
}

impl<A: Send + 'static, H: ChildHandle> DynamicSupervisorRef<A, H> {
    /// The underlying supervisor.
    pub fn supervisor(&self) -> &SupervisorRef {
        &self.sup
    }

    /// The supervisor as a process.
    pub fn process(&self) -> ProcessRef {
        self.sup.process()
    }

    /// Starts a child from the template with `args` and hands back its
    /// handle, or [`Started::Ignore`] (then no child is added).
    ///
    /// # Errors
    /// [`ChildError::MaxChildren`], [`ChildError::StartFailed`] or
    /// [`ChildError::Call`].
    pub async fn start_child(&self, args: A) -> Result<Started<H>, ChildError> {
        self.try_start(args).await.map_err(|(e, _)| e)
    }

    /// As [`DynamicSupervisorRef::start_child`]; on failure also the
    /// arguments, when no start function took them.
    pub(crate) async fn try_start(&self, args: A) -> Result<Started<H>, (ChildError, Option<A>)> {
        let args = Arc::new(Mutex::new(Some(args)));
        let (handle, mut handed) = oneshot::channel();
        let spec = self.template.spec(args.clone(), handle);
        match self.sup.start_child(spec).await {
            Ok(Started::Running(_)) => match handed.try_recv() {
                Ok(h) => Ok(Started::Running(h)),
                // The first start always hands its handle over first.
                Err(_) => Err((ChildError::Call(CallError::NoReply), None)),
            },
            Ok(Started::Ignore) => Ok(Started::Ignore),
            // The start never ran (the supervisor is gone, or dropped the
            // call): the arguments are the caller's again. After a timeout
            // it may still run, and a restartable child keeps them.
            Err(e @ ChildError::Call(CallError::Closed | CallError::NoReply)) => {
                Err((e, args.lock().take()))
            }
            Err(e) => Err((e, None)),
        }
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
