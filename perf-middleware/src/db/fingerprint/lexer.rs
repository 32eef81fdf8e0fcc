//! The normalizer: one linear pass of a small lexer over the statement (see the
//! [fingerprint module docs](super)).

use foldhash::fast::FixedState;
use std::hash::BuildHasher;

use super::{Fingerprint, MAX_INPUT, MAX_TEXT, Operation};

/// What the last emitted token was, for spacing and folding.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Start,
    Open,
    Dot,
    Other,
}

/// The normalizer's output buffer: spacing and the two folds.
struct Out {
    text: String,
    last: Last,
}

impl Out {
    fn token(&mut self, tok: &str, work: &mut usize) {
        *work += 1;
        let glue = matches!(tok, ")" | "," | "." | ";");
        if !glue && !matches!(self.last, Last::Start | Last::Open | Last::Dot) {
            self.text.push(' ');
        }
        if tok == "?" && self.text.ends_with("?, ") {
            // `?, ?` → `?`
            self.text.truncate(self.text.len() - 2);
            self.last = Last::Other;
            return;
        }
        self.text.push_str(tok);
        self.last = match tok {
            "(" => Last::Open,
            "." => Last::Dot,
            _ => Last::Other,
        };
        if tok == ")" && self.text.ends_with("(?), (?)") {
            // `(?), (?)` → `(?)`
            self.text.truncate(self.text.len() - 5);
        }
    }
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

fn is_operator(b: u8) -> bool {
    matches!(
        b,
        b'<' | b'>'
            | b'='
            | b'!'
            | b'|'
            | b'&'
            | b'+'
            | b'-'
            | b'*'
            | b'/'
            | b'%'
            | b'^'
            | b'~'
            | b'#'
    )
}

/// End of the run of bytes from `i` matching `f`.
fn run(s: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while i < s.len() && f(s[i]) {
        i += 1;
    }
    i
}

/// Normalizes `sql`, adding the bytes and tokens it handled to `work` (for linearity tests).
pub(crate) fn normalize(sql: &str, work: &mut usize) -> Fingerprint {
    let mut end = sql.len().min(MAX_INPUT);
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    let input_truncated = end < sql.len();
    let s = &sql.as_bytes()[..end];
    let mut out = Out {
        text: String::with_capacity(s.len().min(MAX_TEXT * 4)),
        last: Last::Start,
    };
    let mut operation = None;
    let mut i = 0;
    while i < s.len() {
        let start = i;
        i = lex_one(sql, s, i, &mut out, &mut operation, work);
        *work += i - start;
    }
    while out.text.ends_with(';') {
        out.text.pop();
    }
    let hash = FixedState::with_seed(0).hash_one(&out.text);
    let mut text = out.text;
    let long = text.len() > MAX_TEXT;
    if long {
        let mut cut = MAX_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    Fingerprint {
        hash,
        text: text.into_boxed_str(),
        operation: operation.unwrap_or(Operation::Other),
        truncated: input_truncated || long,
    }
}

/// Lexes the token at `i`, emits its normalized form and returns the index after it.
fn lex_one(
    sql: &str,
    s: &[u8],
    i: usize,
    out: &mut Out,
    operation: &mut Option<Operation>,
    work: &mut usize,
) -> usize {
    let b = s[i];
    let next = s.get(i + 1).copied();
    match b {
        _ if b.is_ascii_whitespace() => run(s, i, |c| c.is_ascii_whitespace()),
        b'-' if next == Some(b'-') => run(s, i, |c| c != b'\n'),
        b'/' if next == Some(b'*') => skip_block_comment(s, i),
        b'\'' => {
            out.token("?", work);
            skip_string(s, i)
        }
        b'"' | b'`' => {
            let close = s[i + 1..]
                .iter()
                .position(|&c| c == b)
                .map_or(s.len(), |p| i + 2 + p);
            out.token(&sql[i..close], work);
            close
        }
        b'$' if next.is_some_and(|c| c.is_ascii_digit()) => {
            out.token("?", work);
            run(s, i + 1, |c| c.is_ascii_digit())
        }
        b'$' => match dollar_quote(sql, s, i) {
            Some(end) => {
                out.token("?", work);
                end
            }
            None => {
                out.token("$", work);
                i + 1
            }
        },
        b'?' => {
            out.token("?", work);
            run(s, i + 1, |c| c.is_ascii_digit())
        }
        b':' | b'@' if next.is_some_and(is_ident_start) && (i == 0 || s[i - 1] != b) => {
            out.token("?", work);
            run(s, i + 1, is_ident)
        }
        b'0'..=b'9' => {
            out.token("?", work);
            skip_number(s, i)
        }
        b'.' if next.is_some_and(|c| c.is_ascii_digit()) => {
            out.token("?", work);
            skip_number(s, i)
        }
        _ if is_ident_start(b) => lex_word(sql, s, i, out, operation, work),
        b'(' | b')' | b',' | b';' | b'.' => {
            out.token(&sql[i..=i], work);
            i + 1
        }
        _ if is_operator(b) || b == b':' || b == b'@' => {
            let end = operator_end(s, i);
            out.token(&sql[i..end], work);
            end
        }
        _ => {
            let mut end = i + 1;
            while !sql.is_char_boundary(end) {
                end += 1;
            }
            out.token(&sql[i..end], work);
            end
        }
    }
}

/// An identifier or keyword at `i` (lowercased), or a prefixed string (`E'…'`, `X'…'`).
fn lex_word(
    sql: &str,
    s: &[u8],
    i: usize,
    out: &mut Out,
    operation: &mut Option<Operation>,
    work: &mut usize,
) -> usize {
    let end = run(s, i, is_ident);
    let word = sql[i..end].to_ascii_lowercase();
    if s.get(end) == Some(&b'\'') && matches!(word.as_str(), "e" | "n" | "x" | "b" | "u&") {
        out.token("?", work);
        return skip_string(s, end);
    }
    if operation.is_none() {
        *operation = Some(Operation::from_keyword(&word));
    }
    match word.as_str() {
        "true" | "false" => out.token("?", work),
        _ => out.token(&word, work),
    }
    end
}

/// The end of the operator run at `i` (`<=`, `::`, `||`), stopping before a comment.
fn operator_end(s: &[u8], i: usize) -> usize {
    let mut end = i + 1;
    while end < s.len()
        && (is_operator(s[end]) || s[end] == b':')
        && !(s[end] == b'-' && s.get(end + 1) == Some(&b'-'))
        && !(s[end] == b'/' && s.get(end + 1) == Some(&b'*'))
    {
        end += 1;
    }
    end
}

/// A `/* … */` comment, nested as PostgreSQL nests them; an unterminated one runs to the end.
fn skip_block_comment(s: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < s.len() {
        if s[i] == b'/' && s.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if s[i] == b'*' && s.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// A `'…'` string at `i` (`''` is an escaped quote); an unterminated one runs to the end.
fn skip_string(s: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < s.len() {
        if s[i] == b'\'' {
            if s.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    i
}

/// A number at `i`: digits, `.`, an exponent, or `0x…` hex.
fn skip_number(s: &[u8], i: usize) -> usize {
    if s[i] == b'0' && matches!(s.get(i + 1), Some(b'x' | b'X')) {
        return run(s, i + 2, |c| c.is_ascii_hexdigit());
    }
    let mut end = run(s, i, |c| c.is_ascii_digit() || c == b'.');
    if matches!(s.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(s.get(end + 1), Some(b'+' | b'-')));
        if s.get(end + 1 + sign).is_some_and(|c| c.is_ascii_digit()) {
            end = run(s, end + 1 + sign, |c| c.is_ascii_digit());
        }
    }
    end
}

/// A dollar-quoted string `$tag$ … $tag$` at `i`: its end, or `None` when `$` opens none.
fn dollar_quote(sql: &str, s: &[u8], i: usize) -> Option<usize> {
    let tag_end = run(s, i + 1, |c| is_ident(c) && c != b'$');
    if s.get(tag_end) != Some(&b'$') {
        return None;
    }
    let tag = &sql[i..=tag_end];
    let body = tag_end + 1;
    Some(
        sql[body..]
            .find(tag)
            .map_or(s.len(), |p| body + p + tag.len()),
    )
}
