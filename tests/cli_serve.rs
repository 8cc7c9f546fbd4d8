//! `arbor serve` as a user runs it: it prints its endpoints, serves them,
//! and stops in order on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The server process, killed if a test fails before stopping it.
struct Served(std::process::Child);

impl Served {
    /// Starts `command` with its stdout piped: the server and that output.
    fn start(command: &mut Command) -> (Served, BufReader<std::process::ChildStdout>) {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        (Served(child), out)
    }
}

/// `arbor serve` with `args`, its stderr discarded.
fn arbor_serve(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_arbor"));
    command
        .arg("serve")
        .args(args)
        .envs(support::FREE_PORTS)
        .stderr(Stdio::null());
    command
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn arbor_serve_prints_its_endpoints_and_serves_them() {
    let (mut child, mut out) = Served::start(&mut arbor_serve(&[]));
    let mut urls = Vec::new();
    for _ in 0..4 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        urls.push(line.trim().to_string());
    }
    let find = |prefix: &str, suffix: &str| {
        urls.iter()
            .find(|u| u.starts_with(prefix) && u.ends_with(suffix))
            .unwrap_or_else(|| panic!("no {prefix}…{suffix} endpoint in {urls:?}"))
            .clone()
    };
    let http = find("http://127.0.0.1:", "/mcp");
    let legacy = find("http://127.0.0.1:", "/sse");
    find("ws://127.0.0.1:", "/mcp");
    let tcp = find("tcp://127.0.0.1:", "");
    assert_eq!(
        http.trim_end_matches("/mcp"),
        legacy.trim_end_matches("/sse"),
        "both HTTP transports share one port"
    );

    let discover = r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let mut stream = TcpStream::connect(tcp.strip_prefix("tcp://").unwrap()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(format!("{discover}\n").as_bytes())
        .unwrap();
    let mut answer = String::new();
    BufReader::new(stream.try_clone().unwrap())
        .read_line(&mut answer)
        .unwrap();
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        answer["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "arbor-demo"
    );

    // The same request over Streamable HTTP.
    let authority = http
        .strip_prefix("http://")
        .unwrap()
        .trim_end_matches("/mcp");
    let mut stream = TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: server/discover\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{discover}",
        discover.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut stream, &mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(reply.contains(r#""name":"arbor-demo""#), "{reply}");

    // SIGTERM: an orderly stop.
    Command::new("kill")
        .arg(child.0.id().to_string())
        .status()
        .unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}");
    let rest: Vec<String> = out.lines().map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l == "stopped: shutdown"), "{rest:?}");
}

#[test]
fn sigterm_ends_open_streams_at_once_and_listens_with_their_result() {
    let (mut child, mut out) = Served::start(&mut arbor_serve(&[]));
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let authority = first
        .trim()
        .strip_prefix("http://")
        .and_then(|u| u.strip_suffix("/mcp"))
        .expect("the Streamable HTTP endpoint first")
        .to_string();
    let listen = r#"{"jsonrpc":"2.0","id":"l","method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let mut stream = TcpStream::connect(&authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: subscriptions/listen\r\nContent-Length: {}\r\n\r\n{listen}",
        listen.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("subscriptions/acknowledged") {
        let n = std::io::Read::read(&mut stream, &mut buf).unwrap();
        assert!(n > 0);
        seen.extend_from_slice(&buf[..n]);
    }

    let stopping = std::time::Instant::now();
    Command::new("kill")
        .arg(child.0.id().to_string())
        .status()
        .unwrap();
    // The listen's final result, then the end of the stream.
    loop {
        match std::io::Read::read(&mut stream, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "an open stream held the shutdown for {:?}",
        stopping.elapsed()
    );
    let seen = String::from_utf8_lossy(&seen);
    assert!(
        seen.contains(r#""id":"l","jsonrpc":"2.0","result""#),
        "the listen ends with its result: {seen}"
    );
}

#[test]
fn connections_past_the_descriptor_limit_are_refused_and_serving_goes_on() {
    // 64 descriptors (soft and hard): max_connections is lowered to 32.
    let (mut child, mut out) = Served::start(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n 64 && exec {} serve",
                env!("CARGO_BIN_EXE_arbor")
            ))
            .envs(support::FREE_PORTS)
            .stderr(Stdio::null()),
    );
    let mut tcp = String::new();
    while !tcp.starts_with("tcp://") {
        tcp.clear();
        out.read_line(&mut tcp).unwrap();
    }
    let addr = tcp.trim().strip_prefix("tcp://").unwrap().to_string();
    let ping = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}
"#;
    let ask = |stream: &TcpStream| {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut line = String::new();
        let _ = (&*stream).write_all(ping);
        let _ = BufReader::new(stream).read_line(&mut line);
        line
    };
    // Held open, one after another: the first 32 are served, the rest told
    // why they are not.
    let mut held = Vec::new();
    let (mut served, mut refused) = (0, 0);
    for _ in 0..40 {
        let stream = TcpStream::connect(&addr).unwrap();
        let line = ask(&stream);
        if line.contains(r#""result":{}"#) {
            served += 1;
        } else if line.contains(r#""limit":"max_connections","max":32"#) {
            refused += 1;
        } else {
            panic!("neither served nor refused: {line:?}");
        }
        held.push(stream);
    }
    assert_eq!((served, refused), (32, 8));
    drop(held);
    // A flood on top: the server lives through it.
    let flood: Vec<TcpStream> = (0..150)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    drop(flood);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "the server died when it ran short of descriptors"
    );
    let mut answered = false;
    for _ in 0..20 {
        if let Ok(stream) = TcpStream::connect(&addr) {
            if ask(&stream).contains(r#""result":{}"#) {
                answered = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        answered,
        "the server serves again once connections are gone"
    );
}

#[test]
fn a_reader_that_goes_away_does_not_crash_the_server() {
    // `arbor serve --once | head -1`: the pipe closes after the first line.
    let (mut child, mut out) = Served::start(arbor_serve(&["--once"]).stderr(Stdio::piped()));
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.starts_with("http://"), "{first}");
    drop(out);
    let mut stderr = String::new();
    let mut err = child.0.stderr.take().unwrap();
    std::io::Read::read_to_string(&mut err, &mut stderr).unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `arbor serve --once` with `args`: its exit status, stdout and stderr.
fn serve_once(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .arg("serve")
        .arg("--once")
        .args(args)
        .envs(support::FREE_PORTS)
        .output()
        .unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn listening_beyond_loopback_needs_the_host_names_clients_use() {
    let (status, _, stderr) = serve_once(&["--http", "0.0.0.0:0"]);
    assert!(!status.success(), "refused without --allowed-host");
    assert!(
        stderr.contains("--allowed-host") && stderr.contains("0.0.0.0:0"),
        "{stderr}"
    );
    let (status, _, stderr) = serve_once(&["--ws", "0.0.0.0:0"]);
    assert!(
        !status.success() && stderr.contains("--ws 0.0.0.0:0"),
        "{stderr}"
    );
    let (status, _, stderr) = serve_once(&["--admin", "0.0.0.0:0"]);
    assert!(
        !status.success() && stderr.contains("--admin 0.0.0.0:0"),
        "{stderr}"
    );

    let (status, stdout, stderr) = serve_once(&[
        "--http",
        "0.0.0.0:0",
        "--allowed-host",
        "mcp.example",
        "--allowed-origin",
        "https://app.example",
    ]);
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.lines().any(|l| l
            == "HTTP and WebSocket accept Host: localhost, 127.0.0.1, [::1], mcp.example; Origin also: https://app.example"),
        "{stdout}"
    );
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let output = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["serve", "--once"])
        .envs(support::FREE_PORTS)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("INFO"), "some log lines: {stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}

#[test]
fn a_default_start_prints_no_warning() {
    let (status, stdout, stderr) = serve_once(&[]);
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.contains("HTTP and WebSocket accept Host: localhost, 127.0.0.1, [::1]"),
        "{stdout}"
    );
    assert!(!stderr.contains("WARN"), "{stderr}");
}

/// The demo as a client sees it over `--stdio` (2026-07-28): titled tools,
/// a resource template that reads, and names completed for both the prompt
/// and the template.
#[test]
fn the_demo_offers_a_template_and_completes_names() {
    let mut child = arbor_serve(&["--stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let requests = [
        r#""method":"tools/list","params":{META}"#.to_string(),
        r#""method":"resources/templates/list","params":{META}"#.to_string(),
        r#""method":"resources/read","params":{"uri":"arbor://demo/greetings/Ada",META}"#
            .to_string(),
        r#""method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"greet"},"argument":{"name":"name","value":"gr"},META}"#.to_string(),
        r#""method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"arbor://demo/greetings/{name}"},"argument":{"name":"name","value":"A"},META}"#.to_string(),
    ];
    let mut input = child.stdin.take().unwrap();
    for (id, body) in requests.iter().enumerate() {
        let line = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},{}}}\n",
            body.replace("META", meta)
        );
        input.write_all(line.as_bytes()).unwrap();
    }
    drop(input);
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut answers: Vec<serde_json::Value> = out
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .filter(|v: &serde_json::Value| v.get("id").is_some())
        .collect();
    answers.sort_by_key(|v| v["id"].as_u64());
    let _ = child.wait();
    assert_eq!(answers.len(), 5, "{answers:?}");
    let tools = answers[0]["result"]["tools"].as_array().unwrap();
    let bump = tools.iter().find(|t| t["name"] == "bump").unwrap();
    assert_eq!(bump["title"], "Bump the counter");
    assert_eq!(bump["annotations"]["readOnlyHint"], false);
    assert_eq!(bump["inputSchema"]["type"], "object");
    assert_eq!(
        answers[1]["result"]["resourceTemplates"][0]["uriTemplate"],
        "arbor://demo/greetings/{name}"
    );
    assert_eq!(
        answers[2]["result"]["contents"][0]["text"], "Hello, Ada!",
        "{}",
        answers[2]
    );
    assert_eq!(
        answers[3]["result"]["completion"]["values"],
        serde_json::json!(["Grace"])
    );
    assert_eq!(
        answers[4]["result"]["completion"]["values"],
        serde_json::json!(["Ada", "Alan"])
    );
}

/// The printed tree says what its pids and mailbox counts mean.
#[test]
fn the_printed_tree_explains_itself() {
    let (status, stdout, _) = serve_once(&[]);
    assert!(status.success());
    assert!(stdout.contains("transports supervisor <0."), "{stdout}");
    assert!(stdout.contains(" mailbox="), "{stdout}");
    assert!(stdout.contains("is a process id"), "{stdout}");
}

#[test]
fn json_logs_carry_the_session_request_method_and_trace_of_each_request() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_arbor"));
    command
        .args(["serve", "--log-format", "json"])
        .envs(support::FREE_PORTS)
        .env("RUST_LOG", "arbor_mcp=debug")
        .stderr(Stdio::piped());
    let (mut served, mut out) = Served::start(&mut command);
    let stderr = served.0.stderr.take().unwrap();
    let mut tcp = String::new();
    while !tcp.starts_with("tcp://") {
        tcp.clear();
        out.read_line(&mut tcp).unwrap();
    }
    let mut stream = TcpStream::connect(tcp.trim().trim_start_matches("tcp://")).unwrap();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    for line in [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#.to_string(),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string(),
        format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"hi"}},"_meta":{{"traceparent":"00-{trace}-00f067aa0ba902b7-01"}}}}}}"#),
    ] {
        writeln!(stream, "{line}").unwrap();
    }
    let mut answers = BufReader::new(stream.try_clone().unwrap());
    for _ in 0..2 {
        let mut answer = String::new();
        answers.read_line(&mut answer).unwrap();
    }
    // The request's "answered" line, with the request's fields.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    let found = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            break None;
        };
        let event: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        if event["fields"]["message"] == "answered" {
            break Some(event);
        }
        seen.push(line);
    };
    let event = found.unwrap_or_else(|| panic!("no answered line in {seen:#?}"));
    let span = &event["span"];
    assert_eq!(span["name"], "mcp.request", "{event}");
    assert_eq!(span["method"], "tools/call", "{event}");
    assert_eq!(span["request_id"], "7", "{event}");
    assert_eq!(span["trace_id"], trace, "{event}");
    assert_eq!(span["parent_span_id"], "00f067aa0ba902b7", "{event}");
    assert!(
        span["session"].as_str().unwrap().starts_with("<0."),
        "{event}"
    );
    assert_eq!(event["level"], "DEBUG");
}

#[test]
fn a_default_start_listens_on_the_documented_ports_and_a_file_or_flag_moves_them() {
    // The only test on the fixed ports: every other one asks for free ones.
    let output = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["serve", "--once"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    for line in [
        "http://127.0.0.1:8930/mcp",
        "ws://127.0.0.1:8931/mcp",
        "tcp://127.0.0.1:8932",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line} in {stdout}");
    }
    assert!(stdout.contains("admin http://127.0.0.1:8939 "), "{stdout}");
    // A file serving TCP only on a free port, a flag over the file.
    let file = std::env::temp_dir().join(format!("arbor-serve-{}.toml", std::process::id()));
    std::fs::write(&file, "serve = [\"tcp\"]\nshards = 2\n[tcp]\naddr = \"127.0.0.1:0\"\n[admin]\naddr = \"127.0.0.1:0\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["serve", "--once", "--config"])
        .arg(&file)
        .args(["--shards", "3"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    let urls: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            l.contains("://127.0.0.1:") && !l.starts_with("admin") && !l.starts_with("dashboard")
        })
        .collect();
    assert_eq!(urls.len(), 1, "{stdout}");
    assert!(
        urls[0].starts_with("tcp://127.0.0.1:") && !urls[0].ends_with(":8932"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("      shard-").count(), 3, "{stdout}");
    // An unknown key is refused at start, named.
    std::fs::write(&file, "[tcp]\nadress = \"127.0.0.1:0\"\n").unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["serve", "--once", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("adress"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(&file);
    // And the documented default file is what --print-default writes.
    let printed = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["config", "--print-default"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(text.contains("[http]\naddr = \"127.0.0.1:8930\""), "{text}");
}
