//! What the replies kept from a server may hold together: [`MAX_HELD_BYTES`] of JSON
//! text and [`MAX_HELD_VALUES`] JSON values, counted as each reply is decoded. One
//! reply is bounded by itself (`decode`, `page`); this bounds many: a listing of many
//! pages, listings and versions read at once, so that no sequence of replies can push
//! the process past a container's memory limit. A client made for one pass
//! (`Client::for_one_pass`) counts everything the pass reads against one `Held`; any
//! other client counts each listing on its own. Knows nothing of HTTP.

use std::sync::atomic::{AtomicU64, Ordering};

/// The most JSON text the replies of one pass hold: 40 MiB (10,000 prompts with their
/// two versions in full take about 22 MiB).
pub(super) const MAX_HELD_BYTES: u64 = 40 * 1024 * 1024;
/// The most JSON values the replies of one pass hold: 1.2 million (10,000 prompts with
/// their two versions in full hold about 950,000). At about 75 bytes a value, under
/// 90 MiB of memory.
pub(super) const MAX_HELD_VALUES: u64 = 1_200_000;

/// What is left to hold.
#[derive(Debug)]
pub(crate) struct Held {
    bytes: AtomicU64,
    values: AtomicU64,
    /// For messages: what shares it ("the replies of this pass", plural).
    pub(crate) scope: &'static str,
}

/// The bound a reply went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    Bytes,
    Values,
}

impl Held {
    pub(crate) fn new(scope: &'static str) -> Held {
        Held {
            bytes: AtomicU64::new(MAX_HELD_BYTES),
            values: AtomicU64::new(MAX_HELD_VALUES),
            scope,
        }
    }

    /// JSON values that may still be built.
    pub(crate) fn values_left(&self) -> u64 {
        self.values.load(Ordering::Relaxed)
    }

    /// Count a decoded reply; `Err` with the bound it went past (nothing more is held
    /// after that: the caller drops the reply and fails).
    pub(crate) fn keep(&self, bytes: u64, values: u64) -> Result<(), Bound> {
        let take = |left: &AtomicU64, amount: u64| {
            left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                Some(left.saturating_sub(amount))
            })
            .is_ok_and(|before| before >= amount)
        };
        if !take(&self.values, values) {
            return Err(Bound::Values);
        }
        if !take(&self.bytes, bytes) {
            return Err(Bound::Bytes);
        }
        Ok(())
    }

    /// A bound gone past, for messages.
    pub(crate) fn text(&self, bound: Bound) -> String {
        let what = match bound {
            Bound::Bytes => format!("{MAX_HELD_BYTES} bytes of JSON"),
            Bound::Values => format!("{MAX_HELD_VALUES} JSON values"),
        };
        format!("{} hold more than {what}", self.scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_kept_is_counted_until_a_bound() {
        let held = Held::new("the replies of this pass");
        assert_eq!(held.keep(1000, MAX_HELD_VALUES - 10), Ok(()));
        assert_eq!(held.values_left(), 10);
        assert_eq!(held.keep(10, 11), Err(Bound::Values));
        assert_eq!(held.values_left(), 0);
        let held = Held::new("the replies of this listing");
        assert_eq!(held.keep(MAX_HELD_BYTES + 1, 1), Err(Bound::Bytes));
        assert_eq!(
            held.text(Bound::Bytes),
            format!("the replies of this listing hold more than {MAX_HELD_BYTES} bytes of JSON")
        );
    }
}
