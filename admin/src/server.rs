//! The admin listener's routes, its guards (the same `Host`/`Origin` check
//! as the MCP listeners, then the bearer token) and its serving task.
//!
//! It runs beside the transport tree, not in it: it must still answer
//! `/readyz` (unready) when that tree has given up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbor_supervision::{ChaosError, SupervisorRef};
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::cascade::{ResetRefused, ResetRequest};
use crate::chaos::{ChaosRefused, ChaosRequest, KillRequest};
use crate::config::AdminConfig;
use crate::token::AdminToken;

/// What the routes share.
struct Admin {
    root: SupervisorRef,
    root_name: String,
    token: AdminToken,
    config: AdminConfig,
    metrics: &'static PrometheusHandle,
    started: Instant,
}

type Shared = Arc<Admin>;

/// A JSON error body: `{"error": …}` with a status.
fn refused(status: StatusCode, error: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": error.to_string() }))).into_response()
}

fn chaos_refused(e: ChaosRefused) -> Response {
    let status = match &e {
        ChaosRefused::Invalid(_) | ChaosRefused::Limit { .. } => StatusCode::BAD_REQUEST,
        ChaosRefused::Chaos(ChaosError::NoSuchPath(_)) => StatusCode::NOT_FOUND,
        ChaosRefused::Chaos(ChaosError::NotRunning(_) | ChaosError::NothingToKill) => {
            StatusCode::CONFLICT
        }
        ChaosRefused::Chaos(ChaosError::Call(_)) => StatusCode::SERVICE_UNAVAILABLE,
    };
    refused(status, e)
}

async fn origin_guard(State(admin): State<Shared>, request: Request, next: Next) -> Response {
    match admin.config.origins.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(forbidden) => (
            StatusCode::FORBIDDEN,
            Json(json!({ "error": forbidden.message(), "data": forbidden.data() })),
        )
            .into_response(),
    }
}

async fn token_guard(State(admin): State<Shared>, request: Request, next: Next) -> Response {
    if admin.token.admits(request.headers()) {
        next.run(request).await
    } else {
        let mut answer = refused(
            StatusCode::UNAUTHORIZED,
            "this admin route needs Authorization: Bearer <the admin token printed at start>",
        );
        answer.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer realm=\"arbor-admin\""),
        );
        answer
    }
}

async fn healthz(State(admin): State<Shared>) -> Response {
    Json(json!({ "alive": true, "uptime_s": admin.started.elapsed().as_secs() })).into_response()
}

async fn readyz(State(admin): State<Shared>) -> Response {
    let readiness = crate::health::readiness(&admin.root, &admin.root_name).await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness)).into_response()
}

async fn metrics(State(admin): State<Shared>) -> Response {
    let text = crate::scrape::scrape(
        admin.metrics,
        &admin.root,
        &admin.root_name,
        admin.config.top_mailboxes,
    )
    .await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TreeQuery {
    #[serde(default)]
    path: String,
    #[serde(default)]
    offset: usize,
}

type QueryOf<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

async fn tree(State(admin): State<Shared>, q: QueryOf<TreeQuery>) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return refused(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match crate::tree::level(
        &admin.root,
        &admin.root_name,
        &q.path,
        q.offset,
        admin.config.tree_page,
    )
    .await
    {
        Ok(level) => Json(level).into_response(),
        Err(e) => chaos_refused(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessQuery {
    #[serde(default)]
    path: String,
}

async fn process(State(admin): State<Shared>, q: QueryOf<ProcessQuery>) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return refused(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match crate::tree::detail(&admin.root, &admin.root_name, &q.path).await {
        Ok(detail) => Json(detail).into_response(),
        Err(e) => chaos_refused(e.into()),
    }
}

async fn summary(State(admin): State<Shared>) -> Response {
    Json(crate::summary::summary(&admin.root, admin.started).await).into_response()
}

/// The summary, pushed each second.
async fn events(State(admin): State<Shared>) -> Response {
    let stream = futures_util::stream::unfold(admin, |admin| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let summary = crate::summary::summary(&admin.root, admin.started).await;
        let event = Event::default().event("summary").json_data(summary);
        Some((event, admin))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn kill(
    State(admin): State<Shared>,
    body: Result<Json<KillRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(request) = match body {
        Ok(body) => body,
        Err(e) => return refused(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match crate::chaos::kill(&admin.root, request).await {
        Ok(killed) => Json(json!({ "killed": killed })).into_response(),
        Err(e) => chaos_refused(e),
    }
}

/// Ends this whole node at once, as SIGKILL would: no drain, no goodbye to
/// its clients or its cluster. The answer goes out first.
async fn kill_node() -> Response {
    let pid = std::process::id();
    tracing::warn!(target: "arbor::admin", pid, "chaos: killing this node");
    tokio::spawn(async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        // 128 + SIGKILL's 9: what a shell reports for a killed process.
        std::process::exit(137);
    });
    (StatusCode::ACCEPTED, Json(json!({ "killing": pid }))).into_response()
}

async fn chaos(
    State(admin): State<Shared>,
    body: Result<Json<ChaosRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(request) = match body {
        Ok(body) => body,
        Err(e) => return refused(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match crate::chaos::chaos(&admin.root, request, &admin.config).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => chaos_refused(e),
    }
}

async fn reset(
    State(admin): State<Shared>,
    body: Result<Json<ResetRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(request) = match body {
        Ok(body) => body,
        Err(e) => return refused(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match crate::cascade::reset(&admin.root, request).await {
        Ok(report) => Json(report).into_response(),
        Err(e @ ResetRefused::NoSuchSubtree(..)) => refused(StatusCode::NOT_FOUND, e),
        Err(e @ ResetRefused::Call(_)) => refused(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn dashboard() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}

async fn not_allowed() -> Response {
    refused(
        StatusCode::METHOD_NOT_ALLOWED,
        "this admin route takes another method",
    )
}

async fn not_found() -> Response {
    refused(StatusCode::NOT_FOUND, "no such admin route")
}

fn router(admin: Shared) -> Router {
    let guarded = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/tree", get(tree))
        .route("/api/process", get(process))
        .route("/api/summary", get(summary))
        .route("/api/events", get(events))
        .route("/api/kill", post(kill))
        .route("/api/chaos", post(chaos))
        .route("/api/reset", post(reset))
        .route("/api/node/kill", post(kill_node))
        .route_layer(middleware::from_fn_with_state(admin.clone(), token_guard));
    Router::new()
        .route("/", get(dashboard))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(guarded)
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        .layer(middleware::from_fn_with_state(admin.clone(), origin_guard))
        .with_state(admin)
}

/// Why the admin listener did not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Its address could not be bound.
    #[error("binding the admin listener on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The Prometheus recorder could not be installed (another `metrics`
    /// recorder was).
    #[error("installing the metrics recorder: {0}")]
    Recorder(String),
    /// A setting is out of its range.
    #[error("admin settings: {0}")]
    Config(String),
}

/// A running admin listener; it stops when this is dropped.
#[derive(Debug)]
pub struct AdminListener {
    addr: SocketAddr,
    token: AdminToken,
    task: JoinHandle<()>,
}

impl AdminListener {
    /// Starts the admin listener for the tree at `root` (called `root_name`
    /// in answers).
    ///
    /// # Errors
    /// [`AdminError`] when it cannot bind or install its recorder.
    pub async fn start(
        config: AdminConfig,
        root: SupervisorRef,
        root_name: &str,
    ) -> Result<AdminListener, AdminError> {
        if config.tree_page == 0 || config.top_mailboxes > 1000 || config.max_kills == 0 {
            return Err(AdminError::Config(format!(
                "tree_page must be at least 1 (is {}), top_mailboxes at most 1000 (is {}), max_kills at least 1 (is {})",
                config.tree_page, config.top_mailboxes, config.max_kills
            )));
        }
        let metrics = crate::scrape::recorder().map_err(AdminError::Recorder)?;
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|source| AdminError::Bind {
                addr: config.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| AdminError::Bind {
            addr: config.addr,
            source,
        })?;
        let token = config.token.clone().unwrap_or_else(AdminToken::generate);
        let admin = Arc::new(Admin {
            root,
            root_name: root_name.to_string(),
            token: token.clone(),
            config,
            metrics,
            started: Instant::now(),
        });
        let app = router(admin);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(target: "arbor::admin", error = %e, "the admin listener stopped");
            }
        });
        Ok(AdminListener { addr, token, task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bearer token it asks for.
    pub fn token(&self) -> &AdminToken {
        &self.token
    }

    /// Its base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The dashboard's URL, the token in its fragment (never sent to the
    /// server, read by the page).
    pub fn dashboard_url(&self) -> String {
        format!("http://{}/#token={}", self.addr, self.token.as_str())
    }
}

impl Drop for AdminListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}
