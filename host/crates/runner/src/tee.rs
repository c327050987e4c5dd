//! Stream plumbing between steps: the bounded tee that shares one output with several readers, and the
//! lending wrapper that lets a retried step get its input again when the failed attempt read none of it.
//!
//! Invariant: a tee pulls its source once; each reader holds at most [`TEE_CAPACITY`] batches in its channel,
//! so memory is bounded by `readers x capacity x batch size`, whatever the number of rows. A reader only sees
//! a clean end of stream when the source ended cleanly: a tee stopped early (all other readers gone, the run
//! stopping) ends its readers with an error, so a writer never commits a partial input.

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use osiris_plugin_sdk::BatchStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

/// Batches buffered per reader of a shared output.
pub const TEE_CAPACITY: usize = 2;

enum Msg {
    Batch(RecordBatch),
    Error(String),
    End,
}

/// One reader's side of a tee.
pub struct TeeReader {
    schema: SchemaRef,
    rx: Receiver<Msg>,
    upstream: String,
    done: bool,
}

impl Iterator for TeeReader {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.rx.recv() {
            Ok(Msg::Batch(b)) => Some(Ok(b)),
            Ok(Msg::End) => {
                self.done = true;
                None
            }
            Ok(Msg::Error(e)) => {
                self.done = true;
                Some(Err(ArrowError::ExternalError(e.into())))
            }
            Err(_) => {
                self.done = true;
                Some(Err(ArrowError::ExternalError(
                    format!(
                        "the output of step `{}` ended early (the run is stopping)",
                        self.upstream
                    )
                    .into(),
                )))
            }
        }
    }
}

impl RecordBatchReader for TeeReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// Splits `source` into `n` readers and returns them with the pump, which must run on its own (blocking)
/// thread while the readers are read concurrently.
///
/// The pump blocks when one reader's channel is full: every reader must be read at the same time (the
/// scheduler starts all readers of a shared output together), or the pump and the readers wait on each other.
pub fn tee(
    source: BatchStream,
    upstream: &str,
    n: usize,
) -> (Vec<TeeReader>, impl FnOnce() + Send + 'static) {
    let schema = source.schema();
    let mut senders: Vec<Option<SyncSender<Msg>>> = Vec::with_capacity(n);
    let mut readers = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = sync_channel(TEE_CAPACITY);
        senders.push(Some(tx));
        readers.push(TeeReader {
            schema: schema.clone(),
            rx,
            upstream: upstream.to_string(),
            done: false,
        });
    }
    let pump = move || {
        let mut source = source;
        loop {
            match source.next() {
                Some(Ok(batch)) => {
                    for slot in senders.iter_mut() {
                        if let Some(tx) = slot
                            && tx.send(Msg::Batch(batch.clone())).is_err()
                        {
                            // This reader is gone (finished early or failed): the others go on.
                            *slot = None;
                        }
                    }
                    if senders.iter().all(Option::is_none) {
                        // Nobody reads any more: dropping the source tells its producer it ended early.
                        return;
                    }
                }
                Some(Err(e)) => {
                    let text = e.to_string();
                    for tx in senders.iter().flatten() {
                        let _ = tx.send(Msg::Error(text.clone()));
                    }
                    return;
                }
                None => {
                    for tx in senders.iter().flatten() {
                        let _ = tx.send(Msg::End);
                    }
                    return;
                }
            }
        }
    };
    (readers, pump)
}

/// An input stream lent to one attempt of a step. The host keeps the stream; when an attempt fails before
/// pulling a batch, the next attempt gets the same, untouched stream.
pub struct Lent {
    slot: Arc<Mutex<BatchStream>>,
    schema: SchemaRef,
    pulled: Arc<AtomicBool>,
}

/// The host's side of a lent stream.
pub struct Lendable {
    slot: Arc<Mutex<BatchStream>>,
    schema: SchemaRef,
    pulled: Arc<AtomicBool>,
}

impl Lendable {
    pub fn new(stream: BatchStream) -> Lendable {
        Lendable {
            schema: stream.schema(),
            slot: Arc::new(Mutex::new(stream)),
            pulled: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn lend(&self) -> Lent {
        Lent {
            slot: self.slot.clone(),
            schema: self.schema.clone(),
            pulled: self.pulled.clone(),
        }
    }

    /// True once any attempt pulled from the stream (it cannot be handed out again from the start).
    pub fn pulled(&self) -> bool {
        self.pulled.load(Ordering::Relaxed)
    }
}

impl Iterator for Lent {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.pulled.store(true, Ordering::Relaxed);
        let mut s = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        s.next()
    }
}

impl RecordBatchReader for Lent {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, RecordBatchIterator};
    use arrow_schema::{DataType, Field, Schema};

    fn source(batches: usize) -> (BatchStream, Arc<std::sync::atomic::AtomicUsize>) {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let pulled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let p = pulled.clone();
        let s = schema.clone();
        let it = (0..batches).map(move |i| {
            p.fetch_add(1, Ordering::SeqCst);
            Ok(RecordBatch::try_new(
                s.clone(),
                vec![Arc::new(Int64Array::from(vec![i as i64; 10]))],
            )
            .unwrap())
        });
        (Box::new(RecordBatchIterator::new(it, schema)), pulled)
    }

    #[test]
    fn every_reader_gets_every_batch_and_the_source_is_pulled_once() {
        let (src, pulled) = source(50);
        let (readers, pump) = tee(src, "up", 3);
        let h = std::thread::spawn(pump);
        let handles: Vec<_> = readers
            .into_iter()
            .map(|r| std::thread::spawn(move || r.map(|b| b.unwrap().num_rows()).sum::<usize>()))
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), 500);
        }
        h.join().unwrap();
        assert_eq!(pulled.load(Ordering::SeqCst), 50);
    }

    #[test]
    fn a_reader_that_leaves_does_not_stop_the_others_and_an_early_stop_is_an_error() {
        let (src, _) = source(20);
        let (mut readers, pump) = tee(src, "up", 2);
        let second = readers.pop().unwrap();
        let mut first = readers.pop().unwrap();
        let h = std::thread::spawn(pump);
        assert!(first.next().unwrap().is_ok());
        drop(first);
        assert_eq!(second.map(|b| b.unwrap().num_rows()).sum::<usize>(), 200);
        h.join().unwrap();

        // A pump that stops before the end (all readers but one gone, then the source dropped) ends the
        // remaining reader with an error, never with a clean end.
        let (src, _) = source(20);
        let (mut readers, pump) = tee(src, "up", 1);
        let mut r = readers.pop().unwrap();
        drop(pump);
        assert!(r.next().unwrap().is_err());
    }
}
