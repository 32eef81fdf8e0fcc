//! Property tests of the statement fingerprints through the public API: hostile input never
//! panics, and literal and placeholder variants of one statement share a fingerprint. (The
//! linearity checks count the lexer's work and live next to it, in `src/db/fingerprint/tests.rs`.)

use perf_middleware::db::fingerprint::{Fingerprint, Fingerprints, MAX_TEXT};
use proptest::prelude::*;

/// SQL-ish fragments, to reach the lexer's corners more often than uniform bytes do.
fn fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "SELECT", " ", "\n", "(", ")", ",", "'", "''", "\"", "`", "$1", "$", "$a$", "?", "?2",
        ":x", "::", "@p", "@@", "--", "/*", "*/", "0x1F", "1.5e-3", ".5", "E'", "IN", "VALUES",
        ";", "é", "\u{0}", "<=", "-", "/",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let sql = String::from_utf8_lossy(&bytes);
        let fp = Fingerprint::of(&sql);
        prop_assert!(fp.text().len() <= MAX_TEXT + '…'.len_utf8());
    }

    #[test]
    fn sql_fragment_soup_never_panics(parts in prop::collection::vec(fragment(), 0..400)) {
        let sql = parts.concat();
        let cache = Fingerprints::new(8);
        let a = cache.get(&sql);
        prop_assert_eq!(a.hash(), Fingerprint::of(&sql).hash(), "cached and fresh agree");
    }

    #[test]
    fn literal_and_placeholder_variants_share_a_fingerprint(
        id in any::<u64>(),
        name in "[a-zA-Z' ]{0,20}",
        n in 1usize..20,
        rows in 1usize..10,
        style in 0usize..5,
    ) {
        let p = ["$1", "?", "?1", ":id", "@id"][style];
        let quoted = name.replace('\'', "''");
        let list = (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
        let a = Fingerprint::of(&format!(
            "SELECT * FROM users WHERE id = {id} AND name = '{quoted}' AND g IN ({list}) -- by id"
        ));
        let b = Fingerprint::of(&format!(
            "select *\n  from users where id = {p} and name = {p} /* x */ and g in ({p})"
        ));
        prop_assert_eq!(a.hash(), b.hash());
        prop_assert_eq!(a.text(), b.text());

        let tuples = vec![format!("({p}, {p})"); rows].join(", ");
        let c = Fingerprint::of(&format!("INSERT INTO t (a, b) VALUES {tuples}"));
        let d = Fingerprint::of("INSERT INTO t (a, b) VALUES (1, 'x')");
        prop_assert_eq!(c.hash(), d.hash());
    }
}

#[test]
fn a_mebibyte_and_deep_nesting_are_fine() {
    let huge = format!("SELECT * FROM t WHERE a IN ({})", "1, ".repeat(400_000));
    assert!(huge.len() > 1 << 20);
    assert!(Fingerprint::of(&huge).truncated());
    let deep = format!("SELECT {}x{}", "(".repeat(10_000), ")".repeat(10_000));
    let fp = Fingerprint::of(&deep);
    assert!(fp.text().starts_with("select ((((("));
}
