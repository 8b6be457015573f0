//! Klaviyo (revision 2026-07-15) from its published profiles and lists specs:
//! `POST /api/profile-import` (create or update a profile, 201 or 200 with
//! `PostProfileResponse`), `POST /api/profile-subscription-bulk-create-jobs` (202) and
//! `POST /api/lists/{id}/relationships/profiles` (add existing profiles to a list, 204), each body
//! held against the spec's request schema, with the `revision` header and the JSON:API media type.

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

/// `/api/lists/{id}/relationships/profiles` for `/api/lists/Y6nRLr/relationships/profiles`: the
/// spec's path template, and the list id.
fn list_members_path(path: &str) -> Option<(&'static str, &str)> {
    let id = path
        .strip_prefix("/api/lists/")?
        .strip_suffix("/relationships/profiles")?;
    (!id.is_empty() && !id.contains('/')).then_some(("/api/lists/{id}/relationships/profiles", id))
}

pub(super) fn handle(inner: &mut Inner, req: &Incoming) -> Reply {
    let c = Connector::Klaviyo;
    let specs = inner.specs();
    let list_members = list_members_path(&req.path);
    let (spec, template) = match list_members {
        Some((template, _)) => (&specs.klaviyo_lists, template),
        None => (&specs.klaviyo, req.path.as_str()),
    };
    let operation = format!("/paths/{}/post", template.replace('/', "~1"));
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
    problems.extend(spec.check(spec.at(&request_schema(template)), &req.body, "body"));
    if !problems.is_empty() {
        for p in &problems {
            inner.problem(c, format!("{}: {p}", req.path));
        }
        return vendor_error(c, 400, &problems.join("; "));
    }
    if let Some((_, list)) = list_members {
        // Only profiles that exist can be added; adding one twice leaves one membership.
        let known: Vec<String> = inner
            .table(c, "profiles")
            .values()
            .filter_map(|p| p["id"].as_str().map(str::to_owned))
            .collect();
        let ids: Vec<String> = req.body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["id"].as_str().map(str::to_owned))
            .collect();
        if let Some(unknown) = ids.iter().find(|id| !known.contains(id)) {
            inner.problem(c, format!("{}: profile {unknown} does not exist", req.path));
            return vendor_error(c, 404, &format!("profile {unknown} not found"));
        }
        for id in ids {
            inner
                .table(c, "list_members")
                .insert(format!("{list}:{id}"), json!({"list": list, "profile": id}));
        }
        return Reply::new(204, Value::Null);
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
