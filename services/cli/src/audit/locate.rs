//! Finds the line and column of a field path (`flows[2].from`) in YAML text.
//!
//! Checks that need the whole map (an unknown system name, weights that do not add up) run after
//! parsing, when positions are gone. Rather than guess lines from indentation, the text is walked
//! again with serde_yaml_ng down the path, and a deliberate error at the target value picks up the
//! position serde_yaml_ng attaches to it, so flow-style YAML, comments and anchors are handled alike.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Splits `a.b[2].c` into its segments.
fn segments(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            if open > 0 {
                out.push(Segment::Key(rest[..open].to_owned()));
            }
            rest = &rest[open..];
            while let Some(inner) = rest.strip_prefix('[') {
                let Some(close) = inner.find(']') else { break };
                if let Ok(i) = inner[..close].parse() {
                    out.push(Segment::Index(i));
                }
                rest = &inner[close + 1..];
            }
        } else if !rest.is_empty() {
            out.push(Segment::Key(rest.to_owned()));
        }
    }
    out
}

/// The 1-based (line, column) where the value at `path` starts, if the path exists.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let path = segments(path);
    let de = serde_yaml_ng::Deserializer::from_str(text);
    match (Walk { rest: &path }).deserialize(de) {
        Err(e) if e.to_string().contains(HIT) => e.location().map(|l| (l.line(), l.column())),
        _ => None,
    }
}

const HIT: &str = "switchyard-locate-hit";

/// Follows the remaining path; ignores everything off it.
struct Walk<'p> {
    rest: &'p [Segment],
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.rest.is_empty() {
            d.deserialize_any(Hit)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<serde_yaml_ng::Value>()? {
            let wanted = matches!(&self.rest[0], Segment::Key(k) if key.as_str() == Some(k));
            if wanted {
                map.next_value_seed(Walk {
                    rest: &self.rest[1..],
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let found = if self.rest[0] == Segment::Index(index) {
                seq.next_element_seed(Walk {
                    rest: &self.rest[1..],
                })?
            } else {
                seq.next_element::<IgnoredAny>()?.map(|_| ())
            };
            if found.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    // Scalars on the way mean the path does not exist here; nothing to find.
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Fails on whatever value it meets, so serde_yaml_ng stamps the error with that value's position.
struct Hit;

impl<'de> Visitor<'de> for Hit {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
a: 1
# comment
list:
  - name: x
    inner: {k: [10, 20]}
  - name: y
    deep:
      z: true
";

    #[test]
    fn paths_split_into_keys_and_indexes() {
        assert_eq!(
            segments("list[1].deep.z"),
            vec![
                Segment::Key("list".into()),
                Segment::Index(1),
                Segment::Key("deep".into()),
                Segment::Key("z".into())
            ]
        );
    }

    #[test]
    fn block_and_flow_values_are_found() {
        assert_eq!(locate(TEXT, "a"), Some((1, 4)));
        assert_eq!(locate(TEXT, "list[1].deep.z"), Some((8, 10)));
        assert_eq!(locate(TEXT, "list[0].inner.k[1]"), Some((5, 21)));
        assert_eq!(locate(TEXT, "list[1]"), Some((6, 5)));
    }

    #[test]
    fn a_missing_path_has_no_position() {
        assert_eq!(locate(TEXT, "list[5].name"), None);
        assert_eq!(locate(TEXT, "nope"), None);
        assert_eq!(locate(TEXT, "a.b"), None);
    }
}
