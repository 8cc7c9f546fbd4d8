//! Runs `examples/http_server.rs` and talks to it as a client would: it
//! serves HTTP only, and its template's variable completes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_http_example_serves_http_only_and_completes_its_template() {
    let mut child = Killed(
        Command::new(support::example_binary("http_server"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the example is built by cargo test"),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut printed = Vec::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let done = line.contains("is a process id");
        printed.push(line.trim_end().to_string());
        if done {
            break;
        }
    }
    let urls: Vec<&String> = printed.iter().filter(|l| l.contains("://")).collect();
    assert!(
        urls.iter().all(|u| u.starts_with("http://")),
        "HTTP only: {printed:?}"
    );
    let mcp = urls.iter().find(|u| u.ends_with("/mcp")).unwrap();
    assert!(
        printed.iter().any(|l| l.contains("http-sessions")),
        "{printed:?}"
    );
    assert!(
        !printed.iter().any(|l| l.contains("tcp-listener")),
        "{printed:?}"
    );

    let authority = mcp
        .strip_prefix("http://")
        .unwrap()
        .trim_end_matches("/mcp");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"weather://cities/{city}"},"argument":{"name":"city","value":"L"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let mut stream = TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: completion/complete\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply.contains(r#""values":["Lisbon","London","Lyon"]"#),
        "{reply}"
    );
}
