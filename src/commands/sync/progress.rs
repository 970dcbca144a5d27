//! The progress of a pass that sends changes, for people: a bar on a terminal, log
//! lines in CI logs.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};

use crate::apply::{Observer, ProgressLog};

/// (cleared when the pass ends), log lines every few seconds elsewhere (CI logs).
pub(super) enum Progress {
    Bar(ProgressBar),
    Log(ProgressLog),
    Quiet,
}

impl Progress {
    /// `shown`: progress is wanted at all; `bar`: the logs are for people, so a bar
    /// may share their terminal.
    pub(super) fn new(shown: bool, bar: bool) -> Progress {
        if !shown {
            return Progress::Quiet;
        }
        if !bar || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return Progress::Log(ProgressLog::default());
        }
        Progress::Bar(
            ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(
                        "{spinner} {pos}/{len} changes applied {wide_bar} {eta} left",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                )
                .with_finish(ProgressFinish::AndClear),
        )
    }
}

impl Observer for Progress {
    fn planned(&self, changes: usize) {
        match self {
            Progress::Bar(bar) => bar.inc_length(changes as u64),
            Progress::Log(log) => log.planned(changes),
            Progress::Quiet => {}
        }
    }

    fn applied(&self) {
        match self {
            Progress::Bar(bar) => bar.inc(1),
            Progress::Log(log) => log.applied(),
            Progress::Quiet => {}
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_quiet_unless_shown_and_logs_where_no_bar_is_wanted() {
        let quiet = Progress::new(false, true);
        assert!(matches!(quiet, Progress::Quiet));
        quiet.planned(3);
        quiet.applied();
        // The logs are not for people (JSON logs): lines, never a bar.
        let log = Progress::new(true, false);
        assert!(matches!(log, Progress::Log(_)));
        log.planned(2);
        log.applied();
        log.applied();
    }
}
