//! Klaviyo (revision 2026-07-15) from its published profiles spec: `POST /api/profile-import`
//! (create or update a profile, 201 or 200 with `PostProfileResponse`) and
//! `POST /api/profile-subscription-bulk-create-jobs` (202), each body held against the spec's
//! request schema, with the `revision` header and the JSON:API media type.

use serde_json::{Value, json};

use super::{Connector, Incoming, Inner, Reply, vendor_error};

const MEDIA: &str = "application/vnd.api+json";

/// The JSON pointer of an operation's request schema in the spec.
fn request_schema(path: &str) -> String {
    format!(
        "/paths/{}/post/requestBody/content/application~1vnd.api+json/schema",
        path.replace('/', "~1")
    )
}

pub(super) fn handle(inner: &mut Inner, req: &Incoming) -> Reply {
    let c = Connector::Klaviyo;
    let specs = inner.specs();
    let spec = &specs.klaviyo;
    let operation = format!("/paths/{}/post", req.path.replace('/', "~1"));
    if spec.at(&operation).is_null() || req.method != "POST" {
        inner.problem(
            c,
            format!(
                "{} {} is not an operation of the spec",
                req.method, req.path
            ),
        );
        return vendor_error(c, 404, "not found");
    }
    let revision = spec
        .at(&format!("{operation}/parameters"))
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "revision" && p["in"] == "header")
        .map(|p| p["schema"]["default"].clone())
        .unwrap_or_default();
    let mut problems = Vec::new();
    if req.header("revision") != revision.as_str() {
        problems.push(format!(
            "revision header {:?}, the spec's is {revision}",
            req.header("revision")
        ));
    }
    if req.header("content-type") != Some(MEDIA) {
        problems.push(format!(
            "content-type {:?}, not {MEDIA}",
            req.header("content-type")
        ));
    }
    problems.extend(spec.check(spec.at(&request_schema(&req.path)), &req.body, "body"));
    if !problems.is_empty() {
        for p in &problems {
            inner.problem(c, format!("{}: {p}", req.path));
        }
        return vendor_error(c, 400, &problems.join("; "));
    }
    match req.path.as_str() {
        "/api/profile-import" => {
            let attributes = &req.body["data"]["attributes"];
            let key = attributes["email"]
                .as_str()
                .or(attributes["phone_number"].as_str())
                .unwrap_or_default()
                .to_lowercase();
            let next = inner.id();
            let table = inner.table(c, "profiles");
            let new = !table.contains_key(&key);
            let profile = table.entry(key).or_insert_with(|| {
                json!({"type": "profile", "id": format!("01GDDKASAP8TKDDA2GRZD{next:05}"),
                       "attributes": {"created": "2026-01-05T10:00:00+00:00"}})
            });
            if let (Some(stored), Some(sent)) = (
                profile["attributes"].as_object_mut(),
                attributes.as_object(),
            ) {
                for (name, value) in sent {
                    stored.insert(name.clone(), value.clone());
                }
                stored.insert("updated".to_owned(), json!("2026-01-05T10:00:00+00:00"));
            }
            let id = profile["id"].as_str().unwrap_or_default().to_owned();
            let mut body = json!({ "data": profile.clone() });
            body["data"]["links"] =
                json!({ "self": format!("https://a.klaviyo.com/api/profiles/{id}/") });
            Reply::new(if new { 201 } else { 200 }, body)
        }
        _ => {
            let list = req.body["data"]["relationships"]["list"]["data"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let profiles = req.body["data"]["attributes"]["profiles"]["data"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for profile in profiles {
                let email = profile["attributes"]["email"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase();
                inner.table(c, "subscriptions").insert(
                    format!("{list}:{email}"),
                    json!({"list": list, "email": email, "subscriptions": profile["attributes"]["subscriptions"]}),
                );
            }
            Reply::new(202, Value::Null)
        }
    }
}
