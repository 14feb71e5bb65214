//! What a restore does when a statement or a data unit fails: stop at the
//! first failure (`--exit-on-error`, the default) or record it and go on
//! (`--continue-on-error`), reporting every failure and their count at the
//! end. An interruption always stops.

use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

/// pg_restore's `--exit-on-error` (pgkeep's default) or its default of
/// going on past errors (`--continue-on-error` here).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnError {
    #[default]
    Exit,
    Continue,
}

/// The failures a `--continue-on-error` restore went past, shared by its
/// connections.
#[derive(Clone, Debug, Default)]
pub struct Failed {
    mode: OnError,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Failed {
    pub fn new(mode: OnError) -> Failed {
        Failed {
            mode,
            seen: Arc::default(),
        }
    }

    /// Whether failures are recorded and the restore goes on.
    pub fn keeps_going(&self) -> bool {
        self.mode == OnError::Continue
    }

    /// Records `e` and returns `Ok` when going on past failures; hands it
    /// back otherwise, and always for an interruption, damage in the
    /// archive (exit 3: nothing after it can be trusted) and a lost
    /// connection (every later statement on it would fail too).
    pub fn absorb(&self, e: Error) -> Result<()> {
        let lost = matches!(&e, Error::Db { source, .. } if source.is_closed());
        if !self.keeps_going() || matches!(e, Error::Interrupted(_)) || e.exit_code() == 3 || lost {
            return Err(e);
        }
        let text = crate::redact::redact(&e.to_string());
        tracing::warn!(error = %text, "failed; going on (--continue-on-error)");
        self.seen
            .lock()
            .map_err(|_| Error::Internal("restore failure list poisoned".into()))?
            .push(text);
        Ok(())
    }

    /// Whether no failure was recorded.
    pub fn is_empty(&self) -> bool {
        self.seen.lock().map(|v| v.is_empty()).unwrap_or(false)
    }

    /// Every failure recorded so far, in the order they happened.
    pub fn list(&self) -> Vec<String> {
        self.seen.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_hands_back_continue_records_and_interruptions_stop() {
        let exit = Failed::new(OnError::Exit);
        assert!(exit.absorb(Error::Config("x".into())).is_err());
        assert!(exit.list().is_empty());
        let go = Failed::new(OnError::Continue);
        go.absorb(Error::Config("first".into())).unwrap();
        go.clone().absorb(Error::Config("second".into())).unwrap();
        assert!(go.absorb(Error::Interrupted("stop".into())).is_err());
        assert!(go
            .absorb(Error::Integrity {
                object: "pack".into(),
                message: "hash".into()
            })
            .is_err());
        let list = go.list();
        assert_eq!(list.len(), 2);
        assert!(list[0].contains("first") && list[1].contains("second"));
    }
}
