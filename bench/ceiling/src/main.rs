//! `ceiling ADDRESS FILE`: answers every HTTP/1.1 request on ADDRESS with `200` and FILE's bytes
//! as `application/json`, keeping connections alive. No parsing beyond finding the end of the
//! request head, no routing, no auth, no database: what this machine's HTTP stack can do at all.

use std::io::Write;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:18090".into());
    let body = std::fs::read(args.next().unwrap_or_else(|| "body.json".into()))?;
    let mut response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    let response: Arc<[u8]> = response.into();
    let listener = tokio::net::TcpListener::bind(&address).await?;
    let _ = writeln!(std::io::stderr(), "ceiling listening on {address}");
    loop {
        let (mut socket, _) = listener.accept().await?;
        let response = Arc::clone(&response);
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 16 * 1024];
            let mut filled = 0;
            loop {
                let Ok(n) = socket.read(&mut buffer[filled..]).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                filled += n;
                // Answer once per complete request head (bodies are not expected).
                while let Some(end) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                    if socket.write_all(&response).await.is_err() {
                        return;
                    }
                    buffer.copy_within(end + 4..filled, 0);
                    filled -= end + 4;
                }
                if filled == buffer.len() {
                    return;
                }
            }
        });
    }
}
