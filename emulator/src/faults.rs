//! The fault model: latency, a global rate limit and the armed fault rules (what each
//! kind does, its parameters and their checks, how many times it fires), shared by the
//! admin endpoint, which arms them, and [`inject`](super::inject), which applies them
//! to requests ([`Faults::decide`]). The hostile kinds (endless paging, huge, garbage,
//! HTML and trickling bodies, redirects) are described here and answered with replies
//! that `hostile` builds. Knows nothing about connections or prompts.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A fixed delay before every API request, plus a random one up to `jitter_ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Latency {
    pub fixed_ms: u64,
    pub jitter_ms: u64,
}

impl Latency {
    pub(crate) fn sample(self) -> Duration {
        let jitter = if self.jitter_ms == 0 {
            0
        } else {
            fastrand::u64(0..=self.jitter_ms)
        };
        Duration::from_millis(self.fixed_ms.saturating_add(jitter))
    }
}

/// At most `requests` API requests per `window_ms` (a fixed window); the rest get
/// 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests: u32,
    #[serde(default = "one_second")]
    pub window_ms: u64,
}

fn one_second() -> u64 {
    1000
}

/// What an injected fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with `status` (429 carries `Retry-After`); with `after_apply`, the request
    /// runs first and its reply is replaced.
    Status,
    /// Close the connection without a reply and without running the request.
    DropBefore,
    /// Run the request (the change is applied), then close the connection unanswered.
    DropAfter,
    /// Wait `delay_ms` more, then answer normally (for client timeouts).
    Delay,
    /// Answer a list request with a page whose `next` is always set: the same items
    /// on every page, or new ones with `fresh`; `count` as given or per page.
    EndlessPages,
    /// Answer 200 with a body of `bytes` (default 1.5 GB) of valid-looking JSON,
    /// generated while it is sent; chunked unless `declare_length`.
    HugeBody,
    /// Answer 200 `application/json` with a body that is not valid JSON.
    GarbageJson,
    /// Answer 200 with an HTML page (a captive portal, a login proxy).
    Html,
    /// Answer 200 at once, then send the body (`bytes`, default 64 KiB) one byte per
    /// `interval_ms` (default 100).
    Trickle,
    /// Answer `status` (300 to 399, default 302) with `Location: location`.
    Redirect,
    /// Run the request, then change its JSON reply at `pointer` (see `rewrite.rs`).
    Rewrite,
}

impl FaultKind {
    /// The name in rules and in the request log.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FaultKind::Status => "status",
            FaultKind::DropBefore => "drop_before",
            FaultKind::DropAfter => "drop_after",
            FaultKind::Delay => "delay",
            FaultKind::EndlessPages => "endless_pages",
            FaultKind::HugeBody => "huge_body",
            FaultKind::GarbageJson => "garbage_json",
            FaultKind::Html => "html",
            FaultKind::Trickle => "trickle",
            FaultKind::Redirect => "redirect",
            FaultKind::Rewrite => "rewrite",
        }
    }
}

/// One fault for the next `times` API requests matching `method` and `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// An HTTP method, or `*` for any.
    #[serde(default = "any_method")]
    pub method: String,
    /// A glob over the path (no query): `*` stays within one segment, `**` spans many,
    /// e.g. `/api/prompts/*/versions/`.
    #[serde(default = "any_path")]
    pub path: String,
    #[serde(default = "once")]
    pub times: u32,
    pub kind: FaultKind,
    /// For `status`: 400 to 599.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Seconds for `Retry-After` (default 1 on a 429, none otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// For `status`: run the request first.
    #[serde(default)]
    pub after_apply: bool,
    /// For `delay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// For `huge_body` and `trickle`: the body's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// For `huge_body`: send `Content-Length` instead of a chunked body.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub declare_length: bool,
    /// For `trickle`: the pause between two bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// For `endless_pages`: new ids on every page (default: every page repeats the
    /// first).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fresh: bool,
    /// For `endless_pages`: the `count` every page claims (default: the page's own
    /// item count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// For `redirect`: the `Location` header (default `/api/moved/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// For `rewrite`: a JSON pointer into the reply, e.g. `/results/0/version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// For `rewrite`: the value put at `pointer`; absent removes what is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

fn any_method() -> String {
    "*".to_owned()
}

fn any_path() -> String {
    "/api/**".to_owned()
}

fn once() -> u32 {
    1
}

impl FaultRule {
    /// A rule of `kind` for the next API request, with no parameters.
    pub fn new(kind: FaultKind) -> FaultRule {
        FaultRule {
            method: any_method(),
            path: any_path(),
            times: once(),
            kind,
            status: None,
            retry_after: None,
            after_apply: false,
            delay_ms: None,
            bytes: None,
            declare_length: false,
            interval_ms: None,
            fresh: false,
            count: None,
            location: None,
            pointer: None,
            value: None,
        }
    }

    fn check(&self) -> Result<GlobMatcher, String> {
        use FaultKind::{Delay, EndlessPages, HugeBody, Redirect, Status, Trickle};
        if self.times == 0 {
            return Err("`times` must be at least 1".to_owned());
        }
        if !self.path.starts_with('/') {
            return Err(format!("`path` must start with `/`: {}", self.path));
        }
        match (self.kind, self.status, self.delay_ms) {
            (Status, Some(400..=599), _) | (Redirect, None | Some(300..=399), _) => {}
            (Status, _, _) => {
                return Err("a `status` fault needs `status` between 400 and 599".to_owned());
            }
            (Redirect, _, _) => {
                return Err("a `redirect` fault takes a `status` between 300 and 399".to_owned());
            }
            (Delay, _, None) => {
                return Err("a `delay` fault needs `delay_ms`".to_owned());
            }
            (_, Some(_), _) => {
                return Err("`status` only goes with kind `status` or `redirect`".to_owned());
            }
            _ => {}
        }
        // Each parameter with the kinds it belongs to.
        let parameters: [(&str, bool, &[FaultKind]); 7] = [
            ("delay_ms", self.delay_ms.is_some(), &[Delay]),
            ("bytes", self.bytes.is_some(), &[HugeBody, Trickle]),
            ("declare_length", self.declare_length, &[HugeBody]),
            ("interval_ms", self.interval_ms.is_some(), &[Trickle]),
            ("fresh", self.fresh, &[EndlessPages]),
            ("count", self.count.is_some(), &[EndlessPages]),
            ("location", self.location.is_some(), &[Redirect]),
        ];
        for (name, given, kinds) in parameters {
            if given && !kinds.contains(&self.kind) {
                let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
                return Err(format!(
                    "`{name}` only goes with kind `{}`",
                    names.join("` or `")
                ));
            }
        }
        if let Some(location) = &self.location
            && HeaderValue::from_str(location).is_err()
        {
            return Err(format!(
                "`location` is not a valid header value: {location:?}"
            ));
        }
        super::rewrite::check(
            self.kind == FaultKind::Rewrite,
            self.pointer.as_deref(),
            self.value.is_some(),
        )?;
        GlobBuilder::new(&self.path)
            .literal_separator(true)
            .build()
            .map(|glob| glob.compile_matcher())
            .map_err(|e| format!("invalid path glob {}: {e}", self.path))
    }

    fn matches(&self, matcher: &GlobMatcher, method: &str, path: &str) -> bool {
        (self.method == "*" || self.method.eq_ignore_ascii_case(method)) && matcher.is_match(path)
    }
}

#[derive(Debug)]
struct Armed {
    id: u64,
    rule: FaultRule,
    matcher: GlobMatcher,
    remaining: u32,
}

#[derive(Debug, Default)]
struct Inner {
    latency: Latency,
    rate_limit: Option<RateLimit>,
    /// Start of the current rate-limit window and requests admitted in it.
    window: Option<(Instant, u32)>,
    rules: Vec<Armed>,
    next_id: u64,
}

/// The fault settings in force, shared by the API layer and the admin endpoint.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    inner: Mutex<Inner>,
}

/// What the fault layer does with one request.
#[derive(Debug)]
pub(crate) struct Decision {
    pub(crate) delay: Duration,
    pub(crate) throttled: Option<u64>,
    pub(crate) rule: Option<FaultRule>,
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn latency(&self) -> Latency {
        self.lock().latency
    }

    pub(crate) fn set_latency(&self, latency: Latency) {
        self.lock().latency = latency;
    }

    pub(crate) fn rate_limit(&self) -> Option<RateLimit> {
        self.lock().rate_limit
    }

    pub(crate) fn set_rate_limit(&self, rate_limit: Option<RateLimit>) -> Result<(), String> {
        if let Some(limit) = rate_limit
            && (limit.requests == 0 || limit.window_ms == 0)
        {
            return Err("`rate_limit` needs `requests` and `window_ms` above 0".to_owned());
        }
        let mut inner = self.lock();
        inner.rate_limit = rate_limit;
        inner.window = None;
        Ok(())
    }

    /// Arm faults, in order; returns their ids. All are checked before any is armed.
    pub(crate) fn add_all(&self, rules: Vec<FaultRule>) -> Result<Vec<u64>, String> {
        let matchers = rules
            .iter()
            .map(FaultRule::check)
            .collect::<Result<Vec<_>, _>>()?;
        let mut inner = self.lock();
        let mut ids = Vec::with_capacity(rules.len());
        for (rule, matcher) in rules.into_iter().zip(matchers) {
            inner.next_id += 1;
            let id = inner.next_id;
            let remaining = rule.times;
            inner.rules.push(Armed {
                id,
                rule,
                matcher,
                remaining,
            });
            ids.push(id);
        }
        Ok(ids)
    }

    /// The armed faults with their ids and remaining counts.
    pub(crate) fn list(&self) -> Vec<Value> {
        self.lock()
            .rules
            .iter()
            .map(|armed| json!({"id": armed.id, "remaining": armed.remaining, "rule": armed.rule}))
            .collect()
    }

    pub(crate) fn clear(&self) {
        self.lock().rules.clear();
    }

    /// What to do with a request: its delay, then a throttle or the first armed rule
    /// that matches (which then fires once less).
    pub(crate) fn decide(&self, method: &str, path: &str) -> Decision {
        let mut inner = self.lock();
        let delay = inner.latency.sample();
        let throttled = inner.rate_limit.and_then(|limit| {
            let now = Instant::now();
            let window = Duration::from_millis(limit.window_ms);
            let (start, admitted) = match inner.window {
                Some((start, admitted)) if now.duration_since(start) < window => (start, admitted),
                _ => (now, 0),
            };
            if admitted < limit.requests {
                inner.window = Some((start, admitted + 1));
                None
            } else {
                let left = window.saturating_sub(now.duration_since(start));
                Some(left.as_secs_f64().ceil().max(1.0) as u64)
            }
        });
        if throttled.is_some() {
            return Decision {
                delay,
                throttled,
                rule: None,
            };
        }
        let position = inner
            .rules
            .iter()
            .position(|armed| armed.rule.matches(&armed.matcher, method, path));
        let rule = position.map(|i| {
            let armed = &mut inner.rules[i];
            armed.remaining -= 1;
            let rule = armed.rule.clone();
            if armed.remaining == 0 {
                inner.rules.remove(i);
            }
            rule
        });
        Decision {
            delay,
            throttled: None,
            rule,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(value: Value) -> FaultRule {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn rules_match_method_and_path_glob_and_run_out() {
        let faults = Faults::default();
        faults
            .add_all(vec![rule(json!({
                "method": "post", "path": "/api/prompts/*/versions/", "times": 2,
                "kind": "status", "status": 503,
            }))])
            .unwrap();
        assert!(
            faults
                .decide("GET", "/api/prompts/p1/versions/")
                .rule
                .is_none()
        );
        assert!(
            faults
                .decide("POST", "/api/prompts/p1/versions/3/")
                .rule
                .is_none()
        );
        assert!(
            faults
                .decide("POST", "/api/prompts/p1/versions/")
                .rule
                .is_some()
        );
        assert_eq!(faults.list()[0]["remaining"], json!(1));
        assert!(
            faults
                .decide("POST", "/api/prompts/p2/versions/")
                .rule
                .is_some()
        );
        assert!(
            faults
                .decide("POST", "/api/prompts/p2/versions/")
                .rule
                .is_none()
        );
        assert!(faults.list().is_empty());
    }

    #[test]
    fn bad_rules_are_refused() {
        let faults = Faults::default();
        for bad in [
            json!({"kind": "status"}),
            json!({"kind": "status", "status": 200}),
            json!({"kind": "delay"}),
            json!({"kind": "drop_after", "status": 500}),
            json!({"kind": "drop_before", "times": 0}),
            json!({"kind": "drop_before", "path": "api/x"}),
            json!({"kind": "drop_before", "path": "/api/[x"}),
            json!({"kind": "redirect", "status": 200}),
            json!({"kind": "redirect", "status": 404}),
            json!({"kind": "redirect", "location": "/a\nb"}),
            json!({"kind": "html", "location": "/x"}),
            json!({"kind": "status", "status": 500, "bytes": 10}),
            json!({"kind": "trickle", "declare_length": true}),
            json!({"kind": "huge_body", "interval_ms": 10}),
            json!({"kind": "garbage_json", "fresh": true}),
            json!({"kind": "delay", "delay_ms": 1, "count": 3}),
            json!({"kind": "drop_after", "delay_ms": 5}),
        ] {
            assert!(faults.add_all(vec![rule(bad.clone())]).is_err(), "{bad}");
        }
        let unknown: Result<FaultRule, _> =
            serde_json::from_value(json!({"kind": "drop_before", "staus": 500}));
        assert!(unknown.is_err());
    }

    #[test]
    fn hostile_rules_take_their_own_parameters() {
        let faults = Faults::default();
        for good in [
            json!({"kind": "endless_pages", "fresh": true, "count": 250}),
            json!({"kind": "huge_body", "bytes": 1000, "declare_length": true}),
            json!({"kind": "trickle", "bytes": 100, "interval_ms": 5}),
            json!({"kind": "redirect"}),
            json!({"kind": "redirect", "status": 308, "location": "http://127.0.0.1:9/api/"}),
            json!({"kind": "garbage_json"}),
            json!({"kind": "html"}),
        ] {
            assert!(faults.add_all(vec![rule(good.clone())]).is_ok(), "{good}");
        }
        let message = faults
            .add_all(vec![rule(json!({"kind": "html", "bytes": 5}))])
            .unwrap_err();
        assert_eq!(
            message,
            "`bytes` only goes with kind `huge_body` or `trickle`"
        );
        assert_eq!(
            serde_json::to_value(FaultRule::new(FaultKind::Html)).unwrap(),
            json!({"method": "*", "path": "/api/**", "times": 1, "kind": "html", "after_apply": false}),
            "unset parameters are left out"
        );
    }

    #[test]
    fn the_rate_limit_admits_n_per_window_then_says_when() {
        let faults = Faults::default();
        faults
            .set_rate_limit(Some(RateLimit {
                requests: 2,
                window_ms: 60_000,
            }))
            .unwrap();
        assert!(faults.decide("GET", "/api/x/").throttled.is_none());
        assert!(faults.decide("GET", "/api/x/").throttled.is_none());
        let retry = faults.decide("GET", "/api/x/").throttled.unwrap();
        assert!((59..=60).contains(&retry), "{retry}");
        assert!(
            faults
                .set_rate_limit(Some(RateLimit {
                    requests: 0,
                    window_ms: 1
                }))
                .is_err()
        );
        faults.set_rate_limit(None).unwrap();
        assert!(faults.decide("GET", "/api/x/").throttled.is_none());
    }

    #[test]
    fn latency_stays_within_fixed_plus_jitter() {
        let latency = Latency {
            fixed_ms: 10,
            jitter_ms: 5,
        };
        for _ in 0..50 {
            let sample = latency.sample();
            assert!(sample >= Duration::from_millis(10) && sample <= Duration::from_millis(15));
        }
        assert!(Latency::default().sample().is_zero());
    }
}
