//! The listener under hostile or careless clients, over raw TCP: partial headers, idle and
//! stalled connections, the connection limit, bodies the server does not read, broken bodies.
//! Every wait is bounded and generous; nothing here measures speed.
#![expect(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous bound for something the server must do within about a second.
const PATIENCE: Duration = Duration::from_secs(10);

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address).await.unwrap()
}

/// Reads until the server closes the connection (or `PATIENCE` passes: then `None`).
async fn read_to_close(stream: &mut TcpStream) -> Option<String> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buffer = [0u8; 8192];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&seen).into_owned())
}

/// Reads one response whose body is `Content-Length` long; returns head and body.
async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 8192];
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(end) = find(&seen, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if seen.len() >= end + 4 + length {
                    assert_eq!(seen.len(), end + 4 + length, "one response at a time");
                    let body = String::from_utf8_lossy(&seen[end + 4..]).into_owned();
                    let head = String::from_utf8_lossy(&seen[..end]).into_owned();
                    return (head, body);
                }
            }
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(
                n > 0,
                "closed early after {:?}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buffer[..n]);
        }
    })
    .await
    .expect("a response in time")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn partial_headers_and_idle_connections_are_closed() {
    let app = spawn_app_with(|c| {
        c.connections.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let mut idle = connect(&app).await;
    let mut partial = connect(&app).await;
    partial
        .write_all(b"GET /v1.0/$metadata HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    assert!(read_to_close(&mut idle).await.is_some(), "idle stayed open");
    assert!(
        read_to_close(&mut partial).await.is_some(),
        "partial header stayed open"
    );
    // A keep-alive connection is closed once it has been idle too.
    let mut kept = connect(&app).await;
    kept.write_all(b"GET /v1.0/$metadata HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_response(&mut kept).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(read_to_close(&mut kept).await.is_some(), "kept forever");
}

/// The idle timeout counts from the last bytes moved, not from the connection's start: a
/// keep-alive connection used more often than the timeout lives well past it.
#[tokio::test]
async fn a_connection_in_use_outlives_its_idle_timeout() {
    let timeout = Duration::from_millis(400);
    let app = spawn_app_with(|c| {
        c.connections.idle_timeout = timeout;
    })
    .await;
    let mut used = connect(&app).await;
    for _ in 0..8 {
        tokio::time::sleep(timeout / 4).await;
        used.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (head, _) = read_response(&mut used).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }
    // Twice the timeout in use; left alone now, it is closed.
    assert!(read_to_close(&mut used).await.is_some(), "kept forever");
}

#[tokio::test]
async fn a_stalled_body_is_cut_by_the_idle_and_request_timeouts() {
    let app = spawn_app_with(|c| {
        c.connections.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let t = tenant();
    let mut stalled = connect(&app).await;
    let head = format!(
        "POST /v1.0/reports/office365ActivationsUserCounts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a",
        t.write
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    assert!(
        read_to_close(&mut stalled).await.is_some(),
        "stalled body kept"
    );

    let app = spawn_app_with(|c| {
        c.request_timeout = Duration::from_secs(1);
    })
    .await;
    let mut slow = connect(&app).await;
    slow.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut slow).await.expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert_eq!(
        app.count_rows("office365ActivationsUserCounts", &t.read)
            .await,
        0
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let app = spawn_app_with(|c| {
        c.connections.max_connections = 2;
        c.connections.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    let held_a = connect(&app).await;
    let mut held_b = connect(&app).await;
    held_b
        .write_all(b"GET /v1.0/$metadata HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_response(&mut held_b).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Both slots are taken: a third client is not served while they are held...
    let mut third = connect(&app).await;
    third
        .write_all(b"GET /v1.0/$metadata HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut byte)).await;
    assert!(early.is_err(), "served beyond the connection limit");
    // ...and is, as soon as one closes.
    drop(held_a);
    let (head, _) = read_response(&mut third).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

#[tokio::test]
async fn unread_bodies_leave_the_connection_usable() {
    let app = spawn_app().await;
    let mut stream = connect(&app).await;
    // An unknown segment is refused before its body is read; the next request still works.
    stream
        .write_all(b"POST /v1.0/nope HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhello")
        .await
        .unwrap();
    let (head, body) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(
        body.contains("Resource not found for the segment 'nope'"),
        "{body}"
    );
    stream
        .write_all(b"GET /v1.0/$metadata HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

#[tokio::test]
async fn a_client_that_sends_a_whole_large_body_first_reads_the_413() {
    let app = spawn_app().await;
    let t = tenant();
    let mut stream = connect(&app).await;
    let body = vec![b' '; 2 * 1024 * 1024];
    let head = format!(
        "POST /v1.0/reports/office365ActivationsUserCounts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        t.write,
        body.len()
    );
    // As Python's http.client does: everything written before anything is read.
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let (head, body) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(body.contains("larger than the limit"), "{body}");
}

#[tokio::test]
async fn broken_bodies_are_not_called_too_large() {
    let app = spawn_app().await;
    let t = tenant();
    let post = |extra: &str| {
        format!(
            "POST /v1.0/reports/office365ActivationsUserCounts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n{extra}\r\n",
            t.write
        )
    };
    // A bad chunk size.
    let mut stream = connect(&app).await;
    let request = post("Transfer-Encoding: chunked\r\n") + "zz\r\n{}\r\n0\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut stream).await.expect("answered");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("could not be read"), "{answer}");
    assert!(!answer.contains("larger than the limit"), "{answer}");
    // A body cut short: the client stops sending and says so.
    let mut stream = connect(&app).await;
    let request = post("Content-Length: 100\r\n") + "{\"reportRefreshDate\"";
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let answer = read_to_close(&mut stream).await.expect("answered");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    assert!(!answer.contains("larger than the limit"), "{answer}");
    assert_eq!(
        app.count_rows("office365ActivationsUserCounts", &t.read)
            .await,
        0
    );
}
