//! Audit entries from many tasks, written in batches: each caller learns its own entry's id.
//!
//! Run: `cargo run -p mltb-batch --example audit_log`
#![allow(clippy::print_stdout)] // an example reports on stdout

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mltb_batch::{BatchHandler, BatchObserver, Batcher, Completed, Dispatched};

/// Stands in for a table: one "INSERT ... VALUES (..), (..) RETURNING id" per batch.
#[derive(Debug, Default)]
struct AuditTable {
    next_id: AtomicU64,
}

impl BatchHandler<String> for AuditTable {
    type Output = u64;
    type Error = std::io::Error;

    async fn handle(&self, entries: Vec<String>) -> Result<Vec<u64>, std::io::Error> {
        // The round trip costs the same for one row or a hundred.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let first = self.next_id.fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok((first..first + entries.len() as u64).collect())
    }
}

/// Prints every batch; a real observer would feed metrics.
#[derive(Debug)]
struct Log;

impl BatchObserver for Log {
    fn on_dispatch(&self, batch: &Dispatched) {
        println!(
            "batch of {:>3} ({:>5} bytes) because {:<5}, {} still queued",
            batch.size, batch.bytes, batch.reason, batch.queue_depth
        );
    }

    fn on_complete(&self, batch: &Completed) {
        println!("  done in {:?}: {:?}", batch.duration, batch.outcome);
    }
}

#[tokio::main]
async fn main() -> mltb_batch::Result<()> {
    let audit = Batcher::builder()
        .max_items(50)
        .weigher(|entry: &String| entry.len())
        .max_bytes(4096)
        .observer(Log)
        .build(AuditTable::default())?;

    // A quiet moment: one entry goes at once.
    let id = audit.submit("bot started".to_owned()).await?;
    println!("first entry got id {id}");

    // A burst: 200 users at once; entries share batches while the table is busy.
    let ids = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let tasks: Vec<tokio::task::JoinHandle<mltb_batch::Result<()>>> = (0..200)
        .map(|user| {
            let (audit, ids) = (audit.clone(), Arc::clone(&ids));
            tokio::spawn(async move {
                let id = audit.submit(format!("user {user} ran /mirror")).await?;
                ids.lock().await.push(id);
                Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task ran")?;
    }

    audit.shutdown().await;
    let stats = audit.stats();
    println!(
        "{} entries in {} batches (mean {:.1}); {} ids handed out",
        stats.dispatched,
        stats.batches,
        stats.mean_batch_size(),
        ids.lock().await.len()
    );
    Ok(())
}
