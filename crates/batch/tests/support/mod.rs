//! Shared test handlers: one that records every batch and can be held busy on demand.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different part

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mltb_batch::BatchHandler;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

/// One handler call as the handler saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub items: Vec<u32>,
    /// When the call started (tokio's clock, so exact under a paused clock).
    pub at: Instant,
}

/// What a [`Recorder`] does besides recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Returns `item * 2` for each item.
    Double,
    /// Fails the whole batch when it contains this item.
    FailOn(u32),
    /// Panics when the batch contains this item.
    PanicOn(u32),
    /// Returns one result too few when the batch contains this item.
    ShortOn(u32),
}

/// A handler that records every call, optionally waits for a permit from `gate` before
/// returning (so a test decides when the handler is busy), and optionally takes
/// `cost` of (paused-clock) time.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub calls: Arc<Mutex<Vec<Call>>>,
    pub gate: Option<Arc<Semaphore>>,
    pub cost: Duration,
    pub behaviour: Behaviour,
    entered: mpsc::UnboundedSender<Vec<u32>>,
}

/// The test's side of a [`Recorder`].
#[derive(Debug)]
pub struct Probe {
    pub calls: Arc<Mutex<Vec<Call>>>,
    pub gate: Arc<Semaphore>,
    entered: mpsc::UnboundedReceiver<Vec<u32>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("item {0} is poison")]
pub struct Poison(pub u32);

impl Recorder {
    /// A recorder that returns at once.
    pub fn open() -> (Self, Probe) {
        Self::new(false)
    }

    /// A recorder whose every call waits for one permit from `probe.gate`.
    pub fn gated() -> (Self, Probe) {
        Self::new(true)
    }

    fn new(gated: bool) -> (Self, Probe) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Semaphore::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        let recorder = Recorder {
            calls: Arc::clone(&calls),
            gate: gated.then(|| Arc::clone(&gate)),
            cost: Duration::ZERO,
            behaviour: Behaviour::Double,
            entered: tx,
        };
        (recorder, Probe { calls, gate, entered: rx })
    }

    pub fn cost(mut self, cost: Duration) -> Self {
        self.cost = cost;
        self
    }

    pub fn behaviour(mut self, behaviour: Behaviour) -> Self {
        self.behaviour = behaviour;
        self
    }
}

impl BatchHandler<u32> for Recorder {
    type Output = u64;
    type Error = Poison;

    async fn handle(&self, items: Vec<u32>) -> Result<Vec<u64>, Poison> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Call { items: items.clone(), at: Instant::now() });
        let _ = self.entered.send(items.clone());
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("gate is never closed").forget();
        }
        if !self.cost.is_zero() {
            tokio::time::sleep(self.cost).await;
        }
        let doubled = items.iter().map(|&i| u64::from(i) * 2).collect::<Vec<_>>();
        match self.behaviour {
            Behaviour::FailOn(x) if items.contains(&x) => Err(Poison(x)),
            Behaviour::PanicOn(x) if items.contains(&x) => panic!("poison item {x}"),
            Behaviour::ShortOn(x) if items.contains(&x) => Ok(doubled[1..].to_vec()),
            _ => Ok(doubled),
        }
    }
}

impl Probe {
    /// Waits until a handler call starts and returns its items.
    pub async fn entered(&mut self) -> Vec<u32> {
        self.entered.recv().await.expect("the recorder lives as long as the batcher")
    }

    /// Lets `n` gated handler calls return.
    pub fn release(&self, n: usize) {
        self.gate.add_permits(n);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The items of every call so far.
    pub fn batches(&self) -> Vec<Vec<u32>> {
        self.calls().into_iter().map(|c| c.items).collect()
    }
}
