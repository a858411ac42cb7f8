//! The demo's HTTP client: one request per connection, as a service in another language would
//! send it (the point is to go through the gateway, not around it).

use serde_json::Value as Json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use udl::{Error, ErrorKind, Result};

/// A status and its JSON body (`Null` when there was none).
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Json,
}

/// Sends `method path` to `address` with `headers` and an optional JSON body.
pub async fn send(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<&Json>,
) -> Result<Reply> {
    let failed = |what: &str| {
        Error::new(
            ErrorKind::Unavailable,
            format!("the demo's gateway call {what}"),
        )
    };
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|_| failed("could not connect"))?;
    let body = body.map(Json::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|_| failed("could not be sent"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .map_err(|_| failed("was cut off"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| failed("got no answer"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| failed("got a malformed answer"))?;
    Ok(Reply {
        status,
        body: serde_json::from_str(body).unwrap_or(Json::Null),
    })
}
