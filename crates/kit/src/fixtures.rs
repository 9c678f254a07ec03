//! Fixture cases: saved platform requests (or code claims) and what they must become.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use crossdock_channel::normalize::{self, Document, parse_headers};
use crossdock_channel::{Channel, ChannelError, CodeClaim, HeaderMap, InboundRequest, Method};

use crate::FIXTURE_PUBLIC_URL;

/// What a case holds.
#[derive(Debug, Clone)]
pub enum CaseInput {
    /// A request a platform sent.
    Request {
        method: Method,
        /// The URL it was sent to, query included.
        url: String,
        headers: HeaderMap,
        body: Bytes,
    },
    /// A code a store presented (code channels).
    Claim(CodeClaim),
}

/// One fixture case.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    /// The directory the case's files are in.
    pub dir: PathBuf,
    pub input: CaseInput,
    /// What the platform's API answered (a fetched order, a redemption).
    pub fetched: Option<Vec<u8>>,
    pub expected_path: PathBuf,
}

impl Case {
    /// The path of the case's file with `suffix` (`.body`, `.headers`…), if it exists.
    pub fn file(&self, suffix: &str) -> Option<PathBuf> {
        let path = self.dir.join(format!("{}{suffix}", self.name));
        path.exists().then_some(path)
    }

    /// The request as the hub would receive it at `received_at`; `None` for a claim.
    pub fn request(&self, received_at: DateTime<Utc>) -> Option<InboundRequest> {
        match &self.input {
            CaseInput::Request {
                method,
                url,
                headers,
                body,
            } => Some(normalize::request(
                method.clone(),
                url,
                headers.clone(),
                body.clone(),
                received_at,
            )),
            CaseInput::Claim(_) => None,
        }
    }

    /// What `crossdock normalize` prints for this case, received at `received_at`.
    pub fn normalize(
        &self,
        channel: &dyn Channel,
        received_at: DateTime<Utc>,
    ) -> Result<Document, ChannelError> {
        let fetched = self.fetched.as_deref();
        match (&self.input, self.request(received_at)) {
            (CaseInput::Claim(claim), _) => {
                normalize::normalize_claim(channel, claim, fetched.unwrap_or_default())
            }
            (_, request) => {
                let request = request.ok_or_else(|| {
                    ChannelError::Malformed(format!("case {} has no request", self.name))
                })?;
                normalize::normalize(channel, &request, fetched)
            }
        }
    }
}

fn read(path: &Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("reading {}: {e}", path.display()),
    }
}

fn read_text(path: &Path) -> Option<String> {
    read(path).map(|bytes| {
        String::from_utf8(bytes).unwrap_or_else(|e| panic!("{}: not UTF-8: {e}", path.display()))
    })
}

/// Every case under `dir` (one per `*.expected.json`, or per request or claim without one
/// yet), sorted by name.
pub fn load_cases(channel: &str, dir: &Path) -> Vec<Case> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| {
            let file = entry.ok()?.file_name().into_string().ok()?;
            [".body", ".claim.json", ".expected.json"]
                .iter()
                .find_map(|suffix| file.strip_suffix(suffix).map(str::to_owned))
        })
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let path = |suffix: &str| dir.join(format!("{name}{suffix}"));
            let input = match read(&path(".claim.json")) {
                Some(claim) => {
                    CaseInput::Claim(serde_json::from_slice(&claim).unwrap_or_else(|e| {
                        panic!("{}: not a code claim: {e}", path(".claim.json").display())
                    }))
                }
                None => {
                    let body = read(&path(".body")).unwrap_or_else(|| {
                        panic!(
                            "case {name} in {} has neither .body nor .claim.json",
                            dir.display()
                        )
                    });
                    let headers = read_text(&path(".headers"))
                        .map(|text| {
                            parse_headers(&text)
                                .unwrap_or_else(|e| panic!("{}: {e}", path(".headers").display()))
                        })
                        .unwrap_or_default();
                    let url = read_text(&path(".url"))
                        .map(|text| text.trim().to_owned())
                        .unwrap_or_else(|| format!("{FIXTURE_PUBLIC_URL}/webhooks/{channel}"));
                    let method = read_text(&path(".method"))
                        .map(|text| {
                            text.trim()
                                .parse::<Method>()
                                .unwrap_or_else(|e| panic!("{}: {e}", path(".method").display()))
                        })
                        .unwrap_or(Method::POST);
                    CaseInput::Request {
                        method,
                        url,
                        headers,
                        body: Bytes::from(body),
                    }
                }
            };
            Case {
                dir: dir.to_owned(),
                fetched: read(&path(".fetched.json")),
                expected_path: path(".expected.json"),
                name,
                input,
            }
        })
        .collect()
}
