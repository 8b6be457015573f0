//! One trace per event, from the sender's `traceparent` through the webhook request, transform,
//! dedupe and deliver to the destination call, exported over OTLP to a real gRPC receiver in the
//! test, with messaging attributes on every hop and no personal data in any attribute.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;
use switchyard_chassis::config::{LogFormat, TelemetryConfig};
use switchyard_chassis::{telemetry, testkit};
use switchyard_integration_tests::{Options, Pipeline};

/// The trace and span of the sender's own request, as its `traceparent` names them.
const SENDER_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SENDER_SPAN_ID: &str = "00f067aa0ba902b7";

#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().expect("receiver lock");
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            AnyValue::IntValue(i) => Some(i.to_string()),
            AnyValue::BoolValue(b) => Some(b.to_string()),
            _ => None,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_an_event_across_every_hop() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let server = receiver.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(server))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
    });
    let guard = telemetry::init(
        "switchyard-it",
        &TelemetryConfig {
            log_format: LogFormat::Pretty,
            log_filter: "info".to_owned(),
            otlp_endpoint: Some(endpoint),
        },
    )
    .expect("telemetry");

    let pipeline = Pipeline::start(Options::default()).await;
    let event = json!({"type": "contact.created", "data": {"id": "crm-1", "email": "trace.person@example.com", "name": "Trace Person"}});
    // The sender traces: its span is the parent of ingest's.
    let body = serde_json::to_vec(&event).expect("json");
    let mut headers: Vec<(&str, String)> = testkit::signed_headers(
        &pipeline.source_secret,
        "traced-1",
        switchyard_chassis::unix_now(),
        &body,
    )
    .to_vec();
    headers.push(("content-type", "application/json".to_owned()));
    headers.push((
        "traceparent",
        format!("00-{SENDER_TRACE_ID}-{SENDER_SPAN_ID}-01"),
    ));
    let (status, answer) = pipeline.send_to("demo", &headers, &body).await;
    assert_eq!(status, 200, "{answer}");
    pipeline.sink.wait_for(1, Duration::from_secs(30)).await;
    pipeline.wait_drained(Duration::from_secs(30)).await;
    pipeline.finish().await;
    // Flushes the batch exporter.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .expect("flush");

    let spans = receiver.spans.lock().expect("lock").clone();
    let root = spans
        .iter()
        .find(|s| {
            s.name == "POST /v1/webhooks/{source}"
                && attribute(s, "source").as_deref() == Some("demo")
        })
        .unwrap_or_else(|| {
            panic!(
                "the ingest span was exported: {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(
        hex::encode(&root.trace_id),
        SENDER_TRACE_ID,
        "ingest continues the sender's trace"
    );
    assert_eq!(
        hex::encode(&root.parent_span_id),
        SENDER_SPAN_ID,
        "ingest's span is a child of the sender's"
    );
    let trace: Vec<&Span> = spans
        .iter()
        .filter(|s| s.trace_id == root.trace_id)
        .collect();
    let names: HashSet<&str> = trace.iter().map(|s| s.name.as_str()).collect();
    for hop in [
        "POST /v1/webhooks/{source}",
        "transform process",
        "dedupe process",
        "deliver process",
        "destination write",
    ] {
        assert!(
            names.contains(hop),
            "{hop} missing from the trace: {names:?}"
        );
    }
    // Every consumer hop says what it consumed, in the messaging conventions.
    for span in trace.iter().filter(|s| s.name.ends_with(" process")) {
        assert_eq!(
            attribute(span, "messaging.system").as_deref(),
            Some("nats"),
            "{}",
            span.name
        );
        assert!(
            attribute(span, "messaging.destination.name")
                .is_some_and(|d| d.starts_with(&pipeline_prefix(&trace))),
            "{}",
            span.name
        );
        assert!(
            attribute(span, "messaging.message.id").is_some_and(|id| !id.is_empty()),
            "{}",
            span.name
        );
    }
    // Parents chain the hops: every span but ingest's has its parent in the same trace.
    let ids: HashMap<&[u8], &str> = trace
        .iter()
        .map(|s| (s.span_id.as_slice(), s.name.as_str()))
        .collect();
    for span in &trace {
        if span.span_id != root.span_id {
            assert!(
                ids.contains_key(span.parent_span_id.as_slice()),
                "{} has its parent in the trace",
                span.name
            );
        }
    }
    // No personal data in any attribute of any span.
    for span in &spans {
        for kv in &span.attributes {
            let value = format!("{:?}", kv.value);
            assert!(
                !value.contains("trace.person") && !value.contains("Trace Person"),
                "{}: {} = {value}",
                span.name,
                kv.key
            );
        }
    }
}

/// The subjects' prefix, read off the transform hop.
fn pipeline_prefix(trace: &[&Span]) -> String {
    trace
        .iter()
        .find(|s| s.name == "transform process")
        .and_then(|s| attribute(s, "messaging.destination.name"))
        .and_then(|d| d.split('.').next().map(str::to_owned))
        .unwrap_or_default()
}
