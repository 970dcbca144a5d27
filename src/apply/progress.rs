//! The progress of a pass's changes as log lines (how many of how many, for how
//! long, when done): presentation, for the CLI without a terminal and the daemon.

use super::*;

/// Progress as log lines, for where no progress bar can be drawn (CI logs, the
/// daemon): one line every [`PROGRESS_EVERY`] while changes are applied, with the
/// count and an estimate of the time left. A pass shorter than that logs nothing.
#[derive(Debug)]
pub(crate) struct ProgressLog {
    every: std::time::Duration,
    state: std::sync::Mutex<ProgressState>,
}

/// How often [`ProgressLog`] logs.
pub(crate) const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug)]
struct ProgressState {
    planned: usize,
    applied: usize,
    started: std::time::Instant,
    logged: std::time::Instant,
}

impl Default for ProgressLog {
    fn default() -> Self {
        ProgressLog::every(PROGRESS_EVERY)
    }
}

impl ProgressLog {
    /// A line at most every `every`.
    pub(crate) fn every(every: std::time::Duration) -> ProgressLog {
        let now = std::time::Instant::now();
        ProgressLog {
            every,
            state: std::sync::Mutex::new(ProgressState {
                planned: 0,
                applied: 0,
                started: now,
                logged: now,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Observer for ProgressLog {
    fn planned(&self, changes: usize) {
        let mut state = self.lock();
        if state.planned == 0 {
            state.started = std::time::Instant::now();
            state.logged = state.started;
        }
        state.planned += changes;
    }

    fn applied(&self) {
        let mut state = self.lock();
        state.applied += 1;
        let now = std::time::Instant::now();
        if now.duration_since(state.logged) < self.every || state.applied >= state.planned {
            return;
        }
        state.logged = now;
        let elapsed = now.duration_since(state.started).as_secs_f64();
        let left = elapsed / state.applied as f64 * (state.planned - state.applied) as f64;
        tracing::info!(
            applied = state.applied,
            planned = state.planned,
            eta_s = left.round() as u64,
            "applying changes: {} of {} done, about {}s left",
            state.applied,
            state.planned,
            left.round() as u64
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_say_how_far_and_how_long() {
        let out = tempfile::NamedTempFile::new().unwrap();
        let settings = crate::logging::LogSettings {
            format: crate::logging::LogFormat::Json,
            format_is_default: false,
            filter: "info".to_owned(),
        };
        let subscriber =
            crate::logging::subscriber(&settings, None, out.reopen().unwrap(), false).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let progress = ProgressLog::every(std::time::Duration::ZERO);
            progress.planned(4);
            for _ in 0..4 {
                progress.applied();
            }
        });
        let text = std::fs::read_to_string(out.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "none after the last change: {text}");
        assert!(
            lines[0].contains("\"applied\":1") && lines[0].contains("\"planned\":4"),
            "{text}"
        );
        assert!(lines[2].contains("3 of 4 done"), "{text}");
        assert!(lines[2].contains("\"eta_s\":"), "{text}");
    }

    #[test]
    fn a_short_pass_logs_no_progress() {
        let progress = ProgressLog::default();
        progress.planned(2);
        progress.applied();
        let state = progress.lock();
        assert_eq!(state.applied, 1);
        assert!(state.logged == state.started, "nothing was logged");
    }
}
