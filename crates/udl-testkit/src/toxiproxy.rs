//! A client for the local toxiproxy (started by `scripts/services`): proxies in front of the
//! real servers, with latency, cut links and resets injected on demand.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use serde_json::{json, Value};

use crate::servers;

/// Address of the toxiproxy API (`UDL_TEST_TOXIPROXY`, default `127.0.0.1:8474`).
pub fn api_address() -> String {
    std::env::var("UDL_TEST_TOXIPROXY").unwrap_or_else(|_| "127.0.0.1:8474".to_owned())
}

/// One request to the API; the JSON answer, or a message naming what failed.
fn request(method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let address = api_address();
    let mut stream = TcpStream::connect(&address).map_err(|e| e.to_string())?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(format!("{head}{body}").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    let (status, rest) = answer.split_once("\r\n").ok_or("empty answer")?;
    if !status.contains(" 200") && !status.contains(" 201") && !status.contains(" 204") {
        return Err(format!("{method} {path}: {status}"));
    }
    let body = rest.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok(serde_json::from_str(body.trim()).unwrap_or(Value::Null))
}

/// A proxy in front of one server; removed when dropped.
pub struct Proxy {
    name: String,
    listen: String,
}

impl Proxy {
    /// A new proxy to `upstream` (`host:port`) on a free local port.
    pub fn to(upstream: &str) -> Proxy {
        let name = servers::unique_namespace("proxy");
        let created = request(
            "POST",
            "/proxies",
            Some(&json!({ "name": name, "listen": "127.0.0.1:0", "upstream": upstream })),
        )
        .unwrap_or_else(|e| servers::unreachable("toxiproxy", &api_address(), &e));
        let listen = created["listen"]
            .as_str()
            .expect("toxiproxy answers with the listen address")
            .to_owned();
        Proxy { name, listen }
    }

    /// `host:port` to connect to instead of the server.
    pub fn listen(&self) -> &str {
        &self.listen
    }

    /// Delays every answer from the server by `ms` milliseconds.
    pub fn add_latency(&self, ms: u64) {
        let toxic = json!({ "name": "latency", "type": "latency", "stream": "downstream",
            "attributes": { "latency": ms } });
        request(
            "POST",
            &format!("/proxies/{}/toxics", self.name),
            Some(&toxic),
        )
        .expect("add latency");
    }

    /// Removes the latency added by [`Proxy::add_latency`].
    pub fn remove_latency(&self) {
        request(
            "DELETE",
            &format!("/proxies/{}/toxics/latency", self.name),
            None,
        )
        .expect("remove latency");
    }

    /// Cuts (`false`) or restores (`true`) the link: cut, every connection is closed and new
    /// ones are refused.
    pub fn set_enabled(&self, enabled: bool) {
        request(
            "POST",
            &format!("/proxies/{}", self.name),
            Some(&json!({ "enabled": enabled })),
        )
        .expect("toggle proxy");
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = request("DELETE", &format!("/proxies/{}", self.name), None);
    }
}
