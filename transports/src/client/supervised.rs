//! A client as a supervised child: its supervisor starts it (dialling and
//! agreeing a version), and starts a new one if it crashes or is killed,
//! OTP-style. The [`ClientSlot`] always holds the current one.
//!
//! A lost connection is the client process's own business (it redials);
//! the supervisor restarts what the process cannot survive: a crash, a
//! kill (chaos), a failed first dial. Requests that were waiting on a
//! process that died fail with [`ClientError::Stopped`](arbor_mcp::client::ClientError::Stopped).

use std::sync::Arc;
use std::time::Duration;

use arbor_mcp::client::{Client, ClientConfig, Connector};
use arbor_runtime::ExitReason;
use arbor_supervision::{ChildSpec, Restart};
use parking_lot::RwLock;

/// Where the supervised client currently lives.
#[derive(Clone, Debug, Default)]
pub struct ClientSlot(Arc<RwLock<Option<Client>>>);

impl ClientSlot {
    /// The running client, if one is up.
    pub fn current(&self) -> Option<Client> {
        self.0
            .read()
            .clone()
            .filter(|c| c.process().exit_reason().is_none())
    }

    /// The running client, waiting up to `within` for one to be up (after a
    /// restart).
    pub async fn wait(&self, within: Duration) -> Option<Client> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(client) = self.current() {
                return Some(client);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A child spec `id` that runs a client with `config`, dialling with what
/// `connector` makes (called on every start); transient: restarted after a
/// crash or a kill, not after [`Client::close`].
///
/// # Examples
/// ```no_run
/// use arbor_mcp::client::ClientConfig;
/// use arbor_supervision::{Strategy, Supervisor};
/// use arbor_transports::client::{supervised_client, HttpConnector};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let (spec, slot) = supervised_client("mcp-client", ClientConfig::default(), || {
///     HttpConnector::new("http://127.0.0.1:8080/mcp")
/// });
/// let _tree = Supervisor::new(Strategy::OneForOne).child(spec).start().await?;
/// let client = slot.wait(std::time::Duration::from_secs(5)).await.ok_or("no client")?;
/// client.list_all_tools().await?;
/// # Ok(())
/// # }
/// ```
pub fn supervised_client<C, F>(
    id: &str,
    config: ClientConfig,
    connector: F,
) -> (ChildSpec, ClientSlot)
where
    C: Connector,
    F: Fn() -> C + Send + Sync + 'static,
{
    let slot = ClientSlot::default();
    let shared = slot.clone();
    let connector = Arc::new(connector);
    let spec = ChildSpec::worker(id.to_string(), move || {
        let (config, connector, slot) = (config.clone(), connector.clone(), shared.clone());
        async move {
            let client = Client::builder()
                .config(config)
                .connect(connector())
                .await
                .map_err(|e| ExitReason::Error(e.to_string().into()))?;
            let process = client.process();
            *slot.0.write() = Some(client);
            Ok::<_, ExitReason>(process)
        }
    })
    .restart(Restart::Transient);
    (spec, slot)
}
