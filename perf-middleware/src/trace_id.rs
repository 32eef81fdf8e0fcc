//! The trace id hand-off: a tracing layer (such as `perf-otel`) puts the request's W3C trace id
//! into the request extensions, and every other layer of the family (the slow-request log, the
//! budget log, the `/perf` page) reads it from there.

/// The W3C trace id of the request, inserted by a tracing layer that runs outside the layers that
/// read it.
///
/// ```
/// use perf_middleware::TraceId;
///
/// let id = TraceId::from_bytes([0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36]);
/// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
///
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(id);
/// assert_eq!(TraceId::from_extensions(req.extensions()), Some(id));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId([u8; 16]);

impl TraceId {
    /// The trace id made of these 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes.
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// The trace id a tracing layer put into these extensions, if any.
    pub fn from_extensions(ext: &http::Extensions) -> Option<Self> {
        ext.get::<Self>().copied()
    }
}

impl std::fmt::Display for TraceId {
    /// 32 lowercase hex digits, as in `traceparent`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}
