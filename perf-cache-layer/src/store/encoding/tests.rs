use super::*;

/// An entry using every field.
fn sample() -> CachedResponse {
    let mut headers = HeaderMap::new();
    headers.insert("cache-control", HeaderValue::from_static("max-age=60"));
    headers.append("x-a", HeaderValue::from_static("1"));
    headers.append("x-a", HeaderValue::from_bytes(b"\xff2").unwrap());
    let epoch = SystemTime::UNIX_EPOCH;
    CachedResponse::builder(
        StatusCode::OK,
        headers,
        Bytes::from_static(b"hello"),
        epoch + Duration::from_secs(1_700_000_001),
    )
    .request_time(epoch + Duration::from_millis(1_700_000_000_500))
    .lifetime(Duration::from_secs(60))
    .initial_age(Duration::from_secs(2))
    .stale_while_revalidate(Duration::from_secs(30))
    .stale_if_error(Duration::from_secs(300))
    .must_revalidate(true)
    .no_cache(false)
    .add_vary(
        HeaderName::from_static("accept-encoding"),
        Some("gzip".into()),
    )
    .add_vary(HeaderName::from_static("accept-language"), None)
    .add_tag("products")
    .add_tag("product-7")
    .keep(Duration::from_secs(600))
    .build()
}

/// `sample()` in format version 1. Changing these bytes is a format change: give it a new
/// version and keep decoding this one.
const GOLDEN_V1: &[u8] = &[
    b'P', b'C', b'L', b'e', 1, // magic, version
    200, 1, // status 200 (varint)
    3, // three header fields
    13, b'c', b'a', b'c', b'h', b'e', b'-', b'c', b'o', b'n', b't', b'r', b'o', b'l', //
    10, b'm', b'a', b'x', b'-', b'a', b'g', b'e', b'=', b'6', b'0', //
    3, b'x', b'-', b'a', 1, b'1', //
    3, b'x', b'-', b'a', 2, 0xff, b'2', //
    128, 226, 207, 170, 6, 128, 202, 181, 238, 1, // request time 1_700_000_000 s + 500 ms
    129, 226, 207, 170, 6, 0, // response time 1_700_000_001 s
    60, 0, // lifetime 60 s
    2, 0, // initial age 2 s
    30, 0, // stale-while-revalidate 30 s
    172, 2, 0, // stale-if-error 300 s
    1, // must-revalidate
    0, // no-cache
    216, 4, 0, // keep 600 s
    2, // two vary fields
    15, b'a', b'c', b'c', b'e', b'p', b't', b'-', b'e', b'n', b'c', b'o', b'd', b'i', b'n', b'g',
    1, 4, b'g', b'z', b'i', b'p', //
    15, b'a', b'c', b'c', b'e', b'p', b't', b'-', b'l', b'a', b'n', b'g', b'u', b'a', b'g', b'e',
    0, //
    2, // two tags
    8, b'p', b'r', b'o', b'd', b'u', b'c', b't', b's', //
    9, b'p', b'r', b'o', b'd', b'u', b'c', b't', b'-', b'7', //
    b'h', b'e', b'l', b'l', b'o', // body
];

#[test]
fn encoding_an_entry_gives_the_golden_bytes() {
    assert_eq!(sample().to_bytes(), GOLDEN_V1);
}

#[test]
fn the_golden_bytes_decode_to_the_entry() {
    let entry = CachedResponse::from_bytes(GOLDEN_V1).unwrap();
    assert_eq!(entry, sample());
    let values: Vec<_> = entry.headers().get_all("x-a").iter().collect();
    assert_eq!(values, ["1".as_bytes(), b"\xff2"]);
    assert_eq!(entry.body(), "hello");
    assert_eq!(entry.tags().collect::<Vec<_>>(), ["products", "product-7"]);
    let shared = Bytes::from_static(GOLDEN_V1);
    let entry = CachedResponse::from_shared(shared.clone()).unwrap();
    assert_eq!(entry, sample());
    assert_eq!(entry.body().as_ptr(), shared[shared.len() - 5..].as_ptr());
}

#[test]
fn an_empty_entry_round_trips() {
    let entry = CachedResponse::builder(
        StatusCode::NOT_FOUND,
        HeaderMap::new(),
        Bytes::new(),
        SystemTime::UNIX_EPOCH,
    )
    .build();
    assert_eq!(
        CachedResponse::from_bytes(&entry.to_bytes()).unwrap(),
        entry
    );
}

#[test]
fn foreign_and_future_bytes_are_errors() {
    let kind = |bytes: &[u8]| CachedResponse::from_bytes(bytes).unwrap_err().kind();
    assert_eq!(kind(b""), DecodeErrorKind::NotAnEntry);
    assert_eq!(kind(b"{\"status\":200}"), DecodeErrorKind::NotAnEntry);
    assert_eq!(kind(b"PCLe"), DecodeErrorKind::Corrupt);
    let mut future = GOLDEN_V1.to_vec();
    future[4] = 2;
    assert_eq!(kind(&future), DecodeErrorKind::UnsupportedVersion);
    future[4] = 0;
    assert_eq!(kind(&future), DecodeErrorKind::UnsupportedVersion);
}

#[test]
fn corrupt_bytes_are_errors_never_panics() {
    // Every truncation inside the metadata fails; the body is the rest, so cutting into it only
    // shortens the body.
    let meta_end = GOLDEN_V1.len() - 5;
    for len in 5..meta_end {
        assert_eq!(
            CachedResponse::from_bytes(&GOLDEN_V1[..len])
                .unwrap_err()
                .kind(),
            DecodeErrorKind::Corrupt,
            "truncated to {len}"
        );
    }
    // Every single-byte change decodes to something or fails cleanly.
    for at in 5..GOLDEN_V1.len() {
        for byte in [0x00, 0x7f, 0x80, 0xff] {
            let mut bytes = GOLDEN_V1.to_vec();
            bytes[at] = byte;
            let _ = CachedResponse::from_bytes(&bytes);
        }
    }
    // A header name that is not a token, a status out of range, a huge declared length.
    let mut bad_name = GOLDEN_V1.to_vec();
    bad_name[9] = b' ';
    assert_eq!(
        CachedResponse::from_bytes(&bad_name).unwrap_err().kind(),
        DecodeErrorKind::Corrupt
    );
    let mut bad_status = GOLDEN_V1.to_vec();
    bad_status[6] = 0;
    assert!(CachedResponse::from_bytes(&bad_status).is_err());
    let huge = [
        b'P', b'C', b'L', b'e', 1, 200, 1, 0xff, 0xff, 0xff, 0xff, 0x0f,
    ];
    assert!(CachedResponse::from_bytes(&huge).is_err());
}

#[test]
fn errors_say_what_to_do() {
    let err = CachedResponse::from_bytes(b"nope").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("bytes are not a cached response entry")
    );
}
