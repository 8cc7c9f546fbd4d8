//! Who the session serves, when the server checks tokens
//! ([`crate::auth`]): bound to the subject of its first token, carried on
//! by the same subject's newer tokens (rotation), refused to another's;
//! its access ends when its token expires or is revoked.
//!
//! A transport that reads a token per request (HTTP) hands it with each
//! message ([`Received::authorized`](crate::inbound::Received::authorized));
//! a connection that carried none sends [`AUTHENTICATE`] first. When the
//! grant ends, a connection that is the session (TCP, WebSocket) is closed
//! with the reason; an HTTP session only stops serving until a newer token
//! comes, its streams being closed by the transport.

use std::sync::Arc;

use arbor_runtime::{Context, ExitReason};
use serde_json::Value;

use crate::auth::{
    AuthError, Authenticator, Denied, Ending, Grant, ACCESS_ENDED, ACCESS_ENDED_NOTIFICATION,
    AUTHENTICATE,
};
use crate::jsonrpc::{ErrorObject, Message, Notification, Request};
use crate::model::Method;
use crate::outbox::Frame;

use super::{RateChecks, Session, SessionMsg};

/// The session's access.
#[derive(Debug, Default)]
pub(super) enum Access {
    /// No token yet.
    #[default]
    Awaiting,
    /// The latest token's grant, watched for its end.
    Granted {
        grant: Arc<Grant>,
        /// Held for its drop, which stops the watch.
        _watch: Watch,
    },
    /// The grant ended; only the same subject's newer token carries on.
    Ended(String, Ending),
}

/// The task that tells the session its grant has ended; stopped with it.
#[derive(Debug)]
pub(super) struct Watch(tokio::task::JoinHandle<()>);

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Access {
    /// The subject the session is bound to, if any.
    fn subject(&self) -> Option<&str> {
        match self {
            Access::Awaiting => None,
            Access::Granted { grant, .. } => Some(grant.subject()),
            Access::Ended(subject, _) => Some(subject),
        }
    }

    /// The grant requests run with now.
    pub(super) fn grant(&self) -> Option<Arc<Grant>> {
        match self {
            Access::Granted { grant, .. } => Some(grant.clone()),
            Access::Awaiting | Access::Ended(..) => None,
        }
    }
}

impl Session {
    /// Takes `grant` as the session's access: binds a fresh session to its
    /// subject; replaces the grant of the same subject.
    ///
    /// # Errors
    /// [`Denied::OtherSubject`] when the session is another subject's.
    pub(super) fn authorize(
        &mut self,
        grant: Arc<Grant>,
        ctx: &Context<Self>,
    ) -> Result<(), Denied> {
        if self
            .access
            .subject()
            .is_some_and(|bound| bound != grant.subject())
        {
            metrics::counter!("arbor_auth_refused_total", "reason" => "other_subject").increment(1);
            return Err(Denied::OtherSubject);
        }
        if let Access::Granted { grant: current, .. } = &self.access {
            if Arc::ptr_eq(current, &grant) {
                return Ok(());
            }
        }
        let myself = ctx.myself().clone();
        let watched = grant.clone();
        let watch = Watch(tokio::spawn(async move {
            let ending = watched.ended().await;
            let _ = myself.send(SessionMsg::AccessEnded(watched, ending)).await;
        }));
        self.access = Access::Granted {
            grant,
            _watch: watch,
        };
        Ok(())
    }

    /// Whether a request may go on: `Ok` without a check when the server
    /// checks no tokens.
    pub(super) fn admitted(
        &self,
        auth: &Authenticator,
        request: &Request,
    ) -> Result<(), ErrorObject> {
        // Not even `ping` before a token: it would keep a connection that
        // never authenticates alive.
        let method = request.method.parse::<Method>().ok();
        let denied = match &self.access {
            Access::Granted { grant, .. } => match method {
                Some(method) => auth.permits(grant, method, request.params.as_ref()),
                None => Ok(()),
            },
            Access::Awaiting => Err(Denied::Unauthenticated(AuthError::Missing)),
            Access::Ended(_, Ending::Expired) => Err(Denied::Unauthenticated(AuthError::Expired)),
            Access::Ended(_, Ending::Revoked) => Err(Denied::Unauthenticated(AuthError::Revoked)),
        };
        denied.map_err(|d| d.error(auth, None))
    }

    /// Answers [`AUTHENTICATE`]: checks the token in `params.token` and
    /// takes its grant.
    pub(super) async fn authenticate(
        &mut self,
        auth: &Authenticator,
        request: Request,
        ctx: &Context<Self>,
    ) {
        if let RateChecks::ByTransport(_) = self.rate {
            // HTTP: the MCP spec puts the token in the header of every
            // request, never in a body.
            let error = ErrorObject::new(
                crate::jsonrpc::code::INVALID_REQUEST,
                "over HTTP the token goes in the Authorization header",
            );
            return self.respond(Some(request.id), Err(error)).await;
        }
        let token = request
            .params
            .as_ref()
            .and_then(|p| p.get("token"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let outcome = match auth.authenticate(token).await {
            Ok(grant) => {
                let described = Authenticator::describe(&grant);
                self.authorize(grant, ctx).map(|()| described)
            }
            Err(e) => Err(Denied::Unauthenticated(e)),
        };
        let outcome = outcome.map_err(|d| d.error(auth, None));
        self.respond(Some(request.id), outcome).await;
    }

    /// The grant watched has ended: if it is still the session's, access
    /// ends, and a connection that is the session closes with the reason.
    pub(super) fn access_ended(
        &mut self,
        grant: &Arc<Grant>,
        ending: Ending,
        ctx: &mut Context<Self>,
    ) {
        let Access::Granted { grant: current, .. } = &self.access else {
            return;
        };
        if !Arc::ptr_eq(current, grant) {
            return;
        }
        tracing::info!(target: "arbor::auth", subject = grant.subject(), reason = ending.reason(), "access ended");
        self.access = Access::Ended(grant.subject().to_string(), ending);
        if let RateChecks::BySession(_) = self.rate {
            // Said before the close, where the client reads it; without
            // waiting on a client that does not read.
            let mut params = serde_json::Map::new();
            params.insert("reason".into(), ending.reason().into());
            let said = Notification {
                method: ACCESS_ENDED_NOTIFICATION.into(),
                params: Some(params),
            };
            let _ = self
                .out
                .try_send(Frame::new(&Message::Notification(said), None));
            ctx.stop(ExitReason::shutdown_with(format!(
                "{ACCESS_ENDED}: {}",
                ending.reason()
            )));
        }
    }
}

impl Session {
    /// The time to authenticate has passed: a connection that is its
    /// session and still sent no valid token is closed.
    pub(super) fn auth_deadline(&mut self, ctx: &mut Context<Self>) {
        if let (Access::Awaiting, RateChecks::BySession(_)) = (&self.access, self.rate) {
            tracing::info!(target: "arbor::auth", "no token within the initialization timeout");
            ctx.stop(ExitReason::shutdown_with(format!(
                "{ACCESS_ENDED}: no token"
            )));
        }
    }
}

/// Whether `request` is the authentication request.
pub(super) fn is_authenticate(request: &Request) -> bool {
    request.method == AUTHENTICATE
}
