//! `prometheus::install` sets up the one global recorder of the process: this file is its own
//! test binary, so it owns that recorder (and `foreign_recorder.rs` tests the other case).

use std::time::Duration;

use perf_middleware::prometheus::{self, Exporter, InstallErrorKind};

#[test]
fn install_again_returns_the_handle_and_refuses_other_settings() {
    let first = prometheus::install().expect("the first install succeeds");
    let again = prometheus::install().expect("the same settings again are fine");
    metrics::counter!("installed_once").increment(1);
    assert!(first.render().contains("installed_once_total 1"));
    assert!(
        again.render().contains("installed_once_total 1"),
        "one recorder"
    );

    let other = Exporter::new().duration_buckets(&[0.1, 1.0]);
    let err = other
        .clone()
        .install()
        .expect_err("different settings are refused");
    assert_eq!(err.kind(), InstallErrorKind::AlreadyInstalled);
    assert!(
        err.to_string()
            .contains("different settings is already installed"),
        "{err}"
    );
    assert_eq!(
        err.into_exporter(),
        other,
        "the rejected settings come back"
    );

    let err = Exporter::new()
        .upkeep_interval(Duration::from_secs(1))
        .install()
        .unwrap_err();
    assert_eq!(err.kind(), InstallErrorKind::AlreadyInstalled);
}
