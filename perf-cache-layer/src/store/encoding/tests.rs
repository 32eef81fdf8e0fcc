use super::*;

#[test]
fn round_trip() {
    let entry = CachedResponse::builder(
        StatusCode::OK,
        HeaderMap::new(),
        Bytes::from_static(b"x"),
        SystemTime::UNIX_EPOCH,
    )
    .build();
    println!("{:?}", entry.to_bytes());
    assert_eq!(
        CachedResponse::from_bytes(&entry.to_bytes()).unwrap(),
        entry
    );
}
