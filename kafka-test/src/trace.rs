//! [`TraceRecorder`]: a `tracing` subscriber that records every span and event with
//! its fields, for tests that check what a client traces (no `tracing-subscriber`
//! needed).
//!
//! ```
//! use kafka_test::trace::TraceRecorder;
//! let recorder = TraceRecorder::new();
//! {
//!     let _guard = recorder.set_default();
//!     let span = tracing::info_span!("request", api = "Produce", version = 9);
//!     let _entered = span.enter();
//!     tracing::info!(partitions = 3, "sent");
//! }
//! let spans = recorder.spans_named("request");
//! assert_eq!(spans[0].field("api"), Some("Produce"));
//! assert_eq!(recorder.events()[0].message(), Some("sent"));
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A span as recorded: its name, fields (values as their `Debug` text, strings
/// unquoted) and parent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordedSpan {
    /// The recorder's id of the span (never reused).
    pub id: u64,
    /// The span's name.
    pub name: &'static str,
    /// The span's target (module path).
    pub target: String,
    /// Its fields, including those recorded after it was created.
    pub fields: BTreeMap<String, String>,
    /// The parent span's id (explicit, or the span current when it was created).
    pub parent: Option<u64>,
}

impl RecordedSpan {
    /// A field's value.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// An event as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordedEvent {
    /// The event's level.
    pub level: tracing::Level,
    /// Its fields (the text is the `message` field).
    pub fields: BTreeMap<String, String>,
    /// The id of the span it happened in.
    pub span: Option<u64>,
}

impl RecordedEvent {
    /// The event's text.
    pub fn message(&self) -> Option<&str> {
        self.field("message")
    }

    /// A field's value.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// The recorder stays this thread's subscriber until this is dropped.
#[must_use = "the recorder is the subscriber only while the guard lives"]
pub struct TraceGuard {
    _guard: tracing::subscriber::DefaultGuard,
    _keep_asking: tracing::Dispatch,
}

impl Debug for TraceGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceGuard").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Recorded {
    spans: BTreeMap<u64, RecordedSpan>,
    events: Vec<RecordedEvent>,
    /// The entered spans of each thread, innermost last.
    stacks: HashMap<ThreadId, Vec<u64>>,
}

/// A subscriber that records everything, at every level. Clones share the record.
#[derive(Clone, Default)]
pub struct TraceRecorder {
    recorded: Arc<Mutex<Recorded>>,
    next_id: Arc<AtomicU64>,
}

impl Debug for TraceRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.lock();
        f.debug_struct("TraceRecorder")
            .field("spans", &r.spans.len())
            .field("events", &r.events.len())
            .finish()
    }
}

struct FieldVisitor<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
}

impl TraceRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the recorder the subscriber of this thread until the guard is dropped
    /// (use a current-thread runtime, so that spawned tasks run on this thread).
    ///
    /// Works with tests running on other threads at the same time: `tracing` decides
    /// once per callsite whether anyone is interested, and when a single dispatcher is
    /// registered it asks only the current thread's, so a callsite first reached on
    /// another thread would be switched off for good. The guard keeps a second
    /// (no-op) dispatcher registered so that every registered one is asked.
    pub fn set_default(&self) -> TraceGuard {
        let keep_asking = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
        let guard = tracing::subscriber::set_default(self.clone());
        tracing::callsite::rebuild_interest_cache();
        TraceGuard {
            _guard: guard,
            _keep_asking: keep_asking,
        }
    }

    /// Every span recorded, in the order they were created.
    pub fn spans(&self) -> Vec<RecordedSpan> {
        self.lock().spans.values().cloned().collect()
    }

    /// The spans named `name`.
    pub fn spans_named(&self, name: &str) -> Vec<RecordedSpan> {
        self.lock()
            .spans
            .values()
            .filter(|s| s.name == name)
            .cloned()
            .collect()
    }

    /// The span's parent, its parent's parent and so on, nearest first.
    pub fn ancestors(&self, span: &RecordedSpan) -> Vec<RecordedSpan> {
        let r = self.lock();
        let mut out = Vec::new();
        let mut next = span.parent;
        while let Some(s) = next.and_then(|id| r.spans.get(&id)) {
            next = s.parent;
            out.push(s.clone());
        }
        out
    }

    /// Every event recorded, in order.
    pub fn events(&self) -> Vec<RecordedEvent> {
        self.lock().events.clone()
    }

    fn current(r: &Recorded) -> Option<u64> {
        r.stacks
            .get(&std::thread::current().id())
            .and_then(|s| s.last().copied())
    }
}

impl Subscriber for TraceRecorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = BTreeMap::new();
        attrs.record(&mut FieldVisitor(&mut fields));
        let mut r = self.lock();
        let parent = if attrs.is_root() {
            None
        } else if let Some(p) = attrs.parent() {
            Some(p.into_u64())
        } else {
            Self::current(&r)
        };
        let meta = attrs.metadata();
        r.spans.insert(
            id,
            RecordedSpan {
                id,
                name: meta.name(),
                target: meta.target().to_string(),
                fields,
                parent,
            },
        );
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut r = self.lock();
        if let Some(s) = r.spans.get_mut(&span.into_u64()) {
            values.record(&mut FieldVisitor(&mut s.fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldVisitor(&mut fields));
        let mut r = self.lock();
        let span = if event.is_root() {
            None
        } else if let Some(p) = event.parent() {
            Some(p.into_u64())
        } else {
            Self::current(&r)
        };
        r.events.push(RecordedEvent {
            level: *event.metadata().level(),
            fields,
            span,
        });
    }

    fn enter(&self, span: &Id) {
        self.lock()
            .stacks
            .entry(std::thread::current().id())
            .or_default()
            .push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut r = self.lock();
        if let Some(stack) = r.stacks.get_mut(&std::thread::current().id()) {
            if let Some(i) = stack.iter().rposition(|s| *s == span.into_u64()) {
                stack.remove(i);
            }
        }
    }
}
