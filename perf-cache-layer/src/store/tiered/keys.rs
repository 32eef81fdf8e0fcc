//! Redis key names under `pc:{namespace}:`, and the digests in them.

use crate::store::CachedResponse;

/// The namespaced key names.
#[derive(Debug)]
pub(crate) struct Keys {
    prefix: String,
}

pub(crate) fn digest(s: &[u8]) -> String {
    let hash = blake3::hash(s);
    let mut out = String::with_capacity(32);
    for b in &hash.as_bytes()[..16] {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

impl Keys {
    pub(crate) fn new(namespace: &str) -> Self {
        Self {
            prefix: format!("pc:{namespace}:"),
        }
    }
    pub(crate) fn entry(&self, key: &str) -> String {
        format!("{}e:{}", self.prefix, digest(key.as_bytes()))
    }
    pub(crate) fn tombstone(&self, key: &str) -> String {
        format!("{}ts:{}", self.prefix, digest(key.as_bytes()))
    }
    pub(crate) fn tag(&self, tag: &str) -> String {
        format!("{}t:{}", self.prefix, digest(tag.as_bytes()))
    }
    pub(crate) fn soft(&self, tag: &str) -> String {
        format!("{}sp:{}", self.prefix, digest(tag.as_bytes()))
    }
    pub(crate) fn epoch(&self) -> String {
        format!("{}epoch", self.prefix)
    }
    pub(crate) fn lease(&self, key: &str) -> String {
        format!("{}lk:{}", self.prefix, digest(key.as_bytes()))
    }
    pub(crate) fn fill(&self, key: &str) -> String {
        format!("{}fill:{}", self.prefix, digest(key.as_bytes()))
    }
    pub(crate) fn seq(&self) -> String {
        format!("{}seq", self.prefix)
    }
    pub(crate) fn channel(&self) -> String {
        format!("{}bus", self.prefix)
    }
}

pub(crate) fn field(entry: &CachedResponse) -> String {
    let mut sel = Vec::new();
    for (name, value) in entry.vary() {
        sel.extend_from_slice(name.as_str().as_bytes());
        sel.push(0);
        sel.extend_from_slice(value.unwrap_or("\u{0}none").as_bytes());
        sel.push(0);
    }
    format!("v:{}", digest(&sel))
}
