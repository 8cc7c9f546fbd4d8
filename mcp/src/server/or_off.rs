//! A setting a config file may turn off: its table, or `false` for none.
//! Use as `#[serde(with = "crate::server::or_off")]` on an `Option<T>`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What the setting's table holds, for the error a bad one gets.
pub(crate) trait Expected {
    /// The error's text: `expected ..., or false for none`.
    const EXPECTED: &'static str;
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Written<T> {
    Off(bool),
    On(T),
}

pub(crate) fn serialize<T: Serialize, S: Serializer>(
    setting: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match setting {
        Some(on) => on.serialize(s),
        None => false.serialize(s),
    }
}

pub(crate) fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: Deserialize<'de> + Expected,
    D: Deserializer<'de>,
{
    match Written::<T>::deserialize(d) {
        Ok(Written::On(on)) => Ok(Some(on)),
        Ok(Written::Off(false)) => Ok(None),
        _ => Err(serde::de::Error::custom(T::EXPECTED)),
    }
}
