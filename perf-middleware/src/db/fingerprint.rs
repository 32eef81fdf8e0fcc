//! Statement fingerprints: normalized text made by one linear pass of a small lexer, kept in a
//! bounded cache keyed by a hash of the raw text.
//!
//! Normalization: comments dropped, whitespace collapsed, unquoted identifiers and keywords
//! lowercased, every literal (strings, `E'…'`, dollar-quoted, numbers, hex, `true`/`false`) and
//! every placeholder style (`?`, `?1`, `$1`, `:name`, `@name`) written `?`, a comma list of `?`
//! folded to one (`IN (?, ?, ?)` → `in (?)`), repeated `(?)` tuples folded to one
//! (`VALUES (?, ?), (?, ?)` → `values (?)`). Bound values are never seen: sqlx reports the
//! statement text only.
//!
//! Cost: each input byte is looked at a bounded number of times and the folds only shorten the
//! output, so the work is linear in the input; input past [`MAX_INPUT`] bytes is not normalized
//! (the fingerprint is marked truncated). There is no recursion, so nesting depth costs nothing.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use foldhash::fast::FixedState;

pub(crate) use lexer::normalize;

/// Input bytes normalized; the rest of a longer statement is ignored (and the fingerprint marked
/// [`truncated`](Fingerprint::truncated)).
pub const MAX_INPUT: usize = 64 * 1024;

/// Normalized text kept for logs, in bytes (cut at a character boundary, `…` appended).
pub const MAX_TEXT: usize = 1024;

/// Distinct statement texts the cache holds before it starts over.
pub const DEFAULT_CACHE_CAPACITY: usize = 2048;

/// The statement kind, from the first keyword: the `db.operation.name` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `SELECT`.
    Select,
    /// `WITH …` (a common table expression, usually read-only).
    With,
    /// `INSERT`.
    Insert,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// Any other statement (`BEGIN`, `COMMIT`, `SET`, DDL, …).
    Other,
}

impl Operation {
    /// The `db.operation.name` value (`SELECT`, …, `OTHER`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Select => "SELECT",
            Operation::With => "WITH",
            Operation::Insert => "INSERT",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Other => "OTHER",
        }
    }

    /// Whether the statement reads (`SELECT`, `WITH`): the ones N+1 detection looks at.
    pub fn is_read(self) -> bool {
        matches!(self, Operation::Select | Operation::With)
    }

    pub(crate) const ALL: [Operation; 6] = [
        Operation::Select,
        Operation::With,
        Operation::Insert,
        Operation::Update,
        Operation::Delete,
        Operation::Other,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    fn from_keyword(word: &str) -> Self {
        match word {
            "select" => Operation::Select,
            "with" => Operation::With,
            "insert" => Operation::Insert,
            "update" => Operation::Update,
            "delete" => Operation::Delete,
            _ => Operation::Other,
        }
    }
}

/// The fingerprint of a statement: its normalized text and a 64-bit hash of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    hash: u64,
    text: Box<str>,
    operation: Operation,
    truncated: bool,
}

impl Fingerprint {
    /// Normalizes `sql` (no cache). See the [module docs](self).
    pub fn of(sql: &str) -> Self {
        let mut work = 0;
        normalize(sql, &mut work)
    }

    /// A hash of the whole normalized text: equal for statements that differ only in literals,
    /// placeholders, list lengths, comments, whitespace or keyword case.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The normalized text, at most [`MAX_TEXT`] bytes.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The statement kind.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// Whether the statement was longer than [`MAX_INPUT`] or its normalized text longer than
    /// [`MAX_TEXT`].
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl fmt::Display for Fingerprint {
    /// The hash as 16 hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.hash)
    }
}

/// A bounded cache of fingerprints keyed by a hash of the raw statement text. When it holds
/// `capacity` texts it starts over (a loop over ever-new texts costs a normalization each, never
/// memory).
pub struct Fingerprints {
    map: Mutex<HashMap<u64, Arc<Fingerprint>, FixedState>>,
    capacity: usize,
}

impl fmt::Debug for Fingerprints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fingerprints")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for Fingerprints {
    fn default() -> Self {
        Self::new(DEFAULT_CACHE_CAPACITY)
    }
}

impl Fingerprints {
    /// A cache holding at most `capacity` distinct texts (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::with_hasher(FixedState::with_seed(0))),
            capacity: capacity.max(1),
        }
    }

    /// The fingerprint of `sql`, normalized on the first sight of this exact text.
    pub fn get(&self, sql: &str) -> Arc<Fingerprint> {
        let key = FixedState::with_seed(0).hash_one(sql);
        if let Some(fp) = self.lock().get(&key) {
            return fp.clone();
        }
        let fp = Arc::new(Fingerprint::of(sql));
        let mut map = self.lock();
        if map.len() >= self.capacity {
            map.clear();
        }
        map.insert(key, fp.clone());
        fp
    }

    /// Texts held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Fingerprint>, FixedState>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

mod lexer;
#[cfg(test)]
mod tests;
