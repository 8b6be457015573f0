//! What the load sends: one Standard Webhooks `contact.updated` event per request, a new person
//! each, with a record id that carries its send time for the end-to-end sink.

/// The `i`th webhook of a run.
pub struct Webhook {
    /// The `webhook-id` it is signed and sent under.
    pub id: String,
    /// The contact's record id, which deliveries carry back to the sink.
    pub record_id: String,
    pub body: Vec<u8>,
}

impl Webhook {
    /// The `i`th webhook of run `run_id`: a new person, `person<i>.<run>@example.com`.
    pub fn contact_updated(run_id: &str, i: u64) -> Self {
        let id = format!("bench_{}_{i}", &run_id[..12]);
        // The record id carries the send time, so the end-to-end sink can time it.
        let record_id = format!("crm-{i}-{}", crate::e2e::now_micros());
        let body = serde_json::to_vec(&serde_json::json!({
            "type": "contact.updated",
            "data": { "id": &record_id, "email": format!("person{i}.{}@example.com", &run_id[..6]), "first_name": "Bench", "last_name": format!("{i}") }
        }))
        .unwrap_or_default();
        Self {
            id,
            record_id,
            body,
        }
    }
}
