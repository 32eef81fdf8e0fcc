//! [`Collector`]: what a hook saw.

use std::fmt;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// An ordered log of values that hooks push from any task, shared by its clones.
///
/// [`wait_for`](Self::wait_for) waits until a number of values arrived, woken by each
/// [`push`](Self::push), so socket tests need no polling or sleeps.
pub struct Collector<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    items: Mutex<Vec<T>>,
    pushed: Notify,
}

impl<T> Collector<T> {
    /// An empty log.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                items: Mutex::new(Vec::new()),
                pushed: Notify::new(),
            }),
        }
    }

    /// Appends `item`.
    pub fn push(&self, item: T) {
        self.lock().push(item);
        self.inner.pushed.notify_waiters();
    }

    /// How many values arrived.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no value arrived.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<T>> {
        self.inner.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Clone> Collector<T> {
    /// The values so far.
    pub fn items(&self) -> Vec<T> {
        self.lock().clone()
    }

    /// Waits until at least `n` values arrived, and returns them all. Wrap it in
    /// `tokio::time::timeout` where a missing value must fail rather than hang.
    pub async fn wait_for(&self, n: usize) -> Vec<T> {
        loop {
            let pushed = self.inner.pushed.notified();
            let mut pushed = std::pin::pin!(pushed);
            pushed.as_mut().enable();
            if self.len() >= n {
                return self.items();
            }
            pushed.await;
        }
    }
}

impl<T> Clone for Collector<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Default for Collector<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for Collector<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.lock().iter()).finish()
    }
}
