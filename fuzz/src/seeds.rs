//! Seed inputs from `fixtures/<channel>/`, in the format of [`crate::input`]: each saved
//! request (or code claim) as it was signed, the same re-signed by the harness, and for
//! notify-then-fetch channels with the fetched order and its reference.

use std::path::{Path, PathBuf};

use crossdock_channel::Inbound;
use crossdock_channel::normalize::parse_headers;

use crate::Target;
use crate::input::{ALT, GET, Input, RESIGN, SCHEDULED};

/// Where the fixtures are (the fuzz crate is at the repository's top).
pub fn fixtures_dir(channel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(channel)
}

/// One fixture case's files, read.
#[derive(Debug, Default)]
struct Case {
    name: String,
    body: Vec<u8>,
    headers: String,
    url: Option<String>,
    method: Option<String>,
    fetched: Vec<u8>,
    claim: Option<serde_json::Value>,
}

fn cases(dir: &Path) -> std::io::Result<Vec<Case>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|entry| {
            let file = entry.ok()?.file_name().into_string().ok()?;
            [".body", ".claim.json"]
                .iter()
                .find_map(|suffix| file.strip_suffix(suffix).map(str::to_owned))
        })
        .collect();
    names.sort();
    names.dedup();
    let read = |name: &str, suffix: &str| std::fs::read(dir.join(format!("{name}{suffix}"))).ok();
    let text = |name: &str, suffix: &str| {
        read(name, suffix).map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
    };
    Ok(names
        .into_iter()
        .map(|name| Case {
            body: read(&name, ".body").unwrap_or_default(),
            headers: text(&name, ".headers").unwrap_or_default(),
            url: text(&name, ".url"),
            method: text(&name, ".method"),
            fetched: read(&name, ".fetched.json").unwrap_or_default(),
            claim: read(&name, ".claim.json").and_then(|b| serde_json::from_slice(&b).ok()),
            name,
        })
        .collect())
}

/// Writes `target`'s seeds into `dir` (created if missing) as `seed-<fixture>[-variant]`;
/// returns how many.
pub fn write(target: &Target, dir: &Path) -> std::io::Result<usize> {
    let spec = target.spec;
    std::fs::create_dir_all(dir)?;
    let mut written = 0;
    for case in cases(&fixtures_dir(spec.id))? {
        for (suffix, bytes) in seeds_of(target, &case) {
            std::fs::write(dir.join(format!("seed-{}{suffix}", case.name)), bytes)?;
            written += 1;
        }
    }
    Ok(written)
}

/// The seeds of one case: `("", as saved)`, `("-resigned", …)` and variants.
fn seeds_of(target: &Target, case: &Case) -> Vec<(&'static str, Vec<u8>)> {
    let spec = target.spec;
    let mut input = Input::default();

    // Headers: the channel's own into their parts, the rest as lines.
    let mut own: Vec<Vec<u8>> = vec![Vec::new(); spec.headers.len()];
    let mut other = String::new();
    for line in case.headers.lines() {
        let Ok(parsed) = parse_headers(line) else {
            continue;
        };
        for (name, value) in &parsed {
            match spec
                .headers
                .iter()
                .position(|h| name.as_str() == h.to_ascii_lowercase())
            {
                Some(index) => own[index] = value.as_bytes().to_vec(),
                None => other.push_str(&format!("{line}\n")),
            }
        }
    }
    input.headers = own.iter().map(Vec::as_slice).collect();
    input.other_headers = other.as_bytes();

    // The URL: the event segment and the query.
    let (event, query) = match &case.url {
        Some(url) => {
            let (path, query) = url.split_once('?').unwrap_or((url, ""));
            let prefix = format!("/webhooks/{}/", spec.id);
            let event = path.find(&prefix).map_or("", |i| &path[i + prefix.len()..]);
            (event.to_owned(), query.to_owned())
        }
        None => (String::new(), String::new()),
    };
    input.event = event.as_bytes();
    input.query = query.as_bytes();
    if case.method.as_deref() == Some("GET") {
        input.flags |= GET;
    }
    input.body = &case.body;
    input.answer = &case.fetched;

    // Code claims: store, code, count, request id.
    let claim_lines = case
        .claim
        .as_ref()
        .map(|claim| {
            let field = |name: &str| match &claim[name] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            ["channel_store_ref", "code", "count", "request_id"]
                .map(field)
                .join("\n")
        })
        .unwrap_or_default();
    // Notify-then-fetch: the reference the notification gives.
    let mut fetch_lines = String::new();
    if spec.fetches {
        let request = input.request(spec);
        if let Ok(delivery) = target.channel().parse(&request)
            && let Inbound::Fetch(reference) = delivery.inbound
        {
            fetch_lines = format!("{}\n{}", reference.resource, reference.external_order_id);
            if reference.scheduled {
                input.flags |= SCHEDULED;
            }
        }
    }
    input.aux = if spec.codes {
        claim_lines.as_bytes()
    } else {
        fetch_lines.as_bytes()
    };

    let mut seeds = vec![("", input.encode())];
    let mut resigned = input.clone();
    resigned.flags |= RESIGN;
    seeds.push(("-resigned", resigned.encode()));
    if spec.codes {
        // `check_code` reads a `prepare` answer: one voucher as an object, not a list.
        let prepare = prepare_answer(&case.fetched);
        let mut checked = input.clone();
        checked.flags |= ALT;
        checked.answer = &prepare;
        seeds.push(("-check", checked.encode()));
    }
    for (_, bytes) in &seeds {
        let back = Input::decode(bytes, spec.headers.len());
        assert!(
            back.body == input.body && back.headers == input.headers,
            "seed {}: a part holds the separator byte 0xFF",
            case.name
        );
    }
    seeds
}

/// A `consume` answer (`data` a list) as a `prepare` answer (`data` its first voucher,
/// with a `count`).
fn prepare_answer(consume: &[u8]) -> Vec<u8> {
    let Ok(mut answer) = serde_json::from_slice::<serde_json::Value>(consume) else {
        return consume.to_vec();
    };
    if let Some(first) = answer["data"].get(0).cloned() {
        let mut first = first;
        first["count"] = serde_json::json!(2);
        answer["data"] = first;
    }
    serde_json::to_vec(&answer).unwrap_or_else(|_| consume.to_vec())
}
