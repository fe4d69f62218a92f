//! The one way a long call into the core gives Python its turn.

use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// How often a wait wakes to let Python handle signals and report progress.
const TICK: Duration = Duration::from_millis(250);

/// Waits without the GIL until `finished()`, waking every quarter of a second to let Python
/// handle signals (Ctrl-C, Celery's time limits) and to call `tick`. What either raises is
/// kept and raised once the work finished: work that stores data is never cut short.
pub(crate) fn wait_detached(
    py: Python<'_>,
    finished: impl Fn() -> bool + Sync,
    mut tick: impl FnMut(Python<'_>) -> PyResult<()>,
) -> PyResult<()> {
    let mut raised: Option<PyErr> = None;
    loop {
        let done = py.detach(|| {
            let until = Instant::now() + TICK;
            while !finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            finished()
        });
        if done {
            break;
        }
        if raised.is_none() {
            raised = py.check_signals().and_then(|()| tick(py)).err();
        }
    }
    raised.map_or(Ok(()), Err)
}
