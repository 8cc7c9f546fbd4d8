//! The skills extension (`io.modelcontextprotocol/skills`, SEP-2640) as a
//! host uses it: list skills without reading them; load one only after its
//! entry (size, digest, frontmatter) is checked against what is read.

use anyhow::{bail, Context as _};
use arbor::mcp::client::Client;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// The extension's id, as servers declare it under `extensions`.
const SKILLS: &str = "io.modelcontextprotocol/skills";

/// One listed skill.
#[derive(Debug, Deserialize)]
pub(crate) struct Skill {
    uri: String,
    #[serde(default)]
    frontmatter: Map<String, Value>,
    #[serde(default)]
    resources: Vec<SkillResource>,
}

/// A file of a skill, as its entry describes it.
#[derive(Debug, Deserialize)]
struct SkillResource {
    uri: String,
    digest: Option<String>,
    size: Option<usize>,
}

/// `skills/list`, if the server offers the extension; nothing is read.
pub(crate) async fn list(client: &Client) -> anyhow::Result<Vec<Skill>> {
    let offered = client
        .session()
        .and_then(|s| s.capabilities.get("extensions").cloned())
        .is_some_and(|e| e.get(SKILLS).is_some());
    if !offered {
        bail!("the server does not offer {SKILLS}");
    }
    let listed = client.request("skills/list", Map::new()).await?;
    serde_json::from_value(listed["skills"].clone()).context("reading skills/list")
}

/// Reads a skill's `SKILL.md`, checks it against its entry, then reads the
/// files it lists. A mismatch stops the load before anything else is read.
pub(crate) async fn load(client: &Client, skill: &Skill) -> anyhow::Result<()> {
    let text = read_text(client, &skill.uri).await?;
    if let Some(entry) = skill.resources.iter().find(|r| r.uri == skill.uri) {
        verify(entry, &text)?;
    }
    check_frontmatter(&skill.frontmatter, &text)?;
    for other in skill.resources.iter().filter(|r| r.uri != skill.uri) {
        let text = read_text(client, &other.uri).await?;
        verify(other, &text)?;
    }
    Ok(())
}

async fn read_text(client: &Client, uri: &str) -> anyhow::Result<String> {
    let read = client.read_resource(uri).await?;
    let first = read.contents.first().context("no contents")?;
    let value = serde_json::to_value(first)?;
    Ok(value["text"].as_str().unwrap_or_default().to_string())
}

fn verify(entry: &SkillResource, text: &str) -> anyhow::Result<()> {
    if let Some(size) = entry.size {
        if size != text.len() {
            bail!("{}: {} bytes, the entry says {size}", entry.uri, text.len());
        }
    }
    if let Some(digest) = &entry.digest {
        let hex: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let actual = format!("sha256:{hex}");
        if !digest.eq_ignore_ascii_case(&actual) {
            bail!("{}: digest {actual}, the entry says {digest}", entry.uri);
        }
    }
    Ok(())
}

/// Compares the `---`-delimited frontmatter's `key: value` lines with the
/// entry's fields.
fn check_frontmatter(expected: &Map<String, Value>, text: &str) -> anyhow::Result<()> {
    let Some(rest) = text.strip_prefix("---\n") else {
        bail!("SKILL.md has no frontmatter");
    };
    let block = rest.split("\n---").next().unwrap_or_default();
    let found: Map<String, Value> = block
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), Value::from(v.trim())))
        .collect();
    for (key, value) in expected {
        if found.get(key) != Some(value) {
            bail!(
                "frontmatter {key}: {:?}, the entry says {value}",
                found.get(key)
            );
        }
    }
    Ok(())
}
