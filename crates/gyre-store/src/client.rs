//! A project whose store is a team server (`gyre clone URL DIR`; gyre.toml's `[server] url`):
//! the client side of the team API. Metadata operations run inside transactions the server
//! holds ([`ServerTx`], one HTTP request per operation, see `wire`); objects are fetched from
//! the server into this directory's cache (checked against their hash) and uploaded to it.
//!
//! The token is the person's: `GYRE_TOKEN`, else `token` under `[servers."URL"]` of the
//! user's config file (`$GYRE_CONFIG`, else `$XDG_CONFIG_HOME/gyre/config.toml`, else
//! `~/.config/gyre/config.toml`). It is sent as a bearer token and never written into a
//! message. A token is never sent over plain HTTP to a host other than this machine unless
//! `GYRE_ALLOW_PLAIN_HTTP=1` says so (on an untrusted network it could be read off the wire).
//! An `https://` server's certificate is checked against the web's authorities (webpki-roots),
//! or those of the PEM file `GYRE_CA_CERT` names.

use crate::StoreError;
use crate::wire::Op;
use gyre_core::ContentHash;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::io::{Read, Write};
use std::time::Duration;

/// The largest answer read from the server (a listing of every run of a big project).
const MAX_ANSWER: u64 = 1 << 30;

/// Who the server says this client is.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct WhoAmI {
    pub name: String,
    pub role: crate::people::Role,
    pub token: String,
}

pub struct ServerClient {
    url: String,
    token: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for ServerClient {
    // The token stays out of any debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerClient")
            .field("url", &self.url)
            .finish()
    }
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

/// The user's config file (see the module's notes).
pub fn user_config_path() -> Option<std::path::PathBuf> {
    if let Some(p) = env("GYRE_CONFIG") {
        return Some(p.into());
    }
    let base = env("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| env("HOME").map(|h| std::path::Path::new(&h).join(".config")))?;
    Some(base.join("gyre").join("config.toml"))
}

/// The token for `url`: `GYRE_TOKEN`, else the user's config file.
fn token_for(url: &str) -> Result<String, StoreError> {
    if let Some(t) = env("GYRE_TOKEN") {
        return Ok(t.trim().to_string());
    }
    let missing = || StoreError::Denied {
        url: url.to_string(),
        status: 401,
        message: "no token: GYRE_TOKEN is not set and the user's config file has none for this \
                  server"
            .into(),
    };
    let Some(path) = user_config_path() else {
        return Err(missing());
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Err(missing());
    };
    #[derive(serde::Deserialize)]
    struct Entry {
        token: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        servers: std::collections::BTreeMap<String, Entry>,
    }
    // The file's own error could quote a line holding a token: only its position is shown.
    let file: File = toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!(" at byte {}", s.start))
            .unwrap_or_default();
        StoreError::Config(format!("{}: not valid TOML{at}", path.display()))
    })?;
    let trimmed = url.trim_end_matches('/');
    file.servers
        .iter()
        .find(|(k, _)| k.trim_end_matches('/') == trimmed)
        .and_then(|(_, e)| e.token.clone())
        .ok_or_else(missing)
}

/// The certificates of a PEM file (`GYRE_CA_CERT`: the authority that signed the server's
/// certificate, when it is not one of the web's; a team's own, say).
fn ca_certs(path: &std::path::Path) -> Result<Vec<ureq::tls::Certificate<'static>>, StoreError> {
    let pem = std::fs::read(path).map_err(|e| StoreError::io(path, e))?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(StoreError::Config(format!(
            "{} (GYRE_CA_CERT) holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// Checks a server URL: http(s), a host, no credentials or query in it; plain HTTP only to
/// this machine unless allowed.
pub fn check_server_url(url: &str) -> Result<String, StoreError> {
    let bad = |why: &str| StoreError::Config(format!("server URL {url:?}: {why}"));
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("use http:// or https://"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "put no credentials in it; the token comes from GYRE_TOKEN",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("no query or fragment"));
    }
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => return Err(bad("it names no host")),
    };
    if parsed.scheme() == "http"
        && !loopback
        && env("GYRE_ALLOW_PLAIN_HTTP").as_deref() != Some("1")
    {
        return Err(bad(
            "a token is not sent over plain HTTP to another machine: use https:// (a reverse \
             proxy in front of gyre server, see README), or set GYRE_ALLOW_PLAIN_HTTP=1 on a \
             network you trust",
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// The `error` of a JSON answer, else the body's first line.
fn message_of(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct E {
        error: String,
        hint: Option<String>,
    }
    match serde_json::from_slice::<E>(body) {
        Ok(e) => match e.hint {
            Some(h) => format!("{} ({h})", e.error),
            None => e.error,
        },
        Err(_) => String::from_utf8_lossy(body)
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(300)
            .collect(),
    }
}

impl ServerClient {
    /// A client of the server at `url` with the person's token.
    pub fn new(url: &str) -> Result<ServerClient, StoreError> {
        let url = check_server_url(url)?;
        let token = token_for(&url)?;
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)));
        if let Some(path) = env("GYRE_CA_CERT") {
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(
                        ca_certs(std::path::Path::new(&path))?,
                    )))
                    .build(),
            );
        }
        let agent: ureq::Agent = config.build().into();
        Ok(ServerClient { url, token, agent })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn failed(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Server {
            url: self.url.clone(),
            message: e.to_string(),
        }
    }

    /// A request's answer: its body for 2xx, else the error it stands for.
    fn answer(
        &self,
        what: &str,
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(u16, Vec<u8>), StoreError> {
        let mut res = res.map_err(|e| self.failed(format!("{what}: {e}")))?;
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| self.failed(format!("{what}: {e}")))?;
        match status {
            200..=299 | 404 => Ok((status, body)),
            401 | 403 => Err(StoreError::Denied {
                url: self.url.clone(),
                status,
                message: message_of(&body),
            }),
            400 | 409 | 413 | 422 => Err(StoreError::Invalid(message_of(&body))),
            _ => Err(self.failed(format!("{what}: HTTP {status}: {}", message_of(&body)))),
        }
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// GETs a JSON answer.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, StoreError> {
        let res = self
            .agent
            .get(format!("{}{path}", self.url))
            .header("authorization", self.bearer())
            .call();
        let (status, body) = self.answer(&format!("GET {path}"), res)?;
        if status == 404 {
            return Err(self.failed(format!("{path}: not found (an older gyre server?)")));
        }
        serde_json::from_slice(&body).map_err(|e| self.failed(format!("{path}: {e}")))
    }

    /// POSTs JSON and reads a JSON answer.
    pub fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<T, StoreError> {
        let bytes = serde_json::to_vec(body).map_err(|e| self.failed(e))?;
        let res = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("authorization", self.bearer())
            .content_type("application/json")
            .send(&bytes[..]);
        let (status, body) = self.answer(&format!("POST {path}"), res)?;
        if status == 404 {
            return Err(StoreError::Invalid(message_of(&body)));
        }
        serde_json::from_slice(&body).map_err(|e| self.failed(format!("{path}: {e}")))
    }

    pub fn whoami(&self) -> Result<WhoAmI, StoreError> {
        self.get("/v1/whoami")
    }

    /// Whether the server holds the object.
    pub(crate) fn contains(&self, id: &ContentHash) -> Result<bool, StoreError> {
        let res = self
            .agent
            .head(format!("{}/v1/objects/{id}", self.url))
            .header("authorization", self.bearer())
            .call();
        Ok(self.answer(&format!("checking object {id}"), res)?.0 != 404)
    }

    /// Uploads an object; the server checks its bytes against its id.
    pub(crate) fn put(&self, id: &ContentHash, bytes: &[u8]) -> Result<(), StoreError> {
        let res = self
            .agent
            .put(format!("{}/v1/objects/{id}", self.url))
            .header("authorization", self.bearer())
            .content_type("application/octet-stream")
            .send(bytes);
        match self.answer(&format!("uploading object {id}"), res)?.0 {
            404 => Err(self.failed(format!("uploading object {id}: not found"))),
            _ => Ok(()),
        }
    }

    /// Downloads an object into `file`, checking its bytes hash to its id; false when the
    /// server does not hold it.
    pub(crate) fn download(
        &self,
        id: &ContentHash,
        file: &mut std::fs::File,
    ) -> Result<bool, StoreError> {
        use sha2::Digest;
        let mut res = self
            .agent
            .get(format!("{}/v1/objects/{id}", self.url))
            .header("authorization", self.bearer())
            .call()
            .map_err(|e| self.failed(format!("downloading object {id}: {e}")))?;
        match res.status().as_u16() {
            200 => {}
            404 => return Ok(false),
            _ => {
                // Read the error through the common path (401, 403, 5xx).
                self.answer(&format!("downloading object {id}"), Ok(res))?;
                return Err(self.failed(format!("downloading object {id}")));
            }
        }
        let mut reader = res.body_mut().with_config().limit(u64::MAX).reader();
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| self.failed(format!("downloading object {id}: {e}")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(|e| self.failed(format!("caching object {id}: {e}")))?;
        }
        let got = ContentHash::from_digest(&hasher.finalize());
        if got != *id {
            return Err(StoreError::Corrupt(format!(
                "object {id} downloaded from {} hashes to {got}",
                self.url
            )));
        }
        Ok(true)
    }
}

/// A transaction the server holds for this client, begun with its first operation (a read
/// that runs one op costs one request to begin and answer, one to end).
pub struct ServerTx<'a> {
    client: &'a ServerClient,
    write: bool,
    id: RefCell<Option<String>>,
}

#[derive(serde::Serialize)]
struct Begin<'a> {
    write: bool,
    op: &'a Op,
}

#[derive(serde::Deserialize)]
struct Begun {
    tx: String,
    answer: serde_json::Value,
}

impl<'a> ServerTx<'a> {
    pub(crate) fn new(client: &'a ServerClient, write: bool) -> Self {
        ServerTx {
            client,
            write,
            id: RefCell::new(None),
        }
    }

    /// Runs one operation in this transaction and reads its answer.
    pub(crate) fn call<T: DeserializeOwned>(&self, op: Op) -> Result<T, StoreError> {
        if op.writes() && !self.write {
            return Err(StoreError::Invalid(format!(
                "internal: {} in a read transaction",
                op.name()
            )));
        }
        let open = self.id.borrow().clone();
        let answer: serde_json::Value = match open {
            Some(id) => self.client.post(&format!("/v1/tx/{id}/op"), &op)?,
            None => {
                let begun: Begun = self.client.post(
                    "/v1/tx",
                    &Begin {
                        write: self.write,
                        op: &op,
                    },
                )?;
                *self.id.borrow_mut() = Some(begun.tx);
                begun.answer
            }
        };
        serde_json::from_value(answer).map_err(|e| {
            self.client
                .failed(format!("the answer to {}: {e}", op.name()))
        })
    }

    /// Commits (or rolls back) the transaction; nothing to do when no op ran.
    pub(crate) fn finish(self, commit: bool) -> Result<(), StoreError> {
        let Some(id) = self.id.into_inner() else {
            return Ok(());
        };
        let what = if commit { "commit" } else { "rollback" };
        let _: serde_json::Value = self
            .client
            .post(&format!("/v1/tx/{id}/{what}"), &serde_json::json!({}))?;
        Ok(())
    }
}
