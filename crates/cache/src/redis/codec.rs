//! How values become bytes in Redis: the [`Codec`] seam and its serde default.

use crate::error::{Error, Result};

/// Turns values into the bytes stored in Redis and back.
pub trait Codec<V>: Send + Sync + 'static {
    /// The bytes to store for `value`.
    ///
    /// # Errors
    /// [`ErrorKind::Codec`](crate::ErrorKind::Codec) when the value cannot be encoded.
    fn encode(&self, value: &V) -> Result<Vec<u8>>;

    /// The value stored as `bytes`.
    ///
    /// # Errors
    /// [`ErrorKind::Codec`](crate::ErrorKind::Codec) when the bytes are not a value of this type (the cache then
    /// reports a miss and counts an error).
    fn decode(&self, bytes: &[u8]) -> Result<V>;
}

/// JSON through serde: readable in `redis-cli`, and tolerant of added fields. The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

impl<V> Codec<V> for JsonCodec
where
    V: serde::Serialize + serde::de::DeserializeOwned,
{
    fn encode(&self, value: &V) -> Result<Vec<u8>> {
        serde_json::to_vec(value).map_err(|e| Error::codec(format!("encoding to JSON: {e}")))
    }

    fn decode(&self, bytes: &[u8]) -> Result<V> {
        serde_json::from_slice(bytes).map_err(|e| Error::codec(format!("decoding JSON: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_and_names_bad_input() {
        let bytes = Codec::<Vec<u32>>::encode(&JsonCodec, &vec![1, 2]).unwrap();
        assert_eq!(bytes, b"[1,2]");
        let back: Vec<u32> = JsonCodec.decode(&bytes).unwrap();
        assert_eq!(back, vec![1, 2]);
        let err = Codec::<Vec<u32>>::decode(&JsonCodec, b"{nope").unwrap_err();
        assert!(err.to_string().contains("decoding JSON"), "{err}");
    }
}
