//! The one way a long call into the core gives Python its turn: while the core works
//! without the GIL (progress ticks of an annotation or ingestion, or a wait for storage).

use std::time::{Duration, Instant};

use anyvar_core::Error;
use pyo3::prelude::*;

use crate::to_py;

/// Python's turns during one call into the core that runs without the GIL: each turn handles
/// signals (Ctrl-C, Celery's time limits) and runs a callback; what either raises is kept and
/// the core is told to stop (`Error::Cancelled`), so the call ends raising it.
#[derive(Default)]
pub(crate) struct Turns {
    raised: Option<PyErr>,
}

impl Turns {
    pub(crate) fn take(
        &mut self,
        call: impl FnOnce(Python<'_>) -> PyResult<()>,
    ) -> anyvar_core::Result<()> {
        Python::attach(|py| {
            py.check_signals()?;
            call(py)
        })
        .map_err(|e| {
            self.raised = Some(e);
            Error::Cancelled
        })
    }

    /// The exception for the core's error: what Python raised, if that is why it stopped.
    pub(crate) fn error(self, e: Error) -> PyErr {
        match (e, self.raised) {
            (Error::Cancelled, Some(raised)) => raised,
            (e, _) => to_py(e),
        }
    }
}

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
