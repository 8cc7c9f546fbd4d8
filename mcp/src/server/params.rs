//! Reading typed fields out of a request's params, with -32602 naming
//! the field.

use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::jsonrpc::ErrorObject;

pub(super) fn params_field<T: DeserializeOwned>(
    params: &Map<String, Value>,
    field: &str,
) -> Result<Option<T>, ErrorObject> {
    match params.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| {
            ErrorObject::invalid_params(format!("invalid {field}: {e}"))
                .with_data(json!({ "field": field }))
        }),
    }
}

pub(super) fn required_field<T: DeserializeOwned>(
    params: &Map<String, Value>,
    field: &str,
) -> Result<T, ErrorObject> {
    params_field(params, field)?.ok_or_else(|| {
        ErrorObject::invalid_params(format!("missing {field}")).with_data(json!({ "field": field }))
    })
}
