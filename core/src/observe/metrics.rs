//! The Prometheus series every probe exports, in one `prometheus-client` registry whose every
//! series carries `probe="<--name>"`, so dashboards and alerts are written once for all kinds.
//!
//! Updating is a few atomic operations (the checker and the deliverer call it inline); encoding
//! takes a consistent-enough snapshot in microseconds, synchronously, so neither the endpoint
//! nor the textfile ever holds anything across an await.

use std::borrow::Cow;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge as IntGauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::probe::Gauge;

/// The state names, as the `state` label spells them.
pub(crate) const STATES: [&str; 6] = ["init", "rising", "up", "falling", "down", "disabled"];
/// Check results, as the `result` label spells them.
pub(crate) const RESULTS: [&str; 3] = ["healthy", "degraded", "unhealthy"];
/// ExaBGP's answers to a command, as the `answer` label spells them.
pub(crate) const ANSWERS: [&str; 3] = ["done", "error", "timeout"];
/// Event kinds (`--events`), as the `kind` label spells them.
pub(crate) const EVENT_KINDS: [&str; 2] = ["authoritative", "suspicion"];

/// Check duration buckets, seconds: a local check takes milliseconds, a timeout seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// OpenMetrics text, what Prometheus asks for first.
pub(crate) const OPENMETRICS_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic Prometheus text format, for other clients and node_exporter's textfile collector.
pub(crate) const TEXT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

type Label = [(&'static str, &'static str); 1];
type PrefixLabel = [(&'static str, String); 1];
type FloatGauge = IntGauge<f64, AtomicU64>;

/// Every series of one probe.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    state: Family<Label, IntGauge>,
    checks: Family<Label, Counter>,
    duration: Histogram,
    transitions: Counter,
    last_transition: FloatGauge,
    announced: Family<PrefixLabel, IntGauge>,
    med: Family<PrefixLabel, IntGauge>,
    commands: Family<Label, Counter>,
    required: Family<PrefixLabel, IntGauge>,
    events: Family<Label, Counter>,
    probe_gauges: std::sync::Arc<ProbeGauges>,
}

impl Metrics {
    /// The series of probe `name` of `kind`, every label set known in advance at zero.
    pub(crate) fn new(name: &str, kind: &str, started_unix: f64) -> Self {
        let probe = (Cow::Borrowed("probe"), Cow::Owned(escape_label_value(name)));
        let mut registry = Registry::with_labels(std::iter::once(probe));
        let metrics = Metrics {
            state: Family::default(),
            checks: Family::default(),
            duration: Histogram::new(DURATION_BUCKETS),
            transitions: Counter::default(),
            last_transition: FloatGauge::default(),
            announced: Family::default(),
            med: Family::default(),
            commands: Family::default(),
            required: Family::default(),
            events: Family::default(),
            probe_gauges: std::sync::Arc::default(),
            registry: Registry::default(),
        };
        registry.register(
            "exaprobe_state",
            "1 for the probe's current hysteresis state, 0 for the others",
            metrics.state.clone(),
        );
        registry.register(
            "exaprobe_checks",
            "Checks run, by result (a disabled probe runs none)",
            metrics.checks.clone(),
        );
        registry.register(
            "exaprobe_check_duration_seconds",
            "How long each check took",
            metrics.duration.clone(),
        );
        registry.register(
            "exaprobe_transitions",
            "State changes (INIT, RISING, UP, FALLING, DOWN, DISABLED) since start",
            metrics.transitions.clone(),
        );
        registry.register(
            "exaprobe_last_transition_timestamp_seconds",
            "Unix time of the last state change (the start time before the first)",
            metrics.last_transition.clone(),
        );
        registry.register(
            "exaprobe_route_announced",
            "1 when ExaBGP last accepted an announce for the prefix, 0 a withdraw",
            metrics.announced.clone(),
        );
        registry.register(
            "exaprobe_route_med",
            "MED of the announce ExaBGP last accepted for the prefix (absent once withdrawn)",
            metrics.med.clone(),
        );
        registry.register(
            "exaprobe_exabgp_commands",
            "Commands answered by ExaBGP (done, error) or not in --ack-timeout (timeout)",
            metrics.commands.clone(),
        );
        registry.register(
            "exaprobe_required_up",
            "1 while the required probe (--require, by its --name) is UP or DEGRADED and fresh, 0 otherwise",
            metrics.required.clone(),
        );
        registry.register(
            "exaprobe_events",
            "Events the service announced between checks (--events), by kind: authoritative (DOWN at once) or suspicion (check now)",
            metrics.events.clone(),
        );
        let build = Family::<[(&'static str, String); 2], IntGauge>::default();
        build
            .get_or_create(&[
                ("version", env!("CARGO_PKG_VERSION").to_string()),
                ("kind", escape_label_value(kind)),
            ])
            .set(1);
        registry.register(
            "exaprobe_build_info",
            "Version and kind of the probe, always 1",
            build,
        );
        registry.register_collector(Box::new(std::sync::Arc::clone(&metrics.probe_gauges)));
        for state in STATES {
            metrics
                .state
                .get_or_create(&[("state", state)])
                .set(i64::from(state == "init"));
        }
        for result in RESULTS {
            metrics
                .checks
                .get_or_create(&[("result", result)])
                .inc_by(0);
        }
        for answer in ANSWERS {
            metrics
                .commands
                .get_or_create(&[("answer", answer)])
                .inc_by(0);
        }
        for kind in EVENT_KINDS {
            metrics.events.get_or_create(&[("kind", kind)]).inc_by(0);
        }
        metrics.last_transition.set(started_unix);
        Metrics {
            registry,
            ..metrics
        }
    }

    /// A check ended with `result` (one of [`RESULTS`]) after `seconds`.
    pub(crate) fn checked(&self, result: &'static str, seconds: f64) {
        self.checks.get_or_create(&[("result", result)]).inc();
        self.duration.observe(seconds);
    }

    /// `count` events of `kind` (one of [`EVENT_KINDS`]) came.
    pub(crate) fn events(&self, kind: &'static str, count: u64) {
        self.events.get_or_create(&[("kind", kind)]).inc_by(count);
    }

    /// The probe's own series after a check (replacing the previous ones).
    pub(crate) fn set_probe_gauges(&self, gauges: Vec<Gauge>) {
        let mut kept = self
            .probe_gauges
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *kept = gauges.into_iter().filter(|g| valid_name(g.name)).collect();
    }

    /// The state is now `state` (one of [`STATES`]).
    pub(crate) fn set_state(&self, state: &str) {
        for name in STATES {
            self.state
                .get_or_create(&[("state", name)])
                .set(i64::from(name == state));
        }
    }

    /// The state changed at `unix` seconds.
    pub(crate) fn transition(&self, unix: f64) {
        self.transitions.inc();
        self.last_transition.set(unix);
    }

    /// ExaBGP accepted an announce with `med`, or a withdraw (`None`), for `prefix`.
    pub(crate) fn route(&self, prefix: &str, med: Option<u32>) {
        let label = [("prefix", prefix.to_string())];
        self.announced
            .get_or_create(&label)
            .set(i64::from(med.is_some()));
        match med {
            Some(med) => {
                self.med.get_or_create(&label).set(i64::from(med));
            }
            None => {
                self.med.remove(&label);
            }
        }
    }

    /// The required probe `name` is serving (`up`) or not.
    pub(crate) fn required(&self, name: &str, up: bool) {
        self.required
            .get_or_create(&[("required", escape_label_value(name))])
            .set(i64::from(up));
    }

    /// ExaBGP answered (or did not answer) `count` commands with `answer` (one of [`ANSWERS`]).
    pub(crate) fn answered(&self, answer: &'static str, count: u64) {
        self.commands
            .get_or_create(&[("answer", answer)])
            .inc_by(count);
    }

    /// The OpenMetrics text exposition.
    pub(crate) fn openmetrics(&self) -> String {
        let mut text = String::with_capacity(4096);
        // Writing to a String cannot fail; a collector's error would only cut the output.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// The classic Prometheus text exposition (version 0.0.4).
    pub(crate) fn text(&self) -> String {
        to_classic_text(&self.openmetrics())
    }
}

/// The probe's own gauges, encoded at scrape time.
#[derive(Debug, Default)]
struct ProbeGauges(Mutex<Vec<Gauge>>);

impl prometheus_client::collector::Collector for ProbeGauges {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let gauges = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for gauge in &gauges {
            let metric: MetricEncoder =
                encoder.encode_descriptor(gauge.name, gauge.help, None, MetricType::Gauge)?;
            ConstGauge::new(gauge.value).encode(metric)?;
        }
        Ok(())
    }
}

/// A probe's own series name: `exaprobe_` then letters, digits and `_`, not clashing with a
/// core series (a bad name is a bug in the probe: its series is left out rather than breaking
/// the exposition).
pub(crate) fn valid_name(name: &str) -> bool {
    let core = [
        "exaprobe_state",
        "exaprobe_checks",
        "exaprobe_check_duration_seconds",
        "exaprobe_transitions",
        "exaprobe_last_transition_timestamp_seconds",
        "exaprobe_route_announced",
        "exaprobe_route_med",
        "exaprobe_exabgp_commands",
        "exaprobe_build_info",
    ];
    name.strip_prefix("exaprobe_").is_some_and(|rest| {
        !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    }) && !core.iter().any(|taken| name.starts_with(taken))
}

/// A label value as the text formats need it: `\`, `"` and newlines escaped (the client library
/// writes values as given).
pub(crate) fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// OpenMetrics text turned into the classic Prometheus text format, which node_exporter's
/// textfile collector and older clients parse: a counter's HELP and TYPE name its `_total`
/// sample, `info`/`stateset` become gauges, `unknown` untyped; UNIT and EOF lines go.
pub(crate) fn to_classic_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|keyword| {
            let rest = line.strip_prefix(keyword)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let name = if counters.contains(&name) {
                format!("{name}_total")
            } else {
                name.to_string()
            };
            let tail = if *keyword == "# TYPE " {
                match tail {
                    "info" | "stateset" => "gauge",
                    "unknown" => "untyped",
                    "gaugehistogram" => "histogram",
                    other => other,
                }
            } else {
                tail
            };
            Some(format!("{keyword}{name} {tail}"))
        });
        text.push_str(rewritten.as_deref().unwrap_or(line));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
            .map(|line| line[series.len() + 1..].to_string())
    }

    #[test]
    fn required_probes_have_one_series_each() {
        let metrics = Metrics::new("web", "http", 1_700_000_000.0);
        metrics.required("dns", true);
        metrics.required("up\"link", false);
        let text = metrics.openmetrics();
        let series = |required: &str| {
            format!("exaprobe_required_up{{probe=\"web\",required=\"{required}\"}}")
        };
        assert_eq!(
            sample(&text, &series("dns")).as_deref(),
            Some("1"),
            "{text}"
        );
        assert_eq!(
            sample(&text, &series("up\\\"link")).as_deref(),
            Some("0"),
            "{text}"
        );
        metrics.required("dns", false);
        assert_eq!(
            sample(&metrics.text(), &series("dns")).as_deref(),
            Some("0")
        );
    }

    #[test]
    fn every_series_is_there_with_the_probe_label_from_the_start() {
        let metrics = Metrics::new("web \"1\"", "http", 1_700_000_000.0);
        let text = metrics.openmetrics();
        let p = r#"probe="web \"1\"""#;
        assert_eq!(
            sample(&text, &format!("exaprobe_state{{{p},state=\"init\"}}")).as_deref(),
            Some("1")
        );
        assert_eq!(
            sample(&text, &format!("exaprobe_state{{{p},state=\"up\"}}")).as_deref(),
            Some("0")
        );
        assert_eq!(
            sample(
                &text,
                &format!("exaprobe_checks_total{{{p},result=\"unhealthy\"}}")
            )
            .as_deref(),
            Some("0")
        );
        assert_eq!(
            sample(
                &text,
                &format!("exaprobe_exabgp_commands_total{{{p},answer=\"timeout\"}}")
            )
            .as_deref(),
            Some("0")
        );
        assert_eq!(
            sample(&text, &format!("exaprobe_transitions_total{{{p}}}")).as_deref(),
            Some("0")
        );
        assert_eq!(
            sample(
                &text,
                &format!("exaprobe_last_transition_timestamp_seconds{{{p}}}")
            )
            .as_deref(),
            Some("1700000000.0")
        );
        assert_eq!(
            sample(
                &text,
                &format!(
                    "exaprobe_build_info{{{p},version=\"{}\",kind=\"http\"}}",
                    env!("CARGO_PKG_VERSION")
                )
            )
            .as_deref(),
            Some("1")
        );
        assert!(text.contains(&format!("exaprobe_check_duration_seconds_count{{{p}}} 0")));
        assert!(text.ends_with("# EOF\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.contains(p), "{line}");
        }
    }

    #[test]
    fn values_follow_what_is_recorded() {
        let metrics = Metrics::new("web", "http", 0.0);
        metrics.checked("healthy", 0.003);
        metrics.checked("unhealthy", 7.0);
        metrics.set_state("up");
        metrics.transition(1_800_000_000.5);
        metrics.route("192.0.2.1/32", Some(100));
        metrics.route("192.0.2.2/32", Some(101));
        metrics.route("192.0.2.2/32", None);
        metrics.answered("done", 2);
        metrics.answered("timeout", 1);
        let text = metrics.openmetrics();
        let p = "probe=\"web\"";
        let get = |series: &str| sample(&text, series);
        assert_eq!(
            get(&format!("exaprobe_state{{{p},state=\"up\"}}")).as_deref(),
            Some("1")
        );
        assert_eq!(
            get(&format!("exaprobe_state{{{p},state=\"init\"}}")).as_deref(),
            Some("0")
        );
        assert_eq!(
            get(&format!("exaprobe_checks_total{{{p},result=\"healthy\"}}")).as_deref(),
            Some("1")
        );
        assert_eq!(
            get(&format!("exaprobe_transitions_total{{{p}}}")).as_deref(),
            Some("1")
        );
        assert_eq!(
            get(&format!(
                "exaprobe_last_transition_timestamp_seconds{{{p}}}"
            ))
            .as_deref(),
            Some("1800000000.5")
        );
        assert_eq!(
            get(&format!(
                "exaprobe_route_announced{{{p},prefix=\"192.0.2.1/32\"}}"
            ))
            .as_deref(),
            Some("1")
        );
        assert_eq!(
            get(&format!(
                "exaprobe_route_med{{{p},prefix=\"192.0.2.1/32\"}}"
            ))
            .as_deref(),
            Some("100")
        );
        assert_eq!(
            get(&format!(
                "exaprobe_route_announced{{{p},prefix=\"192.0.2.2/32\"}}"
            ))
            .as_deref(),
            Some("0")
        );
        assert_eq!(
            get(&format!(
                "exaprobe_route_med{{{p},prefix=\"192.0.2.2/32\"}}"
            )),
            None
        );
        assert_eq!(
            get(&format!(
                "exaprobe_exabgp_commands_total{{{p},answer=\"done\"}}"
            ))
            .as_deref(),
            Some("2")
        );
        assert_eq!(
            get(&format!("exaprobe_check_duration_seconds_count{{{p}}}")).as_deref(),
            Some("2")
        );
        assert_eq!(
            get(&format!(
                "exaprobe_check_duration_seconds_bucket{{{p},le=\"0.005\"}}"
            ))
            .as_deref(),
            Some("1")
        );
    }

    #[test]
    fn probe_gauges_are_exported_and_bad_names_left_out() {
        let metrics = Metrics::new("dns", "dns", 0.0);
        metrics.set_probe_gauges(vec![
            Gauge {
                name: "exaprobe_dns_serial_lag",
                help: "SOA serials behind",
                value: 3.0,
            },
            Gauge {
                name: "dns_serial_lag",
                help: "no prefix",
                value: 1.0,
            },
            Gauge {
                name: "exaprobe_state_x",
                help: "clashes",
                value: 1.0,
            },
            Gauge {
                name: "exaprobe_bad-name",
                help: "bad",
                value: 1.0,
            },
        ]);
        let text = metrics.openmetrics();
        assert!(text.contains("# TYPE exaprobe_dns_serial_lag gauge\n"));
        assert_eq!(
            sample(&text, "exaprobe_dns_serial_lag{probe=\"dns\"}").as_deref(),
            Some("3.0")
        );
        assert!(!text.contains("exaprobe_state_x") && !text.contains("bad-name"));
        assert!(!text.lines().any(|l| l.starts_with("dns_serial_lag")));
        metrics.set_probe_gauges(Vec::new());
        assert!(!metrics.openmetrics().contains("exaprobe_dns_serial_lag"));
    }

    #[test]
    fn classic_text_names_counters_by_their_samples() {
        let metrics = Metrics::new("web", "http", 0.0);
        let text = metrics.text();
        assert!(
            text.contains("# TYPE exaprobe_checks_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# HELP exaprobe_checks_total Checks run"));
        assert!(text.contains("# TYPE exaprobe_state gauge\n"));
        assert!(text.contains("# TYPE exaprobe_check_duration_seconds histogram\n"));
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
        assert_eq!(
            to_classic_text(
                "# HELP a_info x y\n# TYPE a_info info\na_info{k=\"v\"} 1\n# TYPE u unknown\n# EOF\n"
            ),
            "# HELP a_info x y\n# TYPE a_info gauge\na_info{k=\"v\"} 1\n# TYPE u untyped\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label_value("a\nb"), "a\\nb");
    }
}
