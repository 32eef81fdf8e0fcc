//! In-process overhead of `PerfLayer`: bare service vs layer with metrics off vs full layer.
#![allow(missing_docs)]

fn main() {}
