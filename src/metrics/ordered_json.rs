//! JSON objects whose key order matters. The devkit relies on Python's dict insertion order
//! (the order of samples in a results file breaks score ties; the order of `class_range`
//! keys is the class order of every average), and serde_json's `Map` sorts its keys. These
//! two small adapters read and write an object as an ordered list of entries.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// A JSON object read as its entries in file order (duplicate keys are kept; callers decide).
#[derive(Clone, Debug, PartialEq)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(k) = map.next_key::<String>()? {
                    let v = map.next_value::<V>()?;
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(V2(PhantomData))
    }
}

/// Serialise `(key, value)` pairs as a JSON object in the given order.
pub struct OrderedEntries<'a, K: AsRef<str>, V: Serialize>(pub &'a [(K, V)]);

impl<K: AsRef<str>, V: Serialize> Serialize for OrderedEntries<'_, K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k.as_ref(), v)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_file_order_both_ways() {
        let m: OrderedMap<i32> = serde_json::from_str(r#"{"z": 1, "a": 2, "m": 3}"#).unwrap();
        assert_eq!(
            m.0.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
            ["z", "a", "m"]
        );
        assert_eq!(
            serde_json::to_string(&OrderedEntries(&m.0)).unwrap(),
            r#"{"z":1,"a":2,"m":3}"#
        );
    }
}
