//! Requests answered through a callback on the reader task
//! ([`Connection::enqueue_then`]), and the watchdog that keeps their timeout.

use super::*;

/// A request's completion, run by whichever task learns the outcome first: the reader
/// (the answer), the watchdog (a timeout), or whoever poisons the connection. Called
/// exactly once: a callback dropped uncalled (its request dropped with a writer queue)
/// is called with the connection's error.
pub(super) struct Callback {
    pub(super) call: Option<Box<dyn FnOnce(Result<Bytes>) + Send>>,
    pub(super) deadline: Instant,
    pub(super) shared: std::sync::Weak<Shared>,
}

impl Callback {
    pub(super) fn call(mut self, result: Result<Bytes>) {
        if let Some(call) = self.call.take() {
            call(result);
        }
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            let e = match self.shared.upgrade() {
                Some(shared) => shared.closed_or_ended(),
                None => Error::new(ErrorKind::ConnectionClosed("connection task ended".into())),
            };
            call(Err(e));
        }
    }
}

/// Who waits for a response: a request's future, or its callback.
pub(super) enum Waiter {
    Future(oneshot::Sender<Result<Bytes>>),
    Callback(Callback),
}

impl Waiter {
    pub(super) fn answer(self, result: Result<Bytes>) {
        match self {
            // A receiver that went away (its future was dropped) is fine.
            Waiter::Future(tx) => drop(tx.send(result)),
            Waiter::Callback(callback) => callback.call(result),
        }
    }
}

impl Connection {
    /// Sends a request and has `then` called with its decoded answer, or its error, on
    /// the connection's reader task: no task of the caller's waits for it, so a
    /// producer pays no task wake-up per request. `then` is called exactly once, also
    /// when the request cannot be sent (then before this returns); keep it short, it
    /// holds up the answers behind it. Requests go out in the order of the calls, as
    /// with [`enqueue`](Self::enqueue). The request timeout is kept by a watchdog that
    /// looks at the oldest requests every eighth of the timeout (at least every 10 ms,
    /// at most every second), so a request times out within that much after it.
    pub async fn enqueue_then<R, F>(&self, request: &R, version: i16, then: F)
    where
        R: Request,
        R::Response: Send + 'static,
        F: FnOnce(Result<R::Response>) + Send + 'static,
    {
        let frame = || {
            self.frame(R::API_KEY, version, |buf, header| {
                encode_request(buf, header, request)
            })
        };
        self.enqueue_frame_then::<R, F>(version, frame, then).await
    }

    /// [`enqueue_then`](Self::enqueue_then) for a Produce request whose partitions'
    /// records are given apart, each as the parts it is made of (a sealed batch's
    /// header and chunks; see
    /// [`encode_produce_request_segments`](kafka_protocol::frame::encode_produce_request_segments)):
    /// parts of at least [`SEGMENT_MIN`](kafka_protocol::frame::SEGMENT_MIN) bytes are
    /// written from the caller's buffers instead of being copied into the frame, so a
    /// producer that keeps its batches for retries holds their bytes once.
    pub async fn enqueue_produce_then<F>(
        &self,
        request: &ProduceRequest,
        records: &[Vec<Bytes>],
        version: i16,
        then: F,
    ) where
        F: FnOnce(Result<ProduceResponse>) + Send + 'static,
    {
        let frame = || self.produce_frame(request, records, version);
        self.enqueue_frame_then::<ProduceRequest, F>(version, frame, then)
            .await
    }

    async fn enqueue_frame_then<R, F>(
        &self,
        version: i16,
        frame: impl FnOnce() -> Result<(i32, Frame)>,
        then: F,
    ) where
        R: Request,
        R::Response: Send + 'static,
        F: FnOnce(Result<R::Response>) + Send + 'static,
    {
        let api = R::API_KEY;
        let addr = self.shared.addr.clone();
        let fail = move |e: Error| e.with_api(api).with_broker(addr.clone());
        if let Err(e) = self.check_open() {
            return then(Err(fail(e)));
        }
        let (id, frame) = match frame() {
            Ok(f) => f,
            Err(e) => return then(Err(fail(e))),
        };
        let span = request_span(api, version, id, &self.shared.addr);
        let started = Instant::now();
        let weak = Arc::downgrade(&self.shared);
        let on_answer = {
            let weak = weak.clone();
            let fail = fail.clone();
            let span = span.clone();
            move |answer: Result<Bytes>| {
                let _entered = span.enter();
                let decode = |frame: &Bytes| {
                    decode_response::<R::Response>(frame, version).map(|(_, body)| body)
                };
                let result = match weak.upgrade() {
                    Some(shared) => shared.settle(answer, started, decode),
                    // The connection is gone: the answer is its error.
                    None => answer.and_then(|frame| decode(&frame).map_err(Error::from)),
                };
                then(result.map_err(fail));
            }
        };
        let callback = Callback {
            call: Some(Box::new(on_answer)),
            deadline: started + self.request_timeout,
            shared: weak,
        };
        // On failure `hand_over` has called the callback with the error.
        if self
            .hand_over(id, frame, Reply::Callback(callback))
            .instrument(span)
            .await
            .is_ok()
        {
            self.start_watchdog();
        }
    }

    /// Starts the watchdog of callback requests' deadlines, once per connection.
    fn start_watchdog(&self) {
        if self.shared.watchdog.swap(true, Ordering::AcqRel) {
            return;
        }
        let tick =
            (self.request_timeout / 8).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let timeout = self.request_timeout;
        let weak = Arc::downgrade(&self.shared);
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(shared) = weak.upgrade() else {
                    return;
                };
                let now = Instant::now();
                let late = lock(&shared.pending).values().any(|w| match w {
                    Waiter::Callback(c) => c.deadline <= now,
                    Waiter::Future(_) => false,
                });
                if late {
                    // As for a request's future: a timeout closes the connection.
                    shared.poison(Error::new(ErrorKind::Timeout(timeout)));
                    return;
                }
            }
        });
        lock(&self.shared.tasks).push(task.abort_handle());
    }
}
