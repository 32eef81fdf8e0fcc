use super::*;

fn statement(sql: &str, end: Moment, elapsed_ms: u64) -> Statement {
    Statement {
        fingerprint: Arc::new(Fingerprint::of(sql)),
        elapsed: Duration::from_millis(elapsed_ms),
        end,
        rows: 1,
        rows_returned: 1,
        system: "sqlite",
    }
}

fn collector() -> Collector {
    Collector::new("/r".into(), None, None)
}

#[test]
fn a_loop_is_sequential_and_flagged_by_the_strict_profile_only_when_short() {
    let c = collector();
    let t0 = crate::db::now();
    for i in 0..6u64 {
        // Each starts 10 ms after the previous ended.
        c.add(statement(
            "SELECT * FROM posts WHERE author_id = $1",
            t0 + Duration::from_millis(20 * i + 10),
            5,
        ));
    }
    let strict = c.summary(&NPlusOneProfile::strict()).unwrap();
    assert_eq!(strict.queries, 6);
    assert_eq!(strict.fingerprints[0].sequential, 6);
    assert_eq!(strict.n_plus_one.len(), 1);
    // 6 × 5 ms = 30 ms: under the production floor of 50 ms.
    assert!(
        c.summary(&NPlusOneProfile::production())
            .unwrap()
            .n_plus_one
            .is_empty()
    );
    assert_eq!(
        c.summary(&NPlusOneProfile::new(5, Duration::from_millis(30)))
            .unwrap()
            .n_plus_one
            .len(),
        1
    );
}

#[test]
fn overlapping_statements_are_fan_out() {
    let c = collector();
    let t0 = crate::db::now() + Duration::from_secs(1);
    // Four statements of 50 ms ending within 3 ms of each other: they ran at the same time.
    for i in 0..4u64 {
        c.add(statement(
            "SELECT pg_sleep(0.05)",
            t0 + Duration::from_millis(i),
            50,
        ));
    }
    let s = c.summary(&NPlusOneProfile::strict()).unwrap();
    assert_eq!(s.fingerprints[0].count, 4);
    assert_eq!(s.fingerprints[0].sequential, 1);
    assert!(s.n_plus_one.is_empty());
}

#[test]
fn writes_are_never_n_plus_one_and_fingerprints_are_capped() {
    let c = collector();
    let t0 = crate::db::now();
    for i in 0..3u64 {
        c.add(statement(
            "UPDATE t SET a = 1",
            t0 + Duration::from_millis(10 * i + 10),
            1,
        ));
    }
    assert!(
        c.summary(&NPlusOneProfile::strict())
            .unwrap()
            .n_plus_one
            .is_empty()
    );
    for i in 0..(MAX_FINGERPRINTS as u64 + 5) {
        c.add(statement(&format!("SELECT c{i} FROM t"), t0, 0));
    }
    let s = c.summary(&NPlusOneProfile::strict()).unwrap();
    assert_eq!(s.fingerprints.len(), MAX_FINGERPRINTS);
    assert_eq!(s.untracked, 6);
    assert_eq!(s.queries, 3 + MAX_FINGERPRINTS as u32 + 5);
}

#[test]
fn statements_are_listed_in_order_with_wall_clock_starts_up_to_the_bound() {
    let c = collector();
    assert!(c.summary(&NPlusOneProfile::strict()).is_none());
    let t0 = crate::db::now() + Duration::from_secs(1);
    // 10 ms apart, each 4 ms long.
    for i in 0..(MAX_STATEMENTS as u64 + 3) {
        c.add(statement(
            "SELECT * FROM t WHERE id = ?",
            t0 + Duration::from_millis(10 * i),
            4,
        ));
    }
    let s = c.summary(&NPlusOneProfile::strict()).unwrap();
    assert_eq!(s.statements.len(), MAX_STATEMENTS);
    assert_eq!(s.statements_dropped, 3);
    let (first, second) = (&s.statements[0], &s.statements[1]);
    assert_eq!(first.duration, Duration::from_millis(4));
    assert_eq!(first.rows_returned, 1);
    assert_eq!(
        second.start.duration_since(first.start).unwrap(),
        Duration::from_millis(10)
    );
    assert_eq!(s.system, "sqlite");
    // Placed on the wall clock when the summary is taken: the statements' ends are in the
    // future of that reading here (they end up to a second ahead of `now`), never before it.
    assert!(first.end() > SystemTime::now());
}
