//! Stream plumbing between steps: the bounded tee that shares one output with several readers, and the
//! lending wrapper that lets a retried step get its input again from its start: untouched when the failed
//! attempt read none of it, else replayed from a journal of the batches read so far (Arrow IPC on disk).
//!
//! Invariant: a tee pulls its source once; each reader holds at most [`TEE_CAPACITY`] batches in its channel,
//! so memory is bounded by `readers x capacity x batch size`, whatever the number of rows. A reader only sees
//! a clean end of stream when the source ended cleanly: a tee stopped early (all other readers gone, the run
//! stopping) ends its readers with an error, so a writer never commits a partial input.

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{ArrowError, SchemaRef};
use osiris_plugin_sdk::BatchStream;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
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

/// An input stream lent to one attempt of a step. The host keeps the stream; the next attempt gets it again
/// from its start: untouched when the failed attempt pulled nothing, otherwise the batches the failed attempt
/// pulled replayed from the journal, then the rest of the live stream.
pub struct Lent {
    shared: Arc<Mutex<Shared>>,
    schema: SchemaRef,
    /// Journaled batches this attempt still has to replay before it reads on from the live stream.
    replay: Option<(StreamReader<BufReader<File>>, usize)>,
}

/// The host's side of a lent stream.
pub struct Lendable {
    shared: Arc<Mutex<Shared>>,
    schema: SchemaRef,
}

struct Shared {
    stream: BatchStream,
    /// Some attempt pulled from the live stream.
    pulled: bool,
    /// Every batch pulled from the live stream so far, in order; `None` when not journaling.
    journal: Option<Journal>,
    /// Why the journal cannot replay the input (it could not be written): the input cannot be lent again.
    broken: Option<String>,
    /// The error the live stream ended with. Every later pull returns it again: a stream that failed must
    /// never look ended (a replayed journal followed by a clean end would be a partial input).
    failed: Option<String>,
}

/// The batches an attempt pulled, in Arrow IPC stream format in a file of the run directory (0600), so a
/// retry after a partly read input sees exactly the same rows in the same order, in bounded memory.
struct Journal {
    path: PathBuf,
    writer: StreamWriter<BufWriter<File>>,
    batches: usize,
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Lendable {
    /// Lends `stream` without a journal: it can be lent again only while nobody pulled from it.
    pub fn new(stream: BatchStream) -> Lendable {
        Lendable {
            schema: stream.schema(),
            shared: Arc::new(Mutex::new(Shared {
                stream,
                pulled: false,
                journal: None,
                broken: None,
                failed: None,
            })),
        }
    }

    /// Lends `stream` and journals what is pulled from it to `path` (created, never overwritten), so it can be
    /// lent again from its start after any attempt. When the journal cannot be created or written, the input
    /// behaves as one without a journal and [`Lendable::why_not_again`] says why.
    pub fn journaled(stream: BatchStream, path: PathBuf) -> Lendable {
        let schema = stream.schema();
        let (journal, broken) = match Journal::create(path, &schema) {
            Ok(j) => (Some(j), None),
            Err(e) => (None, Some(e)),
        };
        Lendable {
            schema,
            shared: Arc::new(Mutex::new(Shared {
                stream,
                pulled: false,
                journal,
                broken,
                failed: None,
            })),
        }
    }

    pub fn lend(&self) -> Lent {
        let mut sh = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let replay = match sh.journal.as_mut() {
            Some(j) if j.batches > 0 => match j.reader() {
                Ok(r) => Some((r, j.batches)),
                Err(e) => {
                    sh.broken = Some(e);
                    sh.journal = None;
                    None
                }
            },
            _ => None,
        };
        Lent {
            shared: self.shared.clone(),
            schema: self.schema.clone(),
            replay,
        }
    }

    /// `None` when the input can be lent again from its start; otherwise why not.
    pub fn why_not_again(&self) -> Option<String> {
        let sh = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = &sh.failed {
            return Some(format!("its stream failed ({e})"));
        }
        if !sh.pulled || sh.journal.is_some() {
            return None;
        }
        Some(match &sh.broken {
            Some(why) => format!("its journal for a retry failed: {why}"),
            None => "it is not journaled".to_string(),
        })
    }

    /// Whether the live stream ended with an error.
    pub fn failed(&self) -> bool {
        let sh = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        sh.failed.is_some()
    }

    /// Starts over with `stream`, a new read of the same source: what was journaled is dropped (the next
    /// attempt reads `stream` from its start, and journals it again).
    pub fn restart(&self, stream: BatchStream) {
        let mut sh = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let path = sh.journal.take().map(|j| j.path.clone());
        sh.stream = stream;
        sh.pulled = false;
        sh.failed = None;
        if let Some(path) = path {
            // The old journal's file was removed when it was dropped above.
            match Journal::create(path, &self.schema) {
                Ok(j) => sh.journal = Some(j),
                Err(e) => sh.broken = Some(e),
            }
        }
    }
}

impl Journal {
    fn create(path: PathBuf, schema: &SchemaRef) -> Result<Journal, String> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let writer = StreamWriter::try_new_buffered(file, schema).map_err(|e| {
            let _ = std::fs::remove_file(&path);
            format!("{}: {e}", path.display())
        })?;
        Ok(Journal {
            path,
            writer,
            batches: 0,
        })
    }

    fn append(&mut self, batch: &RecordBatch) -> Result<(), String> {
        self.writer
            .write(batch)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.batches += 1;
        Ok(())
    }

    /// A reader from the journal's start (what was written so far is flushed first).
    fn reader(&mut self) -> Result<StreamReader<BufReader<File>>, String> {
        let at = |e: &dyn std::fmt::Display| format!("{}: {e}", self.path.display());
        self.writer.get_mut().flush().map_err(|e| at(&e))?;
        let file = File::open(&self.path).map_err(|e| at(&e))?;
        StreamReader::try_new(BufReader::new(file), None).map_err(|e| at(&e))
    }
}

impl Iterator for Lent {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        if let Some((reader, left)) = &mut self.replay {
            if *left > 0 {
                *left -= 1;
                return match reader.next() {
                    Some(Ok(b)) => Some(Ok(b)),
                    Some(Err(e)) => Some(Err(ArrowError::ExternalError(
                        format!("replaying the input journal failed: {e}").into(),
                    ))),
                    None => Some(Err(ArrowError::ExternalError(
                        "the input journal ended before the batches it recorded".into(),
                    ))),
                };
            }
            self.replay = None;
        }
        let mut sh = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = &sh.failed {
            return Some(Err(ArrowError::ExternalError(e.clone().into())));
        }
        sh.pulled = true;
        let next = sh.stream.next();
        match &next {
            Some(Ok(b)) => {
                if let Some(j) = sh.journal.as_mut()
                    && let Err(e) = j.append(b)
                {
                    // This attempt goes on; only a later one could have needed the journal.
                    sh.broken = Some(e);
                    sh.journal = None;
                }
            }
            Some(Err(e)) => sh.failed = Some(e.to_string()),
            None => {}
        }
        next
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
    use std::sync::atomic::Ordering;

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

    fn values(batches: impl Iterator<Item = Result<RecordBatch, ArrowError>>) -> Vec<i64> {
        batches
            .flat_map(|b| {
                let b = b.unwrap();
                let a = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .clone();
                a.values().to_vec()
            })
            .collect()
    }

    #[test]
    fn a_journaled_input_is_lent_again_from_its_start_after_a_partly_read_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("load.df.arrows");
        let (src, pulled) = source(6);
        let l = Lendable::journaled(src, path.clone());
        // Attempt 1 reads two batches and fails.
        let first = values(l.lend().take(2));
        assert_eq!(first, [vec![0i64; 10], vec![1; 10]].concat());
        assert_eq!(l.why_not_again(), None);
        // Attempt 2 replays those two, reads one more live, and fails.
        let second = values(l.lend().take(3));
        assert_eq!(second, [vec![0i64; 10], vec![1; 10], vec![2; 10]].concat());
        // Attempt 3 sees every batch exactly once, in order; the source was pulled once per batch.
        let all = values(l.lend());
        let expected: Vec<i64> = (0..6).flat_map(|i| vec![i as i64; 10]).collect();
        assert_eq!(all, expected);
        assert_eq!(pulled.load(Ordering::SeqCst), 6);
        // The journal is private to the run and goes with the input.
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        drop(l);
        assert!(!path.exists(), "the journal is removed with the input");
    }

    #[test]
    fn an_input_without_a_usable_journal_cannot_be_lent_again_once_read_and_says_why() {
        let (src, _) = source(3);
        let l = Lendable::new(src);
        assert_eq!(l.why_not_again(), None);
        assert_eq!(values(l.lend().take(1)).len(), 10);
        assert_eq!(l.why_not_again().as_deref(), Some("it is not journaled"));

        // A journal that cannot be created (its directory is missing) leaves a plain input, and the reason.
        let (src, _) = source(3);
        let l = Lendable::journaled(src, PathBuf::from("/nonexistent-dir/j.arrows"));
        assert_eq!(values(l.lend().take(1)).len(), 10);
        let why = l.why_not_again().unwrap();
        assert!(
            why.contains("journal") && why.contains("/nonexistent-dir/j.arrows"),
            "{why}"
        );
    }
}
