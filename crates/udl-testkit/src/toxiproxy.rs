//! A client for the local toxiproxy (started by `scripts/services`): proxies in front of the
//! real servers, with latency, cut links and resets injected on demand.

use serde_json::{json, Value};

use crate::{http, servers};

/// Address of the toxiproxy API (`UDL_TEST_TOXIPROXY`, default `127.0.0.1:8474`).
pub fn api_address() -> String {
    std::env::var("UDL_TEST_TOXIPROXY").unwrap_or_else(|_| "127.0.0.1:8474".to_owned())
}

/// One request to the API; the JSON answer, or a message naming what failed.
fn request(method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let body = body.map(Value::to_string);
    let answer = http::request(&api_address(), method, path, body.as_deref())?;
    if !matches!(answer.status, 200 | 201 | 204) {
        return Err(format!("{method} {path}: {}", answer.status));
    }
    Ok(serde_json::from_str(answer.body.trim()).unwrap_or(Value::Null))
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
