//! `arbor tree|kill|chaos|reset`: a running server's admin API from the command
//! line. Exit codes: 2 usage, 3 no admin listener (or a refused token), 4
//! the admin API refused the request.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{json, Value};

use crate::client_cli::exit;

/// Which admin listener, with which token.
#[derive(Debug, clap::Args)]
pub(crate) struct AdminTarget {
    /// The admin listener's URL, as `arbor serve` prints it.
    #[arg(long, env = "ARBOR_ADMIN_URL", value_name = "URL")]
    admin: String,
    /// Its bearer token, as `arbor serve` prints it.
    #[arg(long, env = "ARBOR_ADMIN_TOKEN", hide_env_values = true)]
    token: String,
}

/// What a chaos run kills.
#[derive(Debug, clap::Args)]
pub(crate) struct ChaosArgs {
    /// The subtree to kill in (child ids joined by `/`; empty: the whole
    /// tree).
    #[arg(long, default_value = "")]
    subtree: String,
    /// Kill this many at once…
    #[arg(long, conflicts_with = "rate")]
    count: Option<usize>,
    /// …or this many a second (`5/s` or `5`)…
    #[arg(long, value_parser = per_second, requires = "for")]
    rate: Option<f64>,
    /// …for this long (`30s`, `2m`).
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    r#for: Option<Duration>,
    /// The seed, to repeat a run [default: random, printed].
    #[arg(long)]
    seed: Option<u64>,
    /// Which processes may be picked: `workers`, `supervisors` or `any`.
    #[arg(long, default_value = "workers")]
    target: String,
}

fn per_second(s: &str) -> Result<f64, String> {
    let n = s.strip_suffix("/s").unwrap_or(s);
    n.parse::<f64>()
        .ok()
        .filter(|r| *r > 0.0 && r.is_finite())
        .ok_or_else(|| format!("{s:?} is not a rate such as 5/s"))
}

/// An answer from the admin API, or why there was none.
enum Failed {
    /// No listener there, or the token was refused.
    Connect(anyhow::Error),
    /// The API refused the request (its error body).
    Refused(String),
}

impl AdminTarget {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.admin.trim_end_matches('/'))
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, Failed> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("no admin listener at {}", self.admin))
            .map_err(Failed::Connect)?;
        let status = response.status();
        let text = response
            .text()
            .await
            .context("reading the admin listener's answer")
            .map_err(Failed::Connect)?;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(Failed::Connect(anyhow::anyhow!(
                "the admin listener refused the token (401)"
            )));
        }
        let body: Option<Value> = serde_json::from_str(&text).ok();
        if !status.is_success() {
            let why = body
                .as_ref()
                .and_then(|b| b["error"].as_str())
                .map_or_else(|| text.trim().to_string(), str::to_string);
            return Err(Failed::Refused(format!("{status}: {why}")));
        }
        let body = body
            .context("the admin listener's answer is not JSON")
            .map_err(Failed::Connect)?;
        Ok(body)
    }

    async fn get(&self, path: &str) -> Result<Value, Failed> {
        self.call(reqwest::Client::new().get(self.url(path))).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, Failed> {
        self.call(reqwest::Client::new().post(self.url(path)).json(&body))
            .await
    }
}

fn failed(f: Failed) -> ExitCode {
    match f {
        Failed::Connect(e) => {
            eprintln!("arbor: {e:#}");
            ExitCode::from(exit::CONNECT)
        }
        Failed::Refused(why) => {
            eprintln!("arbor: {why}");
            ExitCode::from(exit::SERVER)
        }
    }
}

fn line(node: &Value, depth: usize) -> String {
    let mut text = format!(
        "{}{} {} {}",
        "  ".repeat(depth),
        node["id"].as_str().unwrap_or("?"),
        node["kind"].as_str().unwrap_or("?"),
        if node["alive"] == true {
            node["pid"].as_str().unwrap_or("?")
        } else {
            "(not running)"
        },
    );
    if let Some(sup) = node.get("supervisor") {
        text.push_str(&format!(
            " {} restarts={} ({}/{} in {} ms) crashes={} children={}/{}",
            sup["strategy"].as_str().unwrap_or("?"),
            sup["restarts"],
            sup["recent_restarts"],
            sup["intensity"],
            sup["period_ms"],
            sup["abnormal_exits"],
            sup["active"],
            sup["children"],
        ));
    }
    if node["mailbox"].as_u64().unwrap_or(0) > 0 {
        text.push_str(&format!(" mailbox={}", node["mailbox"]));
    }
    text
}

/// `arbor tree`: the tree below `path`, each supervisor's first `limit`
/// children, depth first.
pub(crate) async fn tree(admin: AdminTarget, path: &str, limit: usize) -> ExitCode {
    let path = path.trim_matches('/');
    let top = match admin
        .get(&format!("/api/tree?path={}", urlencode(path)))
        .await
    {
        Ok(level) => level,
        Err(f) => return failed(f),
    };
    let mut out = vec![line(&top["node"], 0)];
    subtree(&admin, path, 1, limit, &mut out).await;
    for l in out {
        println!("{l}");
    }
    ExitCode::SUCCESS
}

/// The children below `path`, at `depth`, into `out`; a subtree that cannot
/// be read (restarting as it is read) says so in its place.
async fn subtree(
    admin: &AdminTarget,
    path: &str,
    depth: usize,
    limit: usize,
    out: &mut Vec<String>,
) {
    let indent = "  ".repeat(depth);
    let level = match admin
        .get(&format!("/api/tree?path={}", urlencode(path)))
        .await
    {
        Ok(level) => level,
        Err(Failed::Connect(e)) => return out.push(format!("{indent}({e:#})")),
        Err(Failed::Refused(why)) => return out.push(format!("{indent}({why})")),
    };
    let children = level["children"].as_array().cloned().unwrap_or_default();
    let shown = children.len().min(limit);
    for child in children.iter().take(shown) {
        out.push(line(child, depth));
        if child.get("supervisor").is_some() && child["alive"] == true {
            let below = child["path"].as_str().unwrap_or_default().to_string();
            Box::pin(subtree(admin, &below, depth + 1, limit, out)).await;
        }
    }
    let hidden = children.len() - shown + level["more"].as_u64().unwrap_or(0) as usize;
    if hidden > 0 {
        out.push(format!("{indent}… {hidden} more"));
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn print_killed(killed: &Value) {
    println!(
        "killed {} {} {}",
        killed["path"].as_str().unwrap_or("?"),
        killed["kind"].as_str().unwrap_or("?"),
        killed["pid"].as_str().unwrap_or("?")
    );
}

/// `arbor kill PATH`.
pub(crate) async fn kill(admin: AdminTarget, path: &str) -> ExitCode {
    match admin.post("/api/kill", json!({ "path": path })).await {
        Ok(answer) => {
            print_killed(&answer["killed"]);
            ExitCode::SUCCESS
        }
        Err(f) => failed(f),
    }
}

/// `arbor kill --node`: the whole node.
pub(crate) async fn kill_node(admin: AdminTarget) -> ExitCode {
    match admin.post("/api/node/kill", json!({})).await {
        Ok(answer) => {
            println!("killing node (pid {})", answer["killing"]);
            ExitCode::SUCCESS
        }
        Err(f) => failed(f),
    }
}

/// `arbor reset [SUBTREE]`.
pub(crate) async fn reset(admin: AdminTarget, subtree: Option<String>) -> ExitCode {
    let body = match subtree {
        Some(subtree) => json!({ "subtree": subtree }),
        None => json!({}),
    };
    match admin.post("/api/reset", body).await {
        Ok(report) => {
            let lifted: Vec<&str> = report["lifted"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if lifted.is_empty() {
                println!("nothing was isolated");
            } else {
                println!("lifted {}", lifted.join(", "));
            }
            for c in report["cascades"].as_array().into_iter().flatten() {
                println!(
                    "{}: {} ({} of {} failures in {} ms, {} trips)",
                    c["subtree"].as_str().unwrap_or("?"),
                    c["isolated"].as_str().unwrap_or("serving"),
                    c["recent_failures"],
                    c["threshold"],
                    c["window_ms"],
                    c["trips"]
                );
            }
            ExitCode::SUCCESS
        }
        Err(f) => failed(f),
    }
}

/// `arbor chaos`.
pub(crate) async fn chaos(admin: AdminTarget, run: ChaosArgs) -> ExitCode {
    let mut body = json!({ "subtree": run.subtree, "target": run.target });
    match (run.count, run.rate, run.r#for) {
        (Some(count), None, None) => body["count"] = count.into(),
        (None, Some(rate), Some(duration)) => {
            body["rate"] = rate.into();
            body["for_ms"] = (duration.as_millis() as u64).into();
        }
        (None, None, None) => body["count"] = 1.into(),
        _ => {
            eprintln!("arbor: give --count N, or --rate N/s with --for DURATION");
            return ExitCode::from(exit::USAGE);
        }
    }
    if let Some(seed) = run.seed {
        body["seed"] = seed.into();
    }
    match admin.post("/api/chaos", body).await {
        Ok(report) => {
            println!("seed {}", report["seed"]);
            for killed in report["killed"].as_array().into_iter().flatten() {
                print_killed(killed);
            }
            ExitCode::SUCCESS
        }
        Err(f) => failed(f),
    }
}
