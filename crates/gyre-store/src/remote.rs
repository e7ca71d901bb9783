//! The team store's objects: an S3-compatible bucket (AWS S3, MinIO, Ceph, Garage, moto...),
//! behind the project's local object directory, which becomes a bounded cache of it.
//!
//! Requests are signed by `rusty-s3` (sans-IO: it builds presigned URLs) and sent by `ureq`
//! (blocking, rustls): the store is synchronous and needs four requests (HEAD, GET, PUT, and
//! a listing for `gyre store copy`), which did not earn an async runtime and an SDK.
//!
//! Credentials come from the environment and the AWS files, never from gyre.toml:
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, else the profile
//! `AWS_PROFILE` (default `default`) of `AWS_SHARED_CREDENTIALS_FILE` (default
//! `~/.aws/credentials`); without any, requests go unsigned (a public or proxy-authenticated
//! bucket). The endpoint is `[store] endpoint`, else `AWS_ENDPOINT_URL_S3` or
//! `AWS_ENDPOINT_URL`, else AWS; the region `[store] region`, else `AWS_REGION` or
//! `AWS_DEFAULT_REGION`, else `us-east-1`.

use crate::StoreError;
use gyre_core::ContentHash;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// How long a signed request stays valid (a large upload on a slow link must finish inside it).
const SIGNED_FOR: Duration = Duration::from_secs(3600);

/// An `s3://bucket/prefix` location with its endpoint and credentials.
pub struct Remote {
    bucket: Bucket,
    prefix: String,
    credentials: Option<Credentials>,
    agent: ureq::Agent,
    /// `s3://bucket/prefix`, for messages.
    url: String,
}

impl std::fmt::Debug for Remote {
    // Credentials stay out of any debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("url", &self.url).finish()
    }
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

/// Keys of one profile of an AWS credentials file (`[name]` then `key = value` lines).
fn profile_keys(text: &str, profile: &str) -> Option<(String, String, Option<String>)> {
    let mut in_profile = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') && line.ends_with(']') {
            let name = line[1..line.len() - 1].trim();
            in_profile = name == profile || name == format!("profile {profile}");
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_string();
            match k.trim() {
                "aws_access_key_id" => id = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                _ => {}
            }
        }
    }
    Some((id?, secret?, token))
}

/// The keys the in-process tests use (they cannot set the process's environment safely
/// while other tests read it); the CLI's tests give theirs in the environment.
#[cfg(test)]
pub(crate) static TEST_KEYS: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();

fn credentials() -> Option<Credentials> {
    #[cfg(test)]
    if let Some((id, secret)) = TEST_KEYS.get() {
        return Some(Credentials::new(id, secret));
    }
    if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Some(match env("AWS_SESSION_TOKEN") {
            Some(t) => Credentials::new_with_token(id, secret, t),
            None => Credentials::new(id, secret),
        });
    }
    let file = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".aws").join("credentials")))?;
    let text = std::fs::read_to_string(file).ok()?;
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let (id, secret, token) = profile_keys(&text, &profile)?;
    Some(match token {
        Some(t) => Credentials::new_with_token(id, secret, t),
        None => Credentials::new(id, secret),
    })
}

/// Splits `s3://bucket/prefix` into its bucket and prefix (without slashes at either end).
pub(crate) fn parse_s3_url(url: &str) -> Result<(String, String), StoreError> {
    let bad = |why: &str| {
        StoreError::Config(format!(
            "objects location {url:?} {why}: write s3://BUCKET or s3://BUCKET/PREFIX"
        ))
    };
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| bad("is not an s3:// URL"))?;
    if rest.contains('@') || rest.contains('?') {
        return Err(bad(
            "carries credentials or options (they belong in AWS_* variables or ~/.aws/credentials)",
        ));
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty()
        || !bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err(bad("has no valid bucket name"));
    }
    let prefix = prefix.trim_matches('/').to_string();
    if prefix.split('/').any(|p| p == ".." || p == ".") {
        return Err(bad("has a relative path in its prefix"));
    }
    Ok((bucket.to_string(), prefix))
}

impl Remote {
    /// The bucket at `url` (`s3://bucket/prefix`), reached at `endpoint` (else the
    /// environment's, else AWS) in `region`.
    pub(crate) fn new(
        url: &str,
        endpoint: Option<&str>,
        region: Option<&str>,
    ) -> Result<Remote, StoreError> {
        let (name, prefix) = parse_s3_url(url)?;
        let region = region
            .map(String::from)
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint = endpoint
            .map(String::from)
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"));
        // A named endpoint (MinIO, Ceph, moto...) is addressed by path; AWS by host name.
        let (endpoint, style) = match endpoint {
            Some(e) => (e, UrlStyle::Path),
            None => (
                format!("https://s3.{region}.amazonaws.com"),
                UrlStyle::VirtualHost,
            ),
        };
        let parsed = url::Url::parse(&endpoint)
            .map_err(|e| StoreError::Config(format!("object store endpoint {endpoint:?}: {e}")))?;
        let bucket = Bucket::new(parsed, style, name, region)
            .map_err(|e| StoreError::Config(format!("object store endpoint {endpoint:?}: {e}")))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .into();
        Ok(Remote {
            bucket,
            prefix,
            credentials: credentials(),
            agent,
            url: url.to_string(),
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    fn key(&self, id: &ContentHash) -> String {
        let s = id.as_str();
        let rel = format!("{}/{}", &s[..2], &s[2..]);
        if self.prefix.is_empty() {
            rel
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }

    fn failed(&self, what: &str, id: &str, e: impl std::fmt::Display) -> StoreError {
        // A signed URL carries the access key's id and, with temporary credentials, the
        // session token: an error that quotes one is cut before its query.
        let mut e = e.to_string();
        if let Some(q) = e.find('?') {
            e.truncate(q);
        }
        StoreError::Remote(format!("{what} object {id} at {}: {e}", self.url))
    }

    /// Whether the bucket holds the object.
    pub(crate) fn contains(&self, id: &ContentHash) -> Result<bool, StoreError> {
        let key = self.key(id);
        let url = self
            .bucket
            .head_object(self.credentials.as_ref(), &key)
            .sign(SIGNED_FOR);
        let res = self
            .agent
            .head(url.as_str())
            .call()
            .map_err(|e| self.failed("checking", id.as_str(), e))?;
        match res.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            s => Err(self.failed("checking", id.as_str(), format!("HTTP {s}"))),
        }
    }

    /// Uploads the object's bytes (the whole body in one request).
    pub(crate) fn put(&self, id: &ContentHash, bytes: &[u8]) -> Result<(), StoreError> {
        let key = self.key(id);
        let url = self
            .bucket
            .put_object(self.credentials.as_ref(), &key)
            .sign(SIGNED_FOR);
        let mut res = self
            .agent
            .put(url.as_str())
            .send(bytes)
            .map_err(|e| self.failed("uploading", id.as_str(), e))?;
        match res.status().as_u16() {
            200..=299 => Ok(()),
            s => {
                let body = res.body_mut().read_to_string().unwrap_or_default();
                Err(self.failed(
                    "uploading",
                    id.as_str(),
                    format!("HTTP {s} {}", s3_message(&body)),
                ))
            }
        }
    }

    /// Downloads the object into `file`, checking that its bytes hash to its id; returns
    /// false when the bucket does not hold it.
    pub(crate) fn download(
        &self,
        id: &ContentHash,
        file: &mut std::fs::File,
    ) -> Result<bool, StoreError> {
        use sha2::Digest;
        let key = self.key(id);
        let url = self
            .bucket
            .get_object(self.credentials.as_ref(), &key)
            .sign(SIGNED_FOR);
        let mut res = self
            .agent
            .get(url.as_str())
            .call()
            .map_err(|e| self.failed("downloading", id.as_str(), e))?;
        match res.status().as_u16() {
            200 => {}
            404 => return Ok(false),
            s => {
                return Err(self.failed("downloading", id.as_str(), format!("HTTP {s}")));
            }
        }
        let mut reader = res.body_mut().as_reader();
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| self.failed("downloading", id.as_str(), e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(|e| self.failed("caching", id.as_str(), e))?;
        }
        let got = ContentHash::from_digest(&hasher.finalize());
        if got != *id {
            return Err(StoreError::Corrupt(format!(
                "object {id} downloaded from {} hashes to {got}: the bucket's copy is damaged",
                self.url
            )));
        }
        Ok(true)
    }

    /// Every object id in the bucket under the prefix (for `gyre store copy`).
    pub(crate) fn list(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = self.bucket.list_objects_v2(self.credentials.as_ref());
            if !self.prefix.is_empty() {
                action.with_prefix(format!("{}/", self.prefix));
            }
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let url = action.sign(SIGNED_FOR);
            let mut res = self
                .agent
                .get(url.as_str())
                .call()
                .map_err(|e| self.failed("listing", "ids", e))?;
            let body = res
                .body_mut()
                .read_to_string()
                .map_err(|e| self.failed("listing", "ids", e))?;
            if res.status().as_u16() != 200 {
                return Err(self.failed(
                    "listing",
                    "ids",
                    format!("HTTP {} {}", res.status().as_u16(), s3_message(&body)),
                ));
            }
            let parsed = rusty_s3::actions::ListObjectsV2::parse_response(&body)
                .map_err(|e| self.failed("listing", "ids", e))?;
            for c in parsed.contents {
                let rel = c
                    .key
                    .strip_prefix(&self.prefix)
                    .unwrap_or(&c.key)
                    .trim_start_matches('/');
                let id: String = rel.chars().filter(|c| *c != '/').collect();
                if ContentHash::parse(&id).is_some() {
                    out.push(id);
                }
            }
            match parsed.next_continuation_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }
}

/// The `<Message>` of an S3 error body, if it has one.
fn s3_message(body: &str) -> String {
    match (body.find("<Message>"), body.find("</Message>")) {
        (Some(a), Some(b)) if a < b => body[a + "<Message>".len()..b].to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix_and_nothing_else() {
        assert_eq!(
            parse_s3_url("s3://team-models/adult/").unwrap(),
            ("team-models".into(), "adult".into())
        );
        assert_eq!(parse_s3_url("s3://b").unwrap(), ("b".into(), String::new()));
        for bad in [
            "http://b/p",
            "s3://",
            "s3://Key:secret@b/p",
            "s3://b/../p",
            "s3://b/p?x=1",
        ] {
            assert!(parse_s3_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_profile_of_the_credentials_file_is_read() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key = S\n\
                    [team]\naws_access_key_id=B\naws_secret_access_key=T\naws_session_token=X\n";
        assert_eq!(
            profile_keys(text, "team").unwrap(),
            ("B".into(), "T".into(), Some("X".into()))
        );
        assert_eq!(profile_keys(text, "default").unwrap().0, "A");
        assert!(profile_keys(text, "other").is_none());
    }
}
