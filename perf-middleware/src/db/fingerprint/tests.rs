use proptest::prelude::*;

use super::*;

fn text(sql: &str) -> String {
    Fingerprint::of(sql).text().to_owned()
}

fn work(sql: &str) -> usize {
    let mut work = 0;
    normalize(sql, &mut work);
    work
}

#[test]
fn literals_and_placeholders_become_question_marks() {
    let expected = "select * from users where id = ? and name = ?";
    for sql in [
        "SELECT * FROM users WHERE id = $1 AND name = $2",
        "select *  from users\n where id = ? and name = ?",
        "SELECT * FROM users WHERE id = ?1 AND name = ?2",
        "SELECT * FROM users WHERE id = :id AND name = @name",
        "SELECT * FROM users WHERE id = 42 AND name = 'O''Brien'",
        "SELECT * FROM users WHERE id = 4.2e3 AND name = E'x\\n'",
        "SELECT * FROM users WHERE id = 0xFF AND name = $tag$it's$tag$",
        "/* hi */ SELECT * FROM users -- trailing\n WHERE id = 1 AND name = 'x';",
    ] {
        assert_eq!(text(sql), expected, "{sql}");
    }
}

#[test]
fn lists_and_tuples_fold() {
    assert_eq!(
        text("SELECT id FROM t WHERE id IN ($1, $2, $3)"),
        "select id from t where id in (?)"
    );
    assert_eq!(
        text("select id from t where id in (1,2)"),
        "select id from t where id in (?)"
    );
    assert_eq!(
        text("INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6)"),
        "insert into t (a, b) values (?)"
    );
    assert_eq!(
        text("INSERT INTO t (a) VALUES (1)"),
        text("insert into t (a) values (1),(2)")
    );
}

#[test]
fn identifiers_casts_and_quotes_survive() {
    assert_eq!(
        text(r#"SELECT "Name", t.x::text FROM "T" t WHERE a <= b"#),
        r#"select "Name", t.x :: text from "T" t where a <= b"#
    );
    assert_ne!(text("SELECT a FROM t"), text("SELECT b FROM t"));
}

#[test]
fn operation_comes_from_the_first_keyword() {
    assert_eq!(Fingerprint::of("  select 1").operation(), Operation::Select);
    assert_eq!(
        Fingerprint::of("WITH x AS (SELECT 1) SELECT * FROM x").operation(),
        Operation::With
    );
    assert_eq!(
        Fingerprint::of("/* c */ UPDATE t SET a = 1").operation(),
        Operation::Update
    );
    assert_eq!(Fingerprint::of("BEGIN").operation(), Operation::Other);
    assert_eq!(Fingerprint::of("").operation(), Operation::Other);
}

#[test]
fn hostile_input_is_bounded_and_flat() {
    let nested = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let fp = Fingerprint::of(&nested);
    assert!(fp.truncated(), "the normalized text is cut for logs");
    assert!(fp.text().len() <= MAX_TEXT + '…'.len_utf8());

    let huge = format!("SELECT {}", "x, ".repeat(400_000));
    assert!(huge.len() > 1 << 20);
    let fp = Fingerprint::of(&huge);
    assert!(fp.truncated());
    assert!(
        work(&huge) <= 2 * MAX_INPUT,
        "only the first MAX_INPUT bytes are looked at"
    );
}

#[test]
fn cache_is_bounded_and_shares_entries() {
    let cache = Fingerprints::new(3);
    let a = cache.get("SELECT 1");
    assert!(Arc::ptr_eq(&a, &cache.get("SELECT 1")));
    for i in 0..10 {
        cache.get(&format!("SELECT {i} FROM t{i}"));
        assert!(cache.len() <= 3);
    }
}

/// Inputs that stress each fold and scanner, repeated `n` times.
fn hostile(unit: &str, n: usize) -> String {
    unit.repeat(n)
}

#[test]
fn work_is_linear_in_the_input_size() {
    for unit in [
        "(",
        ")",
        "?, ",
        "(?), ",
        "'",
        "''",
        "$a$",
        "$",
        "/*",
        "*/",
        "--\n",
        "1.",
        "x",
        " ",
        ":a",
        "::",
        "\"",
        "(1, 2), ",
        "é",
        "$1",
        "e'",
        "in (1, 2, 3) ",
    ] {
        let small = work(&hostile(unit, 1_000));
        let big = work(&hostile(unit, 8_000));
        // Eight times the input, at most eight times the work (plus slack for the fixed part).
        assert!(big <= 8 * small + 64, "{unit:?}: {small} -> {big}");
        let len = hostile(unit, 8_000).len().min(MAX_INPUT);
        assert!(big <= 4 * len + 64, "{unit:?}: {big} for {len} bytes");
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let sql = String::from_utf8_lossy(&bytes);
        let mut work = 0;
        let fp = normalize(&sql, &mut work);
        prop_assert!(work <= 4 * sql.len() + 1);
        prop_assert!(fp.text().len() <= MAX_TEXT + 3);
    }

    #[test]
    fn arbitrary_text_is_linear(s in "[ -~\n]{0,512}") {
        prop_assert!(work(&s) <= 4 * s.len() + 1);
    }
}
