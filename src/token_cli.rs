//! `arbor token`: signs an access token with a local issuer's key, to try
//! a server that checks tokens (`examples/auth/`) without an authorization
//! server; `--print-jwks` writes the key set that server reads. A real
//! deployment's tokens come from its authorization server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use p256::pkcs8::DecodePrivateKey;
use serde_json::json;

/// `arbor token`'s options; the defaults match `examples/auth/arbor.toml`.
#[derive(Debug, clap::Args)]
pub(crate) struct TokenArgs {
    /// The issuer's P-256 private key (PKCS#8 PEM), as
    /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` writes.
    #[arg(long, default_value = "examples/auth/issuer-key.pem")]
    key: PathBuf,
    /// The key's id, as the key set names it.
    #[arg(long, default_value = "demo")]
    kid: String,
    /// Print the key set (JWKS) of the key instead of a token.
    #[arg(long)]
    print_jwks: bool,
    /// `iss`.
    #[arg(long, default_value = "http://127.0.0.1:8930/demo-issuer")]
    issuer: String,
    /// `aud`: the server's resource URL.
    #[arg(long, default_value = "http://127.0.0.1:8930/mcp")]
    audience: String,
    /// `sub`: who the token speaks for.
    #[arg(long, default_value = "demo-user")]
    subject: String,
    /// `scope`, space-separated.
    #[arg(long, default_value = "mcp")]
    scope: String,
    /// How long it is valid.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
}

/// Prints the token (or the key set).
pub(crate) fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let pem = std::fs::read_to_string(&args.key)
        .with_context(|| format!("reading {}", args.key.display()))?;
    let secret = p256::SecretKey::from_pkcs8_pem(&pem)
        .with_context(|| format!("{}: not a P-256 PKCS#8 key", args.key.display()))?;
    if args.print_jwks {
        let mut jwk: serde_json::Value =
            serde_json::from_str(&secret.public_key().to_jwk_string())?;
        jwk["kid"] = json!(args.kid);
        jwk["alg"] = json!("ES256");
        jwk["use"] = json!("sig");
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "keys": [jwk] }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let since = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let now = since.as_secs();
    let claims = json!({
        "iss": args.issuer,
        "aud": args.audience,
        "sub": args.subject,
        "scope": args.scope,
        "iat": now,
        "exp": now + args.ttl.as_secs(),
        // Unique per token, so a revocation list can name this one.
        "jti": format!("{:x}-{:x}", since.as_nanos(), std::process::id()),
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(args.kid);
    let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes())?;
    println!("{}", jsonwebtoken::encode(&header, &claims, &key)?);
    Ok(ExitCode::SUCCESS)
}
