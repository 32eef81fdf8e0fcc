//! The byte encoding of a [`CachedResponse`], for stores that keep entries outside the process.
//! The format is documented in the `store` module docs.

use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use super::CachedResponse;
use crate::rfc::policy::Freshness;

/// The first bytes of every encoded entry.
const MAGIC: [u8; 4] = *b"PCLe";
/// The format version written by this release.
const VERSION: u8 = 1;

/// Version 1 of the encoded metadata (everything but the body).
#[derive(Serialize, Deserialize)]
struct MetaV1<'a> {
    status: u16,
    #[serde(borrow)]
    headers: Vec<(&'a str, &'a [u8])>,
    request_time: Duration,
    response_time: Duration,
    lifetime: Duration,
    initial_age: Duration,
    stale_while_revalidate: Duration,
    stale_if_error: Duration,
    must_revalidate: bool,
    no_cache: bool,
    keep: Duration,
    #[serde(borrow)]
    vary: Vec<(&'a str, Option<&'a str>)>,
    #[serde(borrow)]
    tags: Vec<&'a str>,
}

fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()
}

impl CachedResponse {
    /// The entry in the versioned byte encoding: magic `PCLe`, version 1, postcard metadata,
    /// raw body (the fields are listed in the [`store`](crate::store) module docs).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use bytes::Bytes;
    /// use http::{HeaderMap, StatusCode};
    /// use perf_cache_layer::CachedResponse;
    ///
    /// let entry = CachedResponse::builder(StatusCode::OK, HeaderMap::new(), Bytes::from("hi"), SystemTime::now())
    ///     .lifetime(Duration::from_secs(60))
    ///     .add_tag("greetings")
    ///     .build();
    /// let bytes = entry.to_bytes();
    /// assert!(bytes.starts_with(b"PCLe\x01"));
    /// assert_eq!(CachedResponse::from_bytes(&bytes).unwrap(), entry);
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let f = &self.freshness;
        let meta = MetaV1 {
            status: self.status.as_u16(),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_bytes()))
                .collect(),
            request_time: since_epoch(self.request_time),
            response_time: since_epoch(f.response_time),
            lifetime: f.lifetime,
            initial_age: f.initial_age,
            stale_while_revalidate: f.stale_while_revalidate,
            stale_if_error: f.stale_if_error,
            must_revalidate: f.forbids_stale,
            no_cache: f.no_cache,
            keep: self.keep,
            vary: self
                .vary
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_deref()))
                .collect(),
            tags: self.tags.iter().map(|t| &**t).collect(),
        };
        let mut out = Vec::with_capacity(self.weight());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        // Writing into a `Vec` cannot fail, and every field type is supported by postcard.
        let mut out = postcard::to_extend(&meta, out).unwrap_or_else(|_| {
            unreachable!("postcard encodes these field types into a Vec without error")
        });
        out.extend_from_slice(&self.body);
        out
    }

    /// Reads an entry written by [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    ///
    /// [`DecodeError`] when the bytes are not an entry (no magic), come from an unknown format
    /// version, or are truncated or corrupt. It never panics on any input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(bytes, Bytes::copy_from_slice)
    }

    /// [`from_bytes`](Self::from_bytes) from shared bytes: the body is a slice of `bytes`, not a
    /// copy (for stores whose client hands out `Bytes`).
    ///
    /// # Errors
    ///
    /// As [`from_bytes`](Self::from_bytes).
    pub fn from_shared(bytes: Bytes) -> Result<Self, DecodeError> {
        Self::decode(&bytes, |body| bytes.slice_ref(body))
    }

    fn decode(bytes: &[u8], body_of: impl FnOnce(&[u8]) -> Bytes) -> Result<Self, DecodeError> {
        let rest = bytes
            .strip_prefix(&MAGIC)
            .ok_or(DecodeError(DecodeErrorKind::NotAnEntry))?;
        let (&version, rest) = rest
            .split_first()
            .ok_or(DecodeError(DecodeErrorKind::Corrupt))?;
        if version != VERSION {
            return Err(DecodeError(DecodeErrorKind::UnsupportedVersion));
        }
        let corrupt = || DecodeError(DecodeErrorKind::Corrupt);
        let (meta, body) = postcard::take_from_bytes::<MetaV1<'_>>(rest).map_err(|_| corrupt())?;
        let status = StatusCode::from_u16(meta.status).map_err(|_| corrupt())?;
        let mut headers = HeaderMap::with_capacity(meta.headers.len());
        for (name, value) in meta.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| corrupt())?;
            let value = HeaderValue::from_bytes(value).map_err(|_| corrupt())?;
            headers.append(name, value);
        }
        let mut vary = Vec::with_capacity(meta.vary.len());
        for (name, value) in meta.vary {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| corrupt())?;
            vary.push((name, value.map(str::to_owned)));
        }
        let time = |d: Duration| SystemTime::UNIX_EPOCH.checked_add(d).ok_or_else(corrupt);
        Ok(Self {
            status,
            headers,
            body: body_of(body),
            request_time: time(meta.request_time)?,
            freshness: Freshness {
                lifetime: meta.lifetime,
                initial_age: meta.initial_age,
                response_time: time(meta.response_time)?,
                stale_while_revalidate: meta.stale_while_revalidate,
                stale_if_error: meta.stale_if_error,
                forbids_stale: meta.must_revalidate,
                no_cache: meta.no_cache,
            },
            vary,
            tags: meta.tags.into_iter().map(Box::from).collect(),
            keep: meta.keep,
        })
    }
}

/// Bytes that [`CachedResponse::from_bytes`] cannot read. See [`kind`](Self::kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(DecodeErrorKind);

impl DecodeError {
    /// Why decoding failed.
    pub fn kind(&self) -> DecodeErrorKind {
        self.0
    }
}

/// Why [`CachedResponse::from_bytes`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The bytes do not start with the entry magic: not written by this crate.
    NotAnEntry,
    /// An entry in a format version this release does not read (written by a newer release).
    UnsupportedVersion,
    /// Truncated or corrupt bytes.
    Corrupt,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            DecodeErrorKind::NotAnEntry => {
                "bytes are not a cached response entry: store only what `to_bytes` wrote"
            }
            DecodeErrorKind::UnsupportedVersion => {
                "cached response entry has an unknown format version: treat it as a miss, or upgrade"
            }
            DecodeErrorKind::Corrupt => {
                "cached response entry is truncated or corrupt: remove it from the store"
            }
        })
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests;
