//! optiopay's `Mx` (`Merge`): many consumers merged into one stream.

use crate::consumer::{Consumer, Message};
use crate::error::{ConsumeError, ConsumeErrorKind};
use async_trait::async_trait;
use futures::Stream;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

type Item = Result<Message, ConsumeError>;

/// Merges consumers into one stream (optiopay's `Mx`): one task per consumer calls
/// [`Consumer::consume`] in a loop and sends what it gets into one channel.
///
/// - A consumer that fails with [`ConsumeErrorKind::NoData`] or
///   [`ConsumeErrorKind::Closed`] leaves the set; that error is not forwarded (it
///   only says the consumer is done). Every other error is forwarded as `Err` and
///   the consumer stays.
/// - When no consumer is left, the stream ends (`next()` gives `None`, `consume()`
///   fails with [`ConsumeErrorKind::Closed`]).
/// - Messages of one consumer keep their order; the channel holds at most one
///   message per consumer, so a slow reader slows the consumers down.
/// - Reading is cancel-safe; dropping the `Mx` stops the workers.
#[derive(Debug)]
pub struct Mx {
    rx: tokio::sync::Mutex<mpsc::Receiver<Item>>,
    workers: std::sync::Mutex<Vec<JoinHandle<()>>>,
    running: Arc<AtomicUsize>,
}

/// Counts a worker as running until its task ends or is aborted.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Mx {
    /// Starts one worker per consumer. Must be called inside a tokio runtime.
    pub fn new(consumers: Vec<Arc<dyn Consumer>>) -> Self {
        let (tx, rx) = mpsc::channel(consumers.len().max(1));
        let running = Arc::new(AtomicUsize::new(consumers.len()));
        let workers = consumers
            .into_iter()
            .map(|consumer| {
                let tx = tx.clone();
                let guard = Running(running.clone());
                tokio::spawn(async move {
                    let _guard = guard;
                    loop {
                        let item = consumer.consume().await;
                        if let Err(e) = &item {
                            if matches!(
                                e.kind(),
                                ConsumeErrorKind::NoData(_) | ConsumeErrorKind::Closed
                            ) {
                                tracing::debug!(error = %e, "consumer leaves the merge");
                                return;
                            }
                        }
                        if tx.send(item).await.is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        Mx {
            rx: tokio::sync::Mutex::new(rx),
            workers: std::sync::Mutex::new(workers),
            running,
        }
    }

    /// How many consumers are still in the set.
    pub fn workers(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// Stops every worker and waits for them to end. Messages already received stay
    /// readable; then the stream ends.
    pub async fn close(&self) {
        let workers = std::mem::take(&mut *lock(&self.workers));
        for w in &workers {
            w.abort();
        }
        for w in workers {
            let _ = w.await;
        }
    }

    /// The next message or error; `None` once every consumer has left. Cancel-safe.
    pub async fn next(&self) -> Option<Item> {
        self.rx.lock().await.recv().await
    }
}

impl Drop for Mx {
    fn drop(&mut self) {
        for w in lock(&self.workers).iter() {
            w.abort();
        }
    }
}

impl Stream for Mx {
    type Item = Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        self.get_mut().rx.get_mut().poll_recv(cx)
    }
}

#[async_trait]
impl Consumer for Mx {
    /// The next message of any consumer; fails with [`ConsumeErrorKind::Closed`] once
    /// every consumer has left.
    async fn consume(&self) -> Result<Message, ConsumeError> {
        match Mx::next(self).await {
            Some(item) => item,
            None => Err(ConsumeError::new(ConsumeErrorKind::Closed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use kafka_protocol::records::Record;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Hands out `items` in order, then NoData.
    struct Scripted(Mutex<Vec<Item>>);

    #[async_trait]
    impl Consumer for Scripted {
        async fn consume(&self) -> Result<Message, ConsumeError> {
            let next = lock(&self.0).pop();
            next.unwrap_or_else(|| Err(ConsumeError::new(ConsumeErrorKind::NoData(1))))
        }
    }

    /// Never answers.
    struct Stuck;

    #[async_trait]
    impl Consumer for Stuck {
        async fn consume(&self) -> Result<Message, ConsumeError> {
            futures::future::pending().await
        }
    }

    fn msg(p: i32, o: i64) -> Item {
        Ok(Message::from_record(
            "t",
            p,
            Record {
                offset: o,
                ..Default::default()
            },
        ))
    }

    fn scripted(mut items: Vec<Item>) -> Arc<dyn Consumer> {
        items.reverse();
        Arc::new(Scripted(Mutex::new(items)))
    }

    #[tokio::test]
    async fn merges_forwards_errors_and_ends() {
        tokio::time::timeout(Duration::from_secs(10), async {
            let err = Err(ConsumeError::new(ConsumeErrorKind::Config("x".into())));
            let mut mx = Mx::new(vec![
                scripted(vec![msg(0, 0), msg(0, 1)]),
                scripted(vec![msg(1, 0), err, msg(1, 1)]),
            ]);
            let mut got = Vec::new();
            let mut errors = 0;
            while let Some(item) = mx.next().await {
                match item {
                    Ok(m) => got.push((m.partition, m.offset)),
                    Err(_) => errors += 1,
                }
            }
            assert_eq!(errors, 1);
            got.sort();
            assert_eq!(got, vec![(0, 0), (0, 1), (1, 0), (1, 1)]);
            assert_eq!(mx.workers(), 0);
            assert!(StreamExt::next(&mut mx).await.is_none());
            assert!(matches!(
                mx.consume().await.map_err(|e| e.kind().clone()),
                Err(ConsumeErrorKind::Closed)
            ));
        })
        .await
        .expect("timed out");
    }

    #[tokio::test]
    async fn close_stops_workers() {
        tokio::time::timeout(Duration::from_secs(10), async {
            let mx = Mx::new(vec![Arc::new(Stuck), Arc::new(Stuck)]);
            assert_eq!(mx.workers(), 2);
            mx.close().await;
            assert_eq!(mx.workers(), 0);
            assert!(mx.next().await.is_none());
        })
        .await
        .expect("timed out");
    }
}
