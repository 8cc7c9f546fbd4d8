//! The cluster's JetStream state: its key-value bucket (and the key ring
//! kept in it) and its event stream.
//!
//! The bucket is made as the stream a key-value bucket is (`KV_<name>`,
//! subjects `$KV.<name>.>`, one value a key, roll-ups allowed, deletes
//! denied, direct gets), not through the client's bucket API: Debian's
//! nats-server 2.9 answers that API's account query without the fields
//! the client expects. Any JetStream from 2.9 on reads it as a bucket.

use arbor_mcp::seal::SealKey;
use async_nats::jetstream::{self, kv, stream};

use crate::node::ClusterError;

/// The key under which the bucket keeps the sealing key.
const SEAL_KEY: &str = "seal-key";

/// The cluster's bucket, made if it is not there yet.
pub(crate) async fn open(
    js: &jetstream::Context,
    name: &str,
    replicas: usize,
) -> Result<kv::Store, ClusterError> {
    let bucket = format!("{name}-cluster");
    let config = stream::Config {
        name: format!("KV_{bucket}"),
        description: Some(format!(
            "arbor cluster {name}: session owners, the key ring"
        )),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: replicas,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    js.get_or_create_stream(config)
        .await
        .map_err(|e| ClusterError::Bucket(e.to_string()))?;
    js.get_key_value(bucket)
        .await
        .map_err(|e| ClusterError::Bucket(e.to_string()))
}

/// The cluster's event stream, made if it is not there yet: what one node
/// publishes, every node reads; kept for `history`.
pub(crate) async fn events(
    js: &jetstream::Context,
    name: &str,
    replicas: usize,
    history: std::time::Duration,
) -> Result<stream::Stream, ClusterError> {
    let config = stream::Config {
        name: format!("ARBOR_{name}_EVENTS"),
        description: Some(format!(
            "arbor cluster {name}: resource updates, list changes"
        )),
        subjects: vec![crate::fanout::subject(name)],
        max_age: history,
        num_replicas: replicas,
        discard: stream::DiscardPolicy::Old,
        ..Default::default()
    };
    js.get_or_create_stream(config)
        .await
        .map_err(|e| ClusterError::Bucket(e.to_string()))
}

/// The cluster's sealing key: the one in the bucket, or, for the first
/// node, a fresh one put there with compare-and-swap (a node that loses the
/// race reads the winner's).
pub(crate) async fn seal_key(bucket: &kv::Store) -> Result<SealKey, ClusterError> {
    let fresh = SealKey::generate();
    match bucket
        .create(SEAL_KEY, bytes::Bytes::copy_from_slice(fresh.as_bytes()))
        .await
    {
        Ok(_) => return Ok(fresh),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
        Err(e) => return Err(ClusterError::Bucket(e.to_string())),
    }
    let stored = bucket
        .get(SEAL_KEY)
        .await
        .map_err(|e| ClusterError::Bucket(e.to_string()))?
        .ok_or_else(|| ClusterError::Bucket("the sealing key vanished".into()))?;
    let bytes: [u8; 32] = stored.as_ref().try_into().map_err(|_| {
        ClusterError::Bucket(format!(
            "the sealing key has {} bytes, not 32",
            stored.len()
        ))
    })?;
    Ok(SealKey::from_bytes(bytes))
}
