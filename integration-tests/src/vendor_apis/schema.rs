//! A small OpenAPI 3 schema check for the mock vendor APIs: request bodies are held against the
//! schemas of the vendors' published specs (`$ref`s resolved; object keys, `required`, `enum`,
//! types, `maxLength` and uuid formats checked), so a body a vendor would not accept is caught by
//! name.

use serde_json::Value;

/// A parsed OpenAPI document.
#[derive(Debug)]
pub struct Spec {
    doc: Value,
}

impl Spec {
    /// A spec from the vendor directory (JSON or YAML).
    pub fn load(relative: &str) -> Self {
        let file = switchyard_chassis::testkit::vendor_file(relative);
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let doc = if relative.ends_with(".json") {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        } else {
            serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        };
        Self { doc }
    }

    /// The value at a JSON pointer, e.g. `/components/schemas/Contact`.
    pub fn at(&self, pointer: &str) -> &Value {
        self.doc.pointer(pointer).unwrap_or(&Value::Null)
    }

    /// The schema named `name` under `components.schemas`.
    pub fn schema(&self, name: &str) -> &Value {
        self.at(&format!("/components/schemas/{name}"))
    }

    /// Every way `value` breaks `schema`, each prefixed with where (`at`).
    pub fn check(&self, schema: &Value, value: &Value, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        self.walk(schema, value, at, &mut problems);
        problems
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => self.resolve(self.at(reference.trim_start_matches('#'))),
            None => schema,
        }
    }

    fn walk(&self, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if value.is_null() {
            return;
        }
        if let Some(options) = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .and_then(Value::as_array)
        {
            if !options.iter().any(|o| self.check(o, value, at).is_empty()) {
                problems.push(format!("{at}: matches none of the spec's alternatives"));
            }
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            problems.push(format!("{at}: {value} is not one of the spec's values"));
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("object") | None if schema.get("properties").is_some() => {
                let Some(object) = value.as_object() else {
                    problems.push(format!("{at}: an object is expected"));
                    return;
                };
                let properties = schema["properties"].as_object();
                for (key, item) in object {
                    match properties.and_then(|p| p.get(key)) {
                        Some(property) => {
                            self.walk(property, item, &format!("{at}.{key}"), problems)
                        }
                        None => problems.push(format!("{at}.{key}: not in the spec")),
                    }
                }
                for required in schema["required"].as_array().into_iter().flatten() {
                    if let Some(name) = required.as_str()
                        && !object.contains_key(name)
                    {
                        problems.push(format!("{at}.{name}: required by the spec, missing"));
                    }
                }
            }
            Some("array") => match value.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.walk(&schema["items"], item, &format!("{at}[{i}]"), problems);
                    }
                }
                None => problems.push(format!("{at}: an array is expected")),
            },
            Some("string") => match value.as_str() {
                Some(text) => {
                    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                        && text.chars().count() as u64 > max
                    {
                        problems.push(format!("{at}: longer than {max} characters"));
                    }
                    if schema.get("format").and_then(Value::as_str) == Some("uuid")
                        && !is_uuid(text)
                    {
                        problems.push(format!("{at}: {text:?} is not a uuid"));
                    }
                }
                None => problems.push(format!("{at}: text is expected, got {value}")),
            },
            Some("number") | Some("integer") if !value.is_number() => {
                problems.push(format!("{at}: a number is expected, got {value}"));
            }
            Some("boolean") if !value.is_boolean() => {
                problems.push(format!("{at}: true/false is expected, got {value}"));
            }
            _ => {}
        }
    }
}

fn is_uuid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}
