//! The resource guard's worker ([`arbor_mcp::guard`]): it reads the
//! process's usage every `interval` and, while the server is under
//! pressure, closes the idlest sessions a few at a time. The listeners,
//! HTTP's door and the sessions read the pressure it leaves.

use arbor_mcp::McpServer;
use arbor_runtime::timer::send_interval;
use arbor_runtime::{spawn, Actor, Context, ExitReason, Flow, TimerRef};
use arbor_supervision::ChildSpec;

/// The reason a session closed by the guard ends with: its client reads it
/// in a WebSocket close frame.
pub(crate) const IDLE_CLOSED: &str = "resource guard: idlest connection closed under pressure";

/// The guard's worker, a child of the transport tree; none without a
/// guard.
pub(crate) fn worker(server: McpServer) -> Option<ChildSpec> {
    server.guard().config()?;
    Some(ChildSpec::worker("resource-guard", move || {
        spawn(Sampler {
            server: server.clone(),
            timer: None,
        })
    }))
}

struct Sampler {
    server: McpServer,
    timer: Option<TimerRef>,
}

/// Time to read usage again.
#[derive(Debug)]
struct Sample;

impl Sampler {
    async fn sample(&self) {
        let guard = self.server.guard().clone();
        // Reading /proc walks one entry per descriptor: off the runtime's
        // threads, which serve connections meanwhile.
        let Ok(_) = tokio::task::spawn_blocking(move || guard.sample()).await else {
            return;
        };
        let memory = self.server.memory();
        let n = self.server.guard().to_close(memory.connections());
        let closed = memory.close_idlest(n, IDLE_CLOSED);
        if closed > 0 {
            metrics::counter!("arbor_resource_idle_closed_total").increment(closed as u64);
            tracing::info!(target: "arbor::transports", closed, "under resource pressure: idlest sessions closed");
        }
    }
}

impl Actor for Sampler {
    type Msg = Sample;

    async fn init(&mut self, ctx: &mut Context<Self>) -> Flow {
        self.sample().await;
        let Some(every) = self.server.guard().config().map(|c| c.interval) else {
            return Ok(());
        };
        self.timer = Some(send_interval(every, ctx.myself().clone(), || Sample));
        Ok(())
    }

    async fn handle(&mut self, _: Sample, _ctx: &mut Context<Self>) -> Flow {
        self.sample().await;
        Ok(())
    }

    async fn terminate(&mut self, _reason: &ExitReason) {
        if let Some(timer) = self.timer.take() {
            timer.cancel();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.cancel();
        }
    }
}
