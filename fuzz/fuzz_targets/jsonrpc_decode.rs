//! `jsonrpc::decode` and `jsonrpc::peek_id` on arbitrary bytes: neither may
//! panic, and what they return must agree with a plain `serde_json` parse.
#![no_main]

use arbor_mcp::jsonrpc::{code, decode, peek_id, Id, Incoming, Limits, Message};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Limits small enough that fuzz inputs hit every one of them.
const TIGHT: Limits = Limits {
    max_message_bytes: 512,
    max_depth: 4,
    max_string_bytes: 24,
    max_batch_len: 3,
};

/// No limit but the depth ceiling, for decoding what we encoded.
const OPEN: Limits = Limits {
    max_message_bytes: usize::MAX,
    max_depth: usize::MAX,
    max_string_bytes: usize::MAX,
    max_batch_len: usize::MAX,
};

fuzz_target!(|data: &[u8]| {
    let parsed: Option<Value> = serde_json::from_slice(data).ok();
    let default = Limits::default();
    let mut results = Vec::new();
    for limits in [&default, &TIGHT] {
        for allow_batch in [false, true] {
            let result = decode(data, limits, allow_batch);
            check_one(parsed.as_ref(), &result, allow_batch);
            results.push(result);
        }
    }
    let [default_single, default_batch, tight_single, tight_batch] = &results[..] else {
        unreachable!()
    };
    // Allowing batches changes only what a batch gets.
    if let Ok(single) = default_single {
        assert_eq!(Ok(single), default_batch.as_ref());
    }
    // Tighter limits only refuse more: what they accept, the defaults
    // accept the same way.
    if let Ok(tight) = tight_single {
        assert_eq!(Ok(tight), default_single.as_ref());
    }
    if let Ok(tight) = tight_batch {
        assert_eq!(Ok(tight), default_batch.as_ref());
    }
    check_peek_id(data, parsed.as_ref());
});

/// One decode result against the bytes and their plain parse.
fn check_one(
    parsed: Option<&Value>,
    result: &Result<Incoming, arbor_mcp::jsonrpc::Rejected>,
    allow_batch: bool,
) {
    match result {
        Ok(incoming) => {
            assert!(parsed.is_some(), "decode accepted bytes serde_json refuses");
            match incoming {
                Incoming::Single(message) => round_trip(message),
                Incoming::Batch(items) => {
                    assert!(allow_batch, "a batch where batches are not allowed");
                    assert!(!items.is_empty(), "an empty batch accepted");
                    for message in items.iter().flatten() {
                        round_trip(message);
                    }
                }
            }
        }
        Err(rejected) => {
            if rejected.error.code == code::PARSE_ERROR {
                assert!(parsed.is_none(), "parse error for valid JSON");
            } else {
                assert_eq!(rejected.error.code, code::INVALID_REQUEST);
            }
            // The answer can always be written.
            let answer = Message::Response(rejected.response()).to_json();
            assert!(!answer.contains('\n'));
        }
    }
}

/// What a message encodes to decodes to the same message.
fn round_trip(message: &Message) {
    let json = message.to_json();
    assert!(!json.contains('\n'), "an encoded message spans lines");
    let again = match decode(json.as_bytes(), &OPEN, false) {
        Ok(Incoming::Single(again)) => again,
        other => panic!("{json} decodes to {other:?}"),
    };
    // Compared as JSON, floats within rounding: serde_json's default float
    // parser may be one ulp off what it printed.
    assert!(
        same(&message.to_value(), &again.to_value()),
        "{json} decodes to {again:?}, not {message:?}"
    );
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y
                || matches!((x.as_f64(), y.as_f64()),
                    (Some(x), Some(y)) if x.is_finite() && (x - y).abs() <= x.abs() * 1e-15)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// `peek_id` finds the id a full parse finds, for valid JSON objects whose
/// top-level `id` is an integer or a string and is given once.
fn check_peek_id(data: &[u8], parsed: Option<&Value>) {
    let peeked = peek_id(data);
    let Some(Value::Object(object)) = parsed else {
        return;
    };
    let expected = match object.get("id") {
        Some(Value::Number(n)) => n.as_i64().map(Id::Number),
        Some(Value::String(s)) => Some(Id::String(s.as_str().into())),
        _ => None,
    };
    if let (Some(peeked), Some(expected)) = (&peeked, &expected) {
        // serde_json keeps the last of duplicate keys, peek_id the first
        // (an `\u`-escaped `"id"` key is also one peek_id does not see):
        // RFC 8259 leaves duplicates undefined, so only unique ids count.
        if !has_duplicate_id(data) {
            assert_eq!(peeked, expected, "peek_id disagrees with serde_json");
        }
    }
}

/// Whether the object's top level names `id` twice, however spelled; found
/// with serde_json's own reading of keys.
fn has_duplicate_id(data: &[u8]) -> bool {
    use serde_json::de::Deserializer;
    struct Keys(usize);
    impl<'de> serde::de::Visitor<'de> for &mut Keys {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                if key == "id" {
                    self.0 += 1;
                }
                map.next_value::<serde::de::IgnoredAny>()?;
            }
            Ok(())
        }
    }
    let mut keys = Keys(0);
    let mut de = Deserializer::from_slice(data);
    serde::Deserializer::deserialize_map(&mut de, &mut keys).is_ok() && keys.0 > 1
}
