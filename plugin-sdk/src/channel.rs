//! Streaming batches from a producer thread: the usual shape of a source component.
//!
//! A database driver (or any blocking/async client) runs on a thread of its own and fills Arrow batches;
//! the host pulls them through a [`ChannelReader`], a `RecordBatchReader` backed by a bounded channel. With a
//! capacity of 1 rows are fetched as the host pulls and memory stays bounded by about two batches.
//!
//! The protocol, enforced by [`spawn_reader`]:
//!
//! 1. the producer first *describes* the result ([`BatchSender::describe`]) or *fails* ([`BatchSender::fail`]);
//!    `spawn_reader` waits for that and returns the reader or the error (so a refused query is a plain
//!    `Err` of `Driver::run`, not a failing stream);
//! 2. then it sends batches ([`BatchSender::send`] / [`BatchSender::send_checked`]); a failure now reaches the
//!    host as the next item of the stream;
//! 3. a `false` from a send means the host dropped the stream: the producer should stop and clean up.
//!
//! ```
//! use osiris_plugin_sdk::arrow_array::{Int64Array, RecordBatch, RecordBatchReader};
//! use osiris_plugin_sdk::arrow_schema::{DataType, Field, Schema};
//! use std::sync::Arc;
//!
//! let reader = osiris_plugin_sdk::spawn_reader("example".into(), 1, |mut out| {
//!     let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
//!     if !out.describe(schema.clone()) {
//!         return;
//!     }
//!     let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
//!     out.send(batch);
//! })
//! .unwrap();
//! assert_eq!(reader.schema().field(0).name(), "n");
//! assert_eq!(reader.map(|b| b.unwrap().num_rows()).sum::<usize>(), 2);
//! ```

use crate::driver::PluginError;
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// The producer's end: describe the result once, then send batches (or fail at any point).
pub struct BatchSender {
    meta: Option<SyncSender<Result<SchemaRef, PluginError>>>,
    tx: SyncSender<Result<RecordBatch, ArrowError>>,
}

impl BatchSender {
    /// Announces the schema of the stream. Returns `false` when nobody waits for it any more (stop).
    pub fn describe(&mut self, schema: SchemaRef) -> bool {
        match self.meta.take() {
            Some(meta) => meta.send(Ok(schema)).is_ok(),
            None => true,
        }
    }

    /// Whether [`describe`](Self::describe) was called.
    pub fn is_described(&self) -> bool {
        self.meta.is_none()
    }

    /// Sends one batch; blocks while the channel is full. Returns `false` once the host dropped the stream.
    pub fn send(&self, batch: RecordBatch) -> bool {
        self.tx.send(Ok(batch)).is_ok()
    }

    /// Like [`send`](Self::send), after checking for cancellation first: `Err(Cancelled)` once the host asked
    /// the step to stop, `Ok(false)` once it dropped the stream.
    pub fn send_checked(
        &self,
        ctx: &crate::driver::Context,
        batch: RecordBatch,
    ) -> Result<bool, PluginError> {
        ctx.check_cancelled()?;
        Ok(self.send(batch))
    }

    /// Reports a failure: before the result was described it becomes the error [`spawn_reader`] returns,
    /// afterwards the next item of the stream.
    pub fn fail(&mut self, e: PluginError) {
        match self.meta.take() {
            Some(meta) => {
                let _ = meta.send(Err(e));
            }
            None => {
                let _ = self.tx.send(Err(e.into_arrow()));
            }
        }
    }
}

/// The host's end: a `RecordBatchReader` over the batches the producer sends; it ends when the producer is
/// done (its [`BatchSender`] is dropped). Dropping it makes the producer's next send return `false`.
pub struct ChannelReader {
    schema: SchemaRef,
    rx: Receiver<Result<RecordBatch, ArrowError>>,
}

impl Iterator for ChannelReader {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}

impl RecordBatchReader for ChannelReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// Runs `produce` on a new thread named `thread_name` with a channel of `capacity` batches (at least 1), and
/// waits until it describes the result or fails (see the module documentation).
///
/// Errors: the producer's failure before describing; `INTERNAL` when the thread cannot start or ends without
/// describing the result.
pub fn spawn_reader<F>(
    thread_name: String,
    capacity: usize,
    produce: F,
) -> Result<ChannelReader, PluginError>
where
    F: FnOnce(BatchSender) + Send + 'static,
{
    let (meta_tx, meta_rx) = sync_channel::<Result<SchemaRef, PluginError>>(1);
    let (tx, rx) = sync_channel::<Result<RecordBatch, ArrowError>>(capacity.max(1));
    let sender = BatchSender {
        meta: Some(meta_tx),
        tx,
    };
    std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || produce(sender))
        .map_err(|e| PluginError::internal(format!("cannot start a reader thread: {e}")))?;
    match meta_rx.recv() {
        Ok(Ok(schema)) => Ok(ChannelReader { schema, rx }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(PluginError::internal(
            "the reader thread ended before describing the result",
        )),
    }
}

/// Builds a batch of `rows` rows from finished column arrays (the row count also covers zero columns).
pub fn batch_from_arrays(
    schema: &SchemaRef,
    arrays: Vec<ArrayRef>,
    rows: usize,
) -> Result<RecordBatch, PluginError> {
    RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| PluginError::internal(format!("building a record batch failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::ErrorKind;
    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]))
    }

    fn batch(v: &[i64]) -> RecordBatch {
        batch_from_arrays(
            &schema(),
            vec![Arc::new(Int64Array::from(v.to_vec()))],
            v.len(),
        )
        .unwrap()
    }

    #[test]
    fn streams_batches_in_order_then_ends() {
        let reader = spawn_reader("t".into(), 1, |mut out| {
            assert!(!out.is_described());
            assert!(out.describe(schema()));
            assert!(out.is_described());
            for i in 0..3 {
                assert!(out.send(batch(&[i, i])));
            }
        })
        .unwrap();
        assert_eq!(reader.schema(), schema());
        let firsts: Vec<i64> = reader
            .map(|b| {
                let b = b.unwrap();
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .value(0)
            })
            .collect();
        assert_eq!(firsts, vec![0, 1, 2]);
    }

    #[test]
    fn a_failure_before_describing_is_the_spawn_error() {
        let e = spawn_reader("t".into(), 1, |mut out| {
            out.fail(PluginError::config("`table` is missing"));
        })
        .err()
        .unwrap();
        assert_eq!(e.kind, ErrorKind::Config);
        assert_eq!(e.message, "`table` is missing");
    }

    #[test]
    fn a_failure_after_describing_is_the_next_stream_item() {
        let mut reader = spawn_reader("t".into(), 1, |mut out| {
            out.describe(schema());
            out.send(batch(&[1]));
            out.fail(PluginError::internal("the connection was lost"));
        })
        .unwrap();
        assert_eq!(reader.next().unwrap().unwrap().num_rows(), 1);
        let e = reader.next().unwrap().unwrap_err();
        assert!(e.to_string().contains("the connection was lost"), "{e}");
        assert!(reader.next().is_none());
    }

    #[test]
    fn a_producer_that_never_describes_is_an_internal_error() {
        let e = spawn_reader("t".into(), 1, |_out| {}).err().unwrap();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert!(e.message.contains("before describing"), "{}", e.message);
    }

    #[test]
    fn dropping_the_reader_stops_the_producer() {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let reader = spawn_reader("t".into(), 1, move |mut out| {
            out.describe(schema());
            let mut sent = 0;
            while out.send(batch(&[sent])) {
                sent += 1;
            }
            done_tx.send(sent).unwrap();
        })
        .unwrap();
        drop(reader);
        let sent = done_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the producer saw the reader go away");
        assert!(sent <= 1, "at most the buffered batch was sent: {sent}");
    }

    struct Cancel(std::sync::atomic::AtomicBool);

    impl crate::driver::ContextBackend for Cancel {
        fn log(&self, _: crate::driver::Level, _: &str) {}
        fn metric(&self, _: &str, _: f64, _: Option<&str>) {}
        fn is_cancelled(&self) -> bool {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
        fn connection(&self) -> Option<serde_json::Value> {
            None
        }
    }

    #[test]
    fn send_checked_stops_on_cancellation() {
        let flag = Arc::new(Cancel(std::sync::atomic::AtomicBool::new(false)));
        let ctx = crate::driver::Context::new(flag.clone());
        let mut reader = spawn_reader("t".into(), 1, move |mut out| {
            out.describe(schema());
            assert!(out.send_checked(&ctx, batch(&[1])).unwrap());
            // wait until the host cancels, then the next send is refused
            while !ctx.is_cancelled() {
                std::thread::yield_now();
            }
            match out.send_checked(&ctx, batch(&[2])) {
                Err(e) => out.fail(e),
                Ok(_) => panic!("sent after cancellation"),
            }
        })
        .unwrap();
        assert_eq!(reader.next().unwrap().unwrap().num_rows(), 1);
        flag.0.store(true, std::sync::atomic::Ordering::SeqCst);
        let e = reader.next().unwrap().unwrap_err();
        assert!(e.to_string().contains("cancelled"), "{e}");
        assert!(reader.next().is_none());
    }
}
