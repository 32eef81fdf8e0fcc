//! `prometheus::install` when another recorder is already the global one: its own test binary,
//! since a process has one global recorder.

use perf_middleware::prometheus::{self, Exporter, InstallErrorKind};

#[test]
fn install_refuses_when_another_recorder_is_global() {
    metrics::set_global_recorder(metrics::NoopRecorder).expect("the first recorder");
    let err = prometheus::install().expect_err("the global recorder is taken");
    assert_eq!(err.kind(), InstallErrorKind::OtherRecorder);
    assert!(err.to_string().contains("`Exporter::configure`"), "{err}");
    assert_eq!(err.into_exporter(), Exporter::new());
}
