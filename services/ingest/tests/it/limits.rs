//! The limits on what a request may carry, as HTTP clients meet them: an oversized header section
//! is refused with 431 before the body is read, and a refusal that leaves the body unread (413,
//! 431) tells a keep-alive client to open a new connection instead of breaking its next request.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::harness::{raw_messages, start};
use switchyard_chassis::testkit;

const BODY: &[u8] = br#"{"type":"contact.created","data":{"id":"1","email":"a@example.com"}}"#;

#[tokio::test]
async fn a_header_section_over_the_limit_is_refused_with_431_and_counted() {
    let nats = testkit::nats_url();
    let ingest = start(&nats, "5s").await;

    // Correctly signed, so only the header's size can refuse it.
    let mut headers = ingest.signed("big-header", BODY);
    headers.push(("x-padding", "a".repeat(128 * 1024)));
    let (status, json) = ingest.post("demo", &headers, BODY).await;
    assert_eq!(status, 431, "{json}");
    assert_eq!(json["error"]["code"], "headers_too_large", "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("16384-byte limit")),
        "{json}"
    );

    // Headers under the default 16 KiB pass.
    let mut headers = ingest.signed("fair-header", BODY);
    headers.push(("x-padding", "a".repeat(8 * 1024)));
    let (status, json) = ingest.post("demo", &headers, BODY).await;
    assert_eq!(status, 200, "{json}");

    let (stored, msg_id) = raw_messages(&nats, &ingest.prefix).await;
    assert_eq!(stored, 1, "only the fair request reached the pipeline");
    assert_eq!(msg_id.as_deref(), Some("demo:fair-header"));
    let line = r#"switchyard_ingest_webhooks_total{source="demo",outcome="headers_too_large"}"#;
    assert_eq!(ingest.metric(line).await, Some(1), "{line}");
    ingest.stop(&nats).await;
}

/// One HTTP/1.1 answer read off a connection: status, lower-cased headers, body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn read_answer(reader: &mut BufReader<TcpStream>) -> std::io::Result<Answer> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not a status line: {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let answer = Answer { status, headers };
    let length: usize = answer
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(answer)
}

fn request(path: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut text = format!(
        "POST /v1/webhooks/{path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A client as vendors' HTTP libraries behave: it keeps its connection for the next request
/// unless the answer says `Connection: close`.
struct KeepAliveClient {
    addr: String,
    connection: Option<BufReader<TcpStream>>,
    connections_opened: usize,
}

impl KeepAliveClient {
    async fn send(&mut self, request: &[u8]) -> std::io::Result<Answer> {
        if self.connection.is_none() {
            let stream = TcpStream::connect(&self.addr).await?;
            self.connection = Some(BufReader::new(stream));
            self.connections_opened += 1;
        }
        let reader = self.connection.as_mut().expect("connected");
        reader.get_mut().write_all(request).await?;
        let answer = tokio::time::timeout(Duration::from_secs(10), read_answer(reader))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if answer
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            self.connection = None;
        }
        Ok(answer)
    }
}

#[tokio::test]
async fn refusals_that_leave_the_body_unread_close_the_connection_and_say_so() {
    let nats = testkit::nats_url();
    let ingest = start(&nats, "5s").await;
    let mut client = KeepAliveClient {
        addr: ingest.base.trim_start_matches("http://").to_owned(),
        connection: None,
        connections_opened: 0,
    };

    // A body over max_body_bytes (2048 in these tests): 413, and the connection is done.
    let big = format!(
        r#"{{"type":"contact.created","data":{{"pad":"{}"}}}}"#,
        "x".repeat(4096)
    );
    let answer = client
        .send(&request(
            "demo",
            &ingest.signed("too-big", big.as_bytes()),
            big.as_bytes(),
        ))
        .await
        .expect("the 413 is answered");
    assert_eq!(answer.status, 413);
    assert_eq!(answer.header("connection"), Some("close"));

    // The client's next request gets an answer, not a broken pipe.
    let answer = client
        .send(&request("demo", &ingest.signed("after-413", BODY), BODY))
        .await
        .expect("the request after a 413 is answered");
    assert_eq!(answer.status, 200);

    // An oversized header section: 431, and the connection is done as well.
    let mut headers = ingest.signed("huge-header", BODY);
    headers.push(("x-padding", "a".repeat(64 * 1024)));
    let answer = client
        .send(&request("demo", &headers, BODY))
        .await
        .expect("the 431 is answered");
    assert_eq!(answer.status, 431);
    assert_eq!(answer.header("connection"), Some("close"));
    let answer = client
        .send(&request("demo", &ingest.signed("after-431", BODY), BODY))
        .await
        .expect("the request after a 431 is answered");
    assert_eq!(answer.status, 200);

    // Accepted requests keep the connection: the two 200s did not open one each.
    let answer = client
        .send(&request("demo", &ingest.signed("kept-alive", BODY), BODY))
        .await
        .expect("answered");
    assert_eq!(answer.status, 200);
    assert_eq!(
        client.connections_opened, 3,
        "one to start, one after each refusal"
    );
    assert_eq!(raw_messages(&nats, &ingest.prefix).await.0, 3);
    ingest.stop(&nats).await;
}
