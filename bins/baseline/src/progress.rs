//! A progress bar on stderr while a run goes on (only when stderr is a terminal).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use mltb_loadgen::Progress;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The bar's drawing task.
pub(crate) struct Bar {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Bar {
    /// Stops drawing and clears the line.
    pub(crate) async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Draws `progress` every 200 ms until finished.
pub(crate) fn spawn(progress: Arc<Progress>, label: String) -> Bar {
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = tick.tick() => draw(&progress, &label),
            }
        }
        let mut err = std::io::stderr();
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    });
    Bar { stop, task }
}

fn draw(progress: &Progress, label: &str) {
    const WIDTH: usize = 30;
    let s = progress.snapshot();
    let total = s.total.as_secs_f64().max(1e-9);
    let done = (s.elapsed.as_secs_f64() / total).clamp(0.0, 1.0);
    let filled = (done * WIDTH as f64).round() as usize;
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "\r\x1b[2K{label} [{}{}] {:>3.0}% {:.1}/{:.0} s  sent {}  done {}  failed {}",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        done * 100.0,
        s.elapsed.as_secs_f64().min(total),
        total,
        s.sent,
        s.done,
        s.failed
    );
    let _ = err.flush();
}
