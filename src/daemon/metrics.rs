//! Prometheus metrics of the daemon, in an explicit registry (no globals), rendered in
//! the text format for `GET /metrics`. Families:
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `promptsync_reconcile_total` | counter | `trigger`, `result` (`success`, `partial`, `transient`, `stalled`, `fatal`) |
//! | `promptsync_reconcile_duration_seconds` | histogram | |
//! | `promptsync_last_success_timestamp_seconds` | gauge | |
//! | `promptsync_prompts` | gauge | `state` (`managed`, `invalid`, `drifted`, `suspended`; `unmanaged`: remote prompts no file names, from the last full pass) |
//! | `promptsync_versions_created_total` | counter | |
//! | `promptsync_deploys_total` | counter | |
//! | `promptsync_api_requests_total` | counter | `method`, `code` (`error` when no answer came) |
//! | `promptsync_watcher_rescans_total` | counter | |
//! | `promptsync_http_refused_total` | counter | `reason` (`evicted`, `connection_cap`, `out_of_descriptors`: connections; `body_too_large`, `unauthorized`, `forbidden`, `rate_limited`: requests) |
//! | `promptsync_notify_deliveries_total` | counter | `receiver`, `result` (`delivered`, `failed`: given up after retries or refused, `dropped`: the queue was full, `held`: coalesced by `notify.min_interval`) |
//! | `promptsync_notify_retries_total` | counter | `receiver` |
//! | `promptsync_notify_pending` | gauge | `receiver` (messages waiting or being retried) |
//! | `promptsync_webhook_requests_total` | counter | `provider` (`github`, `gitlab`, `generic`), `result` (`accepted`: a look follows; `ignored`: another branch, no path that matters, another event; `duplicate`; `ping`; `unauthorized`; `too_large`; `bad_request`; `no_source`; `not_configured`) |
//! | `promptsync_build_info` | gauge (1) | `version` |
//!
//! With `[targets]`, a daemon of one target labels every family with `target`. A daemon
//! of several labels the families of a target's passes (`reconcile`, its duration,
//! `last_success`, `prompts`, `versions_created`, `deploys`, `api_requests`) with
//! `target`, one series per target; the rest are the daemon's, unlabelled.
//!
//! Nothing here carries configuration or the key.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use super::status::Counts;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    trigger: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    receiver: String,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    provider: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReceiverLabels {
    receiver: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// The daemon's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    reconcile: Family<ReconcileLabels, Counter>,
    duration: Histogram,
    last_success: Gauge<f64, AtomicU64>,
    prompts: Family<StateLabels, Gauge>,
    versions_created: Counter,
    deploys: Counter,
    api_requests: Family<RequestLabels, Counter>,
    rescans: Counter,
    refused: Family<RefusedLabels, Counter>,
    notify_deliveries: Family<DeliveryLabels, Counter>,
    notify_retries: Family<ReceiverLabels, Counter>,
    notify_pending: Family<ReceiverLabels, Gauge>,
    /// The notifier whose receivers the `notify` families count, read at each
    /// rendering (its workers keep the counts); the lock keeps two renderings from
    /// adding the same delivery twice.
    notices: std::sync::Mutex<Option<super::notices::Shared>>,
    webhooks: Family<WebhookLabels, Counter>,
    /// A daemon of several targets: each target's metrics (its families rendered in
    /// place of this registry's own).
    targets: std::sync::OnceLock<Vec<std::sync::Arc<Metrics>>>,
}

/// The families a target's passes count: per target in a daemon of several.
const PER_TARGET: [&str; 7] = [
    "promptsync_reconcile",
    "promptsync_reconcile_duration_seconds",
    "promptsync_last_success_timestamp_seconds",
    "promptsync_prompts",
    "promptsync_versions_created",
    "promptsync_deploys",
    "promptsync_api_requests",
];

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        Metrics::for_target(None)
    }

    /// With `[targets]`: every family carries the label `target` (the daemon's).
    /// Without, no such label: the metrics are as they were before targets.
    pub(crate) fn for_target(target: Option<&str>) -> Metrics {
        let mut registry = match target {
            Some(target) => Registry::with_labels(std::iter::once((
                std::borrow::Cow::Borrowed("target"),
                std::borrow::Cow::Owned(target.to_owned()),
            ))),
            None => Registry::default(),
        };
        let reconcile = Family::<ReconcileLabels, Counter>::default();
        // 10 ms to about 20 minutes.
        let duration = Histogram::new(exponential_buckets(0.01, 2.0, 18));
        let last_success = Gauge::<f64, AtomicU64>::default();
        let prompts = Family::<StateLabels, Gauge>::default();
        let versions_created = Counter::default();
        let deploys = Counter::default();
        let api_requests = Family::<RequestLabels, Counter>::default();
        let rescans = Counter::default();
        let refused = Family::<RefusedLabels, Counter>::default();
        let notify_deliveries = Family::<DeliveryLabels, Counter>::default();
        let notify_retries = Family::<ReceiverLabels, Counter>::default();
        let notify_pending = Family::<ReceiverLabels, Gauge>::default();
        let webhooks = Family::<WebhookLabels, Counter>::default();
        // The registry adds `_total` to counters and `_info` to info metrics.
        registry.register(
            "promptsync_reconcile",
            "Reconcile passes, by trigger and result",
            reconcile.clone(),
        );
        registry.register(
            "promptsync_reconcile_duration_seconds",
            "Duration of reconcile passes",
            duration.clone(),
        );
        registry.register(
            "promptsync_last_success_timestamp_seconds",
            "Unix time of the last pass without a failed prompt or an invalid file",
            last_success.clone(),
        );
        registry.register(
            "promptsync_prompts",
            "Prompt files of the last pass, by state",
            prompts.clone(),
        );
        registry.register(
            "promptsync_versions_created",
            "Prompt versions created or edited",
            versions_created.clone(),
        );
        registry.register("promptsync_deploys", "Versions made live", deploys.clone());
        registry.register(
            "promptsync_api_requests",
            "Requests to the Respan API, by method and status code",
            api_requests.clone(),
        );
        registry.register(
            "promptsync_watcher_rescans",
            "Times file system events were lost and everything was read again",
            rescans.clone(),
        );
        registry.register(
            "promptsync_http_refused",
            "Probe server connections closed and requests refused, by reason",
            refused.clone(),
        );
        registry.register(
            "promptsync_notify_deliveries",
            "Notification messages, by receiver and what became of them",
            notify_deliveries.clone(),
        );
        registry.register(
            "promptsync_notify_retries",
            "Notification deliveries retried, by receiver",
            notify_retries.clone(),
        );
        registry.register(
            "promptsync_notify_pending",
            "Notification messages waiting or being retried, by receiver",
            notify_pending.clone(),
        );
        registry.register(
            "promptsync_webhook_requests",
            "Webhook requests on /hooks/*, by provider and what came of them",
            webhooks.clone(),
        );
        registry.register(
            "promptsync_build",
            "The running build",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        for state in ["managed", "invalid", "drifted", "suspended"] {
            prompts.get_or_create(&StateLabels { state }).set(0);
        }
        Metrics {
            registry,
            reconcile,
            duration,
            last_success,
            prompts,
            versions_created,
            deploys,
            api_requests,
            rescans,
            refused,
            notify_deliveries,
            notify_retries,
            notify_pending,
            notices: std::sync::Mutex::new(None),
            webhooks,
            targets: std::sync::OnceLock::new(),
        }
    }

    /// Make these the metrics of a daemon of several targets: the families of
    /// [`PER_TARGET`] come from each target's own metrics (made with
    /// [`Metrics::for_target`]), one series per target (set once, at start).
    pub(crate) fn set_targets(&self, targets: Vec<std::sync::Arc<Metrics>>) {
        let _ = self.targets.set(targets);
    }

    /// Count what the receivers of `notices` did (set once, at start).
    pub(crate) fn set_notices(&self, notices: super::notices::Shared) {
        *self
            .notices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(notices);
    }

    /// Bring the `notify` families up to the receivers' own counts.
    fn read_notices(&self) {
        let notices = self
            .notices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(receivers) = notices.as_ref().and_then(super::notices::Shared::receivers) else {
            return;
        };
        let to = |counter: &Counter, count: u64| {
            counter.inc_by(count.saturating_sub(counter.get()));
        };
        for r in receivers {
            for (result, count) in [
                ("delivered", r.delivered),
                ("failed", r.failed),
                ("dropped", r.dropped),
                ("held", r.held),
            ] {
                let labels = DeliveryLabels {
                    receiver: r.receiver.clone(),
                    result,
                };
                to(&self.notify_deliveries.get_or_create(&labels), count);
            }
            let labels = ReceiverLabels {
                receiver: r.receiver.clone(),
            };
            to(&self.notify_retries.get_or_create(&labels), r.retries);
            self.notify_pending
                .get_or_create(&labels)
                .set(i64::try_from(r.pending).unwrap_or(i64::MAX));
        }
    }

    /// A pass ended: `result` is its outcome label, `counts` what it did (absent when
    /// it ended early).
    pub(crate) fn pass(
        &self,
        trigger: &'static str,
        result: &'static str,
        seconds: f64,
        counts: Option<&Counts>,
    ) {
        self.reconcile
            .get_or_create(&ReconcileLabels { trigger, result })
            .inc();
        self.duration.observe(seconds);
        if result == "success" {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.last_success.set(now);
        }
        if let Some(counts) = counts {
            self.versions_created
                .inc_by((counts.created + counts.updated) as u64);
            self.deploys.inc_by(counts.deployed as u64);
        }
    }

    /// The prompt files of the last pass, by state.
    pub(crate) fn prompts(&self, managed: usize, invalid: usize, drifted: usize, suspended: usize) {
        for (state, n) in [
            ("managed", managed),
            ("invalid", invalid),
            ("drifted", drifted),
            ("suspended", suspended),
        ] {
            self.prompts
                .get_or_create(&StateLabels { state })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Remote prompts no file names (from a pass that listed the account).
    pub(crate) fn unmanaged(&self, count: usize) {
        self.prompts
            .get_or_create(&StateLabels { state: "unmanaged" })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// One API request answered with `code` (`None`: no answer).
    pub(crate) fn api_request(&self, method: &'static str, code: Option<u16>) {
        let code = code.map_or_else(|| "error".to_owned(), |c| c.to_string());
        self.api_requests
            .get_or_create(&RequestLabels { method, code })
            .inc();
    }

    pub(crate) fn rescan(&self) {
        self.rescans.inc();
    }

    /// The probe server closed a connection or refused a request, for `reason`.
    pub(crate) fn http_refused(&self, reason: &'static str) {
        self.refused.get_or_create(&RefusedLabels { reason }).inc();
    }

    /// A webhook request from `provider` came to `result`.
    pub(crate) fn webhook(&self, provider: &'static str, result: &'static str) {
        self.webhooks
            .get_or_create(&WebhookLabels { provider, result })
            .inc();
    }

    /// The Prometheus text format.
    pub(crate) fn render(&self) -> String {
        self.read_notices();
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        match self.targets.get() {
            Some(targets) => {
                let targets: Vec<String> = targets.iter().map(|t| t.render()).collect();
                merged(&text, &targets)
            }
            None => text,
        }
    }
}

/// The text of a daemon of several targets: the families of [`PER_TARGET`] with the
/// samples of every target's text (one `HELP` and `TYPE` each: a family's samples
/// stay together, as the format requires), then `daemon`'s other families.
fn merged(daemon: &str, targets: &[String]) -> String {
    let parsed: Vec<Vec<(&str, Vec<&str>)>> = targets.iter().map(|t| families(t)).collect();
    let mut out = String::with_capacity(daemon.len() * (targets.len() + 1));
    let mut push = |line: &str| {
        out.push_str(line);
        out.push('\n');
    };
    for name in PER_TARGET {
        let mut header = true;
        for target in &parsed {
            let Some((_, lines)) = target.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            for line in lines {
                // One `HELP` and `TYPE` (from the first target), then samples.
                if !line.starts_with('#') || header {
                    push(line);
                }
            }
            header = false;
        }
    }
    for (name, lines) in families(daemon) {
        if !PER_TARGET.contains(&name) {
            lines.iter().for_each(|line| push(line));
        }
    }
    push("# EOF");
    out
}

/// The families of a rendered text, in order: each name (from its `# HELP` line) with
/// its lines; `# EOF` left out.
fn families(text: &str) -> Vec<(&str, Vec<&str>)> {
    let mut families: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        if line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            families.push((name, vec![line]));
        } else if let Some((_, lines)) = families.last_mut() {
            lines.push(line);
        }
    }
    families
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_rendered_with_its_documented_name() {
        let metrics = Metrics::new();
        metrics.pass(
            "files",
            "success",
            0.25,
            Some(&Counts {
                created: 1,
                updated: 2,
                deployed: 1,
                ..Counts::default()
            }),
        );
        metrics.prompts(3, 1, 0, 0);
        metrics.api_request("POST", Some(201));
        metrics.api_request("GET", None);
        metrics.rescan();
        metrics.http_refused("rate_limited");
        let text = metrics.render();
        for line in [
            "promptsync_reconcile_total{trigger=\"files\",result=\"success\"} 1",
            "promptsync_reconcile_duration_seconds_count 1",
            "promptsync_versions_created_total 3",
            "promptsync_deploys_total 1",
            "promptsync_prompts{state=\"managed\"} 3",
            "promptsync_prompts{state=\"invalid\"} 1",
            "promptsync_api_requests_total{method=\"POST\",code=\"201\"} 1",
            "promptsync_api_requests_total{method=\"GET\",code=\"error\"} 1",
            "promptsync_watcher_rescans_total 1",
            "promptsync_http_refused_total{reason=\"rate_limited\"} 1",
            "promptsync_build_info{version=\"",
            "promptsync_last_success_timestamp_seconds ",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn several_targets_share_one_family_each_with_a_series_per_target() {
        let daemon = Metrics::new();
        let staging = std::sync::Arc::new(Metrics::for_target(Some("staging")));
        let production = std::sync::Arc::new(Metrics::for_target(Some("production")));
        daemon.set_targets(vec![staging.clone(), production.clone()]);
        staging.pass("files", "success", 0.1, None);
        production.pass("files", "stalled", 0.0, None);
        staging.api_request("GET", Some(200));
        production.api_request("GET", Some(401));
        daemon.http_refused("rate_limited");
        let text = daemon.render();
        for line in [
            "promptsync_reconcile_total{target=\"staging\",trigger=\"files\",result=\"success\"} 1",
            "promptsync_reconcile_total{target=\"production\",trigger=\"files\",result=\"stalled\"} 1",
            "promptsync_reconcile_duration_seconds_count{target=\"production\"} 1",
            "promptsync_prompts{target=\"staging\",state=\"managed\"} 0",
            "promptsync_http_refused_total{reason=\"rate_limited\"} 1",
            "promptsync_api_requests_total{target=\"production\",method=\"GET\",code=\"401\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        // Each family once, its samples together, and the text ends as the format says.
        for name in PER_TARGET
            .iter()
            .chain(&["promptsync_http_refused", "promptsync_build"])
        {
            let help = format!("# HELP {name} ");
            assert_eq!(text.matches(&help).count(), 1, "{name} in\n{text}");
        }
        assert!(
            !text.contains("target=\"staging\"} 1\n# HELP promptsync_http"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1);
    }
}
