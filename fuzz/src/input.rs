//! The fuzz input format: two bytes of choices, then the parts of a request separated by
//! `0xFF` (a byte valid UTF-8 never holds, so text parts never contain it), the body last.
//!
//! ```text
//! flags  skew  event 0xFF query 0xFF header₁ 0xFF … headerₖ 0xFF other headers 0xFF aux 0xFF answer 0xFF body…
//! ```
//!
//! - `flags`: bit 0 `GET` (else `POST`); bit 1 re-sign: the harness signs the request as
//!   the platform would with the development secret ([`crate::Spec::resign`]), so that
//!   `verify` passes its signature check and its later checks (replay window, claims) run
//!   too; bit 2 the fetch is of a scheduled order; bit 3 the alternative: Deliveroo's
//!   legacy signature when re-signing, Dianping's `check_code` against the stub platform.
//! - `skew`: the time of receipt, in minutes (signed) from the fixtures' time.
//! - `event`: the `{event}` path segment (empty: none); `query`: the query string (empty:
//!   none).
//! - `header₁ … headerₖ`: the values of the channel's own headers ([`crate::Spec::headers`]:
//!   signature, timestamp, …), in order; empty: absent.
//! - other headers: `Name: value` lines, each read with `normalize::parse_headers` (a line
//!   it refuses is left out).
//! - `aux`: notify-then-fetch channels: the fetched resource and the order id, one a line
//!   (used when `parse` gives no fetch); code channels: the claim as lines (store, code,
//!   count, request id).
//! - `answer`: what the platform's API answered (fetched order, redemption, check).
//! - `body`: everything after, `0xFF` bytes included.
//!
//! Fewer parts than that: the missing ones are empty. Seeds are written with
//! [`Input::encode`].

use bytes::Bytes;
use crossdock_channel::normalize::parse_headers;
use crossdock_channel::{
    CodeClaim, FetchRef, HeaderMap, HeaderName, HeaderValue, InboundRequest, Method,
};

use crate::{PUBLIC_URL, Spec};

/// The separator of the parts.
pub const SEP: u8 = 0xFF;

/// `flags` bit 0: the request is a `GET`.
pub const GET: u8 = 1;
/// `flags` bit 1: the harness signs the request with the development secret.
pub const RESIGN: u8 = 1 << 1;
/// `flags` bit 2: the fetch is of a scheduled order.
pub const SCHEDULED: u8 = 1 << 2;
/// `flags` bit 3: the alternative (see the module docs).
pub const ALT: u8 = 1 << 3;

/// A decoded fuzz input; the parts borrow from the input bytes.
#[derive(Debug, Clone, Default)]
pub struct Input<'a> {
    pub flags: u8,
    pub skew_minutes: i8,
    pub event: &'a [u8],
    pub query: &'a [u8],
    /// One per header of [`Spec::headers`].
    pub headers: Vec<&'a [u8]>,
    pub other_headers: &'a [u8],
    pub aux: &'a [u8],
    pub answer: &'a [u8],
    pub body: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads `data` for a channel with `own_headers` headers of its own.
    pub fn decode(data: &'a [u8], own_headers: usize) -> Self {
        let (flags, skew, rest) = match data {
            [] => (0, 0, &[][..]),
            [flags] => (*flags, 0, &[][..]),
            [flags, skew, rest @ ..] => (*flags, *skew, rest),
        };
        let mut parts = rest.splitn(own_headers + 6, |b| *b == SEP);
        let mut next = || parts.next().unwrap_or_default();
        let event = next();
        let query = next();
        let headers = (0..own_headers).map(|_| next()).collect();
        let other_headers = next();
        let aux = next();
        let answer = next();
        let body = next();
        Self {
            flags,
            skew_minutes: i8::from_ne_bytes([skew]),
            event,
            query,
            headers,
            other_headers,
            aux,
            answer,
            body,
        }
    }

    /// The bytes [`Input::decode`] reads back as this input (given parts free of [`SEP`],
    /// but for the body).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.flags, self.skew_minutes.to_ne_bytes()[0]];
        let parts = [self.event, self.query]
            .into_iter()
            .chain(self.headers.iter().copied())
            .chain([self.other_headers, self.aux, self.answer]);
        for part in parts {
            out.extend_from_slice(part);
            out.push(SEP);
        }
        out.extend_from_slice(self.body);
        out
    }

    pub fn resign(&self) -> bool {
        self.flags & RESIGN != 0
    }

    pub fn alt(&self) -> bool {
        self.flags & ALT != 0
    }

    /// The request the hub would hand the adapter: `POST` or `GET` to
    /// `{PUBLIC_URL}/webhooks/{channel}[/{event}]`, re-signed if the input asks.
    pub fn request(&self, spec: &Spec) -> InboundRequest {
        let method = if self.flags & GET != 0 {
            Method::GET
        } else {
            Method::POST
        };
        let event = text(self.event);
        let query = text(self.query);
        let mut headers = HeaderMap::new();
        for line in self.other_headers.split(|b| *b == b'\n') {
            if let Ok(parsed) = parse_headers(&String::from_utf8_lossy(line)) {
                headers.extend(parsed);
            }
        }
        for (name, value) in spec.headers.iter().zip(&self.headers) {
            if value.is_empty() {
                continue;
            }
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value),
            ) {
                headers.insert(name, value);
            }
        }
        let mut url = format!("{PUBLIC_URL}/webhooks/{}", spec.id);
        if let Some(event) = &event {
            url.push('/');
            url.push_str(event);
        }
        let mut request = InboundRequest {
            method,
            event,
            url,
            query,
            headers,
            body: Bytes::copy_from_slice(self.body),
            received_at: crate::received_at(self.skew_minutes),
        };
        if self.resign() {
            (spec.resign)(&mut request, self.alt());
        }
        request
    }

    /// The fetch reference from `aux`: the resource on its first line, the order id on
    /// its second (default: the resource's last path segment).
    pub fn fetch_ref(&self) -> FetchRef {
        let aux = String::from_utf8_lossy(self.aux);
        let mut lines = aux.lines();
        let resource = lines.next().unwrap_or_default();
        crate::fetch_ref(resource, lines.next(), self.flags & SCHEDULED != 0)
    }

    /// The code claim from `aux`: store, code, count, request id, one a line; a line
    /// missing (or a count that is no number) keeps [`crate::default_claim`]'s.
    pub fn claim(&self) -> CodeClaim {
        let mut claim = crate::default_claim();
        let aux = String::from_utf8_lossy(self.aux);
        let mut lines = aux.split('\n');
        if let Some(store) = lines.next() {
            claim.channel_store_ref = store.to_owned();
        }
        if let Some(code) = lines.next() {
            claim.code = code.to_owned();
        }
        if let Some(count) = lines.next().and_then(|c| c.parse().ok()) {
            claim.count = count;
        }
        if let Some(request_id) = lines.next() {
            claim.request_id = request_id.to_owned();
        }
        claim
    }
}

/// A part as text (invalid UTF-8 replaced, as a decoded path or query would hold none);
/// empty: none.
fn text(bytes: &[u8]) -> Option<String> {
    (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned())
}
