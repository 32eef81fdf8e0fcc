//! Test helpers shared by the tower-perf crates. **Never published** (`publish = false`): it
//! is a dev-dependency only, so its API may change with any commit.
//!
//! | helper | what it does |
//! |---|---|
//! | [`serve`] | serves an axum `Router` (or any service of axum's request and response types) on `127.0.0.1:0` and returns the address |
//! | [`get_text`], [`exchange`] | one request through a hyper client, the whole body collected into a [`Reply`] |
//! | [`send_raw`] | writes raw request bytes and hands back the open connection, for client-disconnect tests |
//! | [`Events`] | a `tracing` layer that captures the events of one target with their fields |
//! | [`TestRecorder`] | a local `metrics` recorder whose [`snapshot`](TestRecorder::snapshot)s keep running totals |
//! | [`Collector`] | what a hook saw, in order, with an async wait for the n-th item (no polling) |
//! | [`sqlx_statement`] | one `sqlx::query` event as sqlx reports a statement, for the database capture |
//!
//! Socket helpers are for what needs a socket (a client that goes away, a real connection).
//! Everything else runs on paused Tokio time with `tower::ServiceExt::oneshot`.

mod client;
mod collector;
mod events;
mod recorder;
mod server;
mod sqlx;

pub use client::{Reply, exchange, get_text, send_raw};
pub use collector::Collector;
pub use events::{Event, Events, FieldValue};
pub use recorder::{Series, SeriesValue, Snapshot, TestRecorder};
pub use server::serve;
pub use sqlx::sqlx_statement;
