//! Dialling a server: a [`Connector`] opens a connection delivering to an
//! [`Inbox`] and gives its [`Wire`], again on every reconnection.

use std::sync::Arc;

use super::inbox::Inbox;
use super::wire::{BoxFuture, Wire};

/// Dials a server; called again on every reconnection.
pub trait Connector: Send + Sync + 'static {
    /// Opens a connection delivering to `inbox`.
    fn connect(&self, inbox: Inbox) -> BoxFuture<'_, Result<Arc<dyn Wire>, String>>;

    /// Whether a lost connection may be dialled again (a spawned server's
    /// pipes or an in-memory pipe cannot).
    fn reconnects(&self) -> bool {
        true
    }
}

impl<C: Connector + ?Sized> Connector for Box<C> {
    fn connect(&self, inbox: Inbox) -> BoxFuture<'_, Result<Arc<dyn Wire>, String>> {
        (**self).connect(inbox)
    }

    fn reconnects(&self) -> bool {
        (**self).reconnects()
    }
}
