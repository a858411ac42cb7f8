//! A minimal HTTP/1.1 client for tests (toxiproxy's API, `udl serve`): one request per
//! connection, `Connection: close`, the whole answer read.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

/// One HTTP answer.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Header lines, as sent.
    pub headers: String,
    /// The body.
    pub body: String,
}

/// A request sent whose answer has not been read yet.
pub struct Pending(TcpStream);

impl Pending {
    /// Reads the whole answer.
    pub fn finish(mut self) -> Result<Answer, String> {
        let mut answer = String::new();
        self.0
            .read_to_string(&mut answer)
            .map_err(|e| e.to_string())?;
        let (head, body) = answer.split_once("\r\n\r\n").ok_or("no end of headers")?;
        let (status_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        Ok(Answer {
            status,
            headers: headers.to_owned(),
            body: body.to_owned(),
        })
    }
}

/// Connects to `address` and sends `method path` with an optional JSON `body`; when it
/// returns, the connection is established (queued for the server's accept, in order).
pub fn send(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Pending, String> {
    let mut stream = TcpStream::connect(address).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let body = body.unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(format!("{head}{body}").as_bytes())
        .map_err(|e| e.to_string())?;
    Ok(Pending(stream))
}

/// Sends `method path` with an optional JSON `body` to `address`; the answer, or why none came.
pub fn request(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Answer, String> {
    send(address, method, path, body)?.finish()
}

/// `GET path` from `address`.
pub fn get(address: &str, path: &str) -> Result<Answer, String> {
    request(address, "GET", path, None)
}
