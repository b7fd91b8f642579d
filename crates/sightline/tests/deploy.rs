//! The deployment files in `deploy/` (Dockerfile, compose stack, Prometheus and Grafana
//! configuration, Kubernetes manifests) are only ever run by a container engine or a
//! cluster, where a dangling reference shows up late and far from its cause. This test
//! checks what can be checked without one: every file parses, every name one file uses is
//! defined by another (services, mounts, ConfigMaps, Secrets, ports, labels), every role
//! runs, the dashboards and alert rules query only metrics the code exports (and a running
//! node, given a little traffic, exports them), `deploy/README.md` documents every metric,
//! and the compose and Kubernetes deployments share one `sightline.toml`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml_ng::Value;

/// The values `SIGHTLINE_ROLE` accepts.
const ROLES: [&str; 4] = ["all", "ingest", "process", "api"];

/// Series Prometheus adds to every scrape target; the dashboard may use them.
const PROMETHEUS_SERIES: [&str; 1] = ["up"];

// ---------------------------------------------------------------------------------------
// Compose

#[test]
fn compose_services_reference_what_exists() {
    let compose = compose();
    let services = services(&compose);
    let declared_volumes: BTreeSet<String> = mapping_keys(&compose["volumes"]);
    let mut problems = Vec::new();
    for (name, service) in &services {
        match (service["image"].as_str(), build_dockerfile(service)) {
            (_, Some(dockerfile)) if !dockerfile.is_file() => problems.push(format!(
                "service {name}: build dockerfile {} does not exist",
                shown(&dockerfile)
            )),
            (None, None) => problems.push(format!("service {name}: neither image nor build")),
            _ => {}
        }
        for (dependency, condition) in depends_on(service) {
            match services.get(&dependency) {
                None => problems.push(format!(
                    "service {name}: depends_on names undefined service {dependency:?}"
                )),
                Some(target)
                    if condition == "service_healthy" && target["healthcheck"].is_null() =>
                {
                    problems.push(format!(
                        "service {name}: waits for {dependency} to be healthy, \
                         but {dependency} has no healthcheck"
                    ));
                }
                Some(_) => {}
            }
        }
        for mount in mounts(service) {
            match mount.source {
                Source::Host(path) if !path.exists() => problems.push(format!(
                    "service {name}: bind-mounted host path {} does not exist",
                    shown(&path)
                )),
                Source::Volume(volume) if !declared_volumes.contains(&volume) => problems.push(
                    format!("service {name}: volume {volume:?} is not declared under volumes:"),
                ),
                _ => {}
            }
        }
    }
    assert_no_problems("deploy/docker-compose.yml", &problems);
}

#[test]
fn compose_runs_every_role_against_kraft_kafka() {
    let compose = compose();
    let services = services(&compose);
    let nodes = sightline_services(&services);
    let mut problems = Vec::new();
    let mut nodes_per_role: BTreeMap<String, u64> = BTreeMap::new();
    for (name, service) in &nodes {
        let env = environment(service);
        match env.get("SIGHTLINE_ROLE") {
            Some(role) if ROLES.contains(&role.as_str()) => {
                *nodes_per_role.entry(role.clone()).or_default() += replicas(service);
            }
            Some(role) => problems.push(format!(
                "service {name}: SIGHTLINE_ROLE={role:?} is not one of {ROLES:?}"
            )),
            None => problems.push(format!("service {name}: SIGHTLINE_ROLE is not set")),
        }
        match env.get("SIGHTLINE_CONFIG") {
            Some(path) if mounts(service).iter().any(|m| m.target == *path) => {}
            other => problems.push(format!(
                "service {name}: SIGHTLINE_CONFIG={other:?} is not a path mounted into it"
            )),
        }
        let healthcheck = service["healthcheck"]["test"].clone();
        if !yaml_text(&healthcheck).contains("/health") {
            problems.push(format!(
                "service {name}: healthcheck {} does not ask /health",
                yaml_text(&healthcheck)
            ));
        }
    }
    let covered = |role: &str| nodes_per_role.get(role).copied().unwrap_or(0);
    let all = covered("all");
    for (role, least) in [("ingest", 1), ("process", 2), ("api", 1)] {
        if covered(role) + all < least {
            problems.push(format!(
                "role {role}: {} node(s), want at least {least} (nodes per role: {nodes_per_role:?})",
                covered(role) + all
            ));
        }
    }

    let brokers: Vec<_> = services
        .iter()
        .filter(|(_, s)| s["image"].as_str().is_some_and(|i| i.contains("kafka")))
        .collect();
    if brokers.is_empty() {
        problems.push("no Kafka service (an image containing \"kafka\")".to_owned());
    }
    for (name, broker) in brokers {
        if !environment(broker).contains_key("KAFKA_PROCESS_ROLES") {
            problems.push(format!(
                "service {name}: Kafka without KAFKA_PROCESS_ROLES does not run in KRaft mode"
            ));
        }
    }
    for (name, service) in &services {
        let image = service["image"].as_str().unwrap_or_default();
        if name.contains("zookeeper") || image.contains("zookeeper") {
            problems.push(format!(
                "service {name}: ZooKeeper is not needed with KRaft"
            ));
        }
    }
    assert_no_problems("deploy/docker-compose.yml roles", &problems);
}

// ---------------------------------------------------------------------------------------
// Shared configuration

#[test]
fn shared_config_selects_kafka_postgres_and_redis() {
    let config = shared_config();
    let mut problems = Vec::new();
    if config.contains_key("role") {
        problems.push("sets role: each node sets its own with SIGHTLINE_ROLE".to_owned());
    }
    for (path, want) in [
        ("log.kind", "kafka"),
        ("store.kind", "postgres"),
        ("cache.kind", "redis"),
    ] {
        let got = toml_str(&config, path);
        if got != Some(want) {
            problems.push(format!("{path} = {got:?}, want {want:?}"));
        }
    }
    for path in [
        "log.kafka.brokers",
        "store.postgres.url",
        "cache.redis.url",
        "http_addr",
    ] {
        if toml_str(&config, path).is_none_or(str::is_empty) {
            problems.push(format!("{path} is missing"));
        }
    }
    if toml_value(&config, "telemetry.json_logs").and_then(toml::Value::as_bool) != Some(true) {
        problems.push("telemetry.json_logs should be true in containers".to_owned());
    }
    // The image sets the address too (so a bare `docker run` listens on every interface),
    // and the environment wins over the file: the two must agree.
    let dockerfile = read(&deploy().join("Dockerfile"));
    let image_addr = dockerfile
        .split_whitespace()
        .find_map(|word| word.strip_prefix("SIGHTLINE_HTTP_ADDR="));
    if image_addr != toml_str(&config, "http_addr") {
        problems.push(format!(
            "http_addr = {:?}, but deploy/Dockerfile sets SIGHTLINE_HTTP_ADDR={image_addr:?}",
            toml_str(&config, "http_addr")
        ));
    }
    assert_no_problems("deploy/sightline.toml", &problems);
}

#[test]
fn shared_config_names_compose_hosts() {
    let compose = compose();
    let services = services(&compose);
    let config = shared_config();
    // The file's addresses, and the environment overrides compose gives any node.
    let mut addresses: Vec<(String, String)> = Vec::new();
    for (path, variable) in [
        ("log.kafka.brokers", "SIGHTLINE_LOG__KAFKA__BROKERS"),
        ("store.postgres.url", "SIGHTLINE_STORE__POSTGRES__URL"),
        ("cache.redis.url", "SIGHTLINE_CACHE__REDIS__URL"),
    ] {
        if let Some(value) = toml_str(&config, path) {
            addresses.push((format!("sightline.toml {path}"), value.to_owned()));
        }
        for (name, service) in sightline_services(&services) {
            if let Some(value) = environment(service).get(variable) {
                addresses.push((format!("service {name} {variable}"), value.clone()));
            }
        }
    }
    assert!(
        !addresses.is_empty(),
        "no addresses found in deploy/sightline.toml"
    );
    let mut problems = Vec::new();
    for (origin, value) in addresses {
        for address in value.split(',') {
            let host = host_of(address);
            if !services.contains_key(host) {
                problems.push(format!(
                    "{origin}: host {host:?} (from {address:?}) is not a compose service"
                ));
            }
        }
    }
    assert_no_problems("deploy/sightline.toml hosts", &problems);
}

// ---------------------------------------------------------------------------------------
// Prometheus and Grafana

#[test]
fn prometheus_scrapes_every_sightline_service() {
    let compose = compose();
    let services = services(&compose);
    let nodes = sightline_services(&services);
    let config = shared_config();
    let port = port_of(toml_str(&config, "http_addr").unwrap_or_default());
    let prometheus = yaml(&deploy().join("prometheus/prometheus.yml"));
    let mut problems = Vec::new();
    let mut scraped = BTreeSet::new();
    for job in sequence(&prometheus["scrape_configs"]) {
        let job_name = job["job_name"].as_str().unwrap_or("?");
        if let Some(path) = job["metrics_path"].as_str()
            && path != "/metrics"
        {
            problems.push(format!(
                "job {job_name}: metrics_path {path:?}, not /metrics"
            ));
        }
        for group in sequence(&job["static_configs"]) {
            for target in sequence(&group["targets"]) {
                let target = target.as_str().unwrap_or_default();
                let Some((host, target_port)) = target.rsplit_once(':') else {
                    problems.push(format!(
                        "job {job_name}: target {target:?} is not host:port"
                    ));
                    continue;
                };
                if !nodes.contains_key(host) {
                    problems.push(format!(
                        "job {job_name}: target {target:?} is not a sightline compose service"
                    ));
                }
                if target_port != port {
                    problems.push(format!(
                        "job {job_name}: target {target:?} is not on the node port {port}"
                    ));
                }
                scraped.insert(host.to_owned());
            }
        }
    }
    for name in nodes.keys() {
        if !scraped.contains(name) {
            problems.push(format!("sightline service {name} is not scraped"));
        }
    }
    assert_no_problems("deploy/prometheus/prometheus.yml", &problems);
}

#[test]
fn grafana_provisioning_points_at_prometheus_and_the_dashboards() {
    let compose = compose();
    let services = services(&compose);
    let provisioning = deploy().join("grafana/provisioning");
    let mut problems = Vec::new();

    let mut prometheus_sources = 0;
    for file in yaml_files(&provisioning.join("datasources")) {
        for source in sequence(&yaml(&file)["datasources"]) {
            if source["type"].as_str() != Some("prometheus") {
                continue;
            }
            prometheus_sources += 1;
            let url = source["url"].as_str().unwrap_or_default();
            if !services.contains_key(host_of(url)) {
                problems.push(format!(
                    "{}: datasource url {url:?} is not a compose service",
                    shown(&file)
                ));
            }
        }
    }
    if prometheus_sources == 0 {
        problems.push("no Prometheus datasource is provisioned".to_owned());
    }

    let grafana = services
        .iter()
        .find(|(_, s)| s["image"].as_str().is_some_and(|i| i.contains("grafana")))
        .map(|(_, s)| *s);
    let grafana_mounts = grafana.map(mounts).unwrap_or_default();
    let mut providers = 0;
    for file in yaml_files(&provisioning.join("dashboards")) {
        for provider in sequence(&yaml(&file)["providers"]) {
            providers += 1;
            let path = provider["options"]["path"].as_str().unwrap_or_default();
            let host = grafana_mounts.iter().find_map(|m| match &m.source {
                Source::Host(host) if m.target == path => Some(host.clone()),
                _ => None,
            });
            match host {
                None => problems.push(format!(
                    "{}: dashboards path {path:?} is not bind-mounted into grafana",
                    shown(&file)
                )),
                Some(host) if json_files(&host).is_empty() => problems.push(format!(
                    "{}: {} (mounted at {path}) holds no dashboard",
                    shown(&file),
                    shown(&host)
                )),
                Some(_) => {}
            }
        }
    }
    if providers == 0 {
        problems.push("no dashboard provider is provisioned".to_owned());
    }
    assert_no_problems("deploy/grafana/provisioning", &problems);
}

#[test]
fn dashboards_query_only_exported_metrics() {
    let exported = exported_series();
    let datasource_uids: BTreeSet<String> =
        yaml_files(&deploy().join("grafana/provisioning/datasources"))
            .iter()
            .flat_map(|file| sequence(&yaml(file)["datasources"]).to_vec())
            .filter_map(|source| source["uid"].as_str().map(str::to_owned))
            .collect();
    let dashboards = json_files(&deploy().join("grafana/dashboards"));
    assert!(
        !dashboards.is_empty(),
        "no dashboard in deploy/grafana/dashboards"
    );
    let mut problems = Vec::new();
    for file in dashboards {
        let text = read(&file);
        let dashboard: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} does not parse: {e}", shown(&file)));
        let mut queries = 0;
        for panel in panels(&dashboard) {
            let title = panel["title"].as_str().unwrap_or("?");
            let uids: BTreeSet<&str> = [&panel["datasource"]]
                .into_iter()
                .chain(
                    panel["targets"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|t| &t["datasource"]),
                )
                .filter_map(|datasource| datasource["uid"].as_str())
                .collect();
            for uid in uids {
                if !datasource_uids.contains(uid) {
                    problems.push(format!(
                        "panel {title:?}: datasource uid {uid:?} is not provisioned"
                    ));
                }
            }
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap_or_default();
                queries += 1;
                let names = metric_names(expr);
                if names.is_empty() {
                    problems.push(format!("panel {title:?}: query {expr:?} names no metric"));
                }
                for name in names {
                    if !exported.contains(&name) && !PROMETHEUS_SERIES.contains(&name.as_str()) {
                        problems.push(format!(
                            "panel {title:?}: {name} is not a metric sightline exports"
                        ));
                    }
                }
            }
        }
        if queries == 0 {
            problems.push(format!("{}: no panel queries anything", shown(&file)));
        }
    }
    assert!(
        problems.is_empty(),
        "grafana dashboards:\n  - {}\nexported series: {exported:?}",
        problems.join("\n  - ")
    );
}

#[test]
fn dashboards_have_unique_ids_and_panels_that_do_not_overlap() {
    let mut problems = Vec::new();
    let mut uids = BTreeMap::new();
    for file in json_files(&deploy().join("grafana/dashboards")) {
        let at = shown(&file);
        let dashboard: serde_json::Value =
            serde_json::from_str(&read(&file)).expect("dashboard parses");
        match dashboard["uid"].as_str() {
            Some(uid) if !uid.is_empty() => {
                if let Some(other) = uids.insert(uid.to_owned(), at.clone()) {
                    problems.push(format!("{at}: uid {uid:?} is also the uid of {other}"));
                }
            }
            _ => problems.push(format!(
                "{at}: no uid (links and bookmarks need a stable one)"
            )),
        }
        let mut ids = BTreeSet::new();
        let mut cells: BTreeMap<(u64, u64), String> = BTreeMap::new();
        for panel in panels(&dashboard) {
            let title = panel["title"].as_str().unwrap_or("?");
            match panel["id"].as_u64() {
                Some(id) if ids.insert(id) => {}
                Some(id) => problems.push(format!("{at}: panel id {id} is used twice")),
                None => problems.push(format!("{at}: panel {title:?} has no id")),
            }
            let grid = &panel["gridPos"];
            let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| grid[k].as_u64());
            let (Some(x), Some(y), Some(w), Some(h)) = (x, y, w, h) else {
                problems.push(format!("{at}: panel {title:?} has no complete gridPos"));
                continue;
            };
            if w == 0 || h == 0 || x + w > 24 {
                problems.push(format!(
                    "{at}: panel {title:?} does not fit the 24-column grid"
                ));
            }
            for cx in x..x + w {
                for cy in y..y + h {
                    if let Some(other) = cells.insert((cx, cy), title.to_owned()) {
                        problems.push(format!("{at}: panel {title:?} overlaps {other:?}"));
                        break;
                    }
                }
            }
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap_or_default();
                // rate() over a fixed window is wrong at some zoom levels and scrape intervals.
                for (at_rate, _) in expr.match_indices("rate(") {
                    let window = expr[at_rate..].split_once('[').map(|(_, w)| w);
                    if !window.is_some_and(|w| w.starts_with("$__rate_interval]")) {
                        problems.push(format!(
                            "{at}: panel {title:?}: rate() without [$__rate_interval] in {expr:?}"
                        ));
                    }
                }
            }
        }
        problems.dedup();
    }
    assert_no_problems("deploy/grafana/dashboards", &problems);
}

#[test]
fn prometheus_alert_rules_are_loaded_and_use_exported_metrics() {
    let compose = compose();
    let services = services(&compose);
    let prometheus_dir = deploy().join("prometheus");
    let config = yaml(&prometheus_dir.join("prometheus.yml"));
    let container = services
        .values()
        .find(|s| {
            s["image"]
                .as_str()
                .is_some_and(|i| i.contains("prometheus"))
        })
        .map(|s| mounts(s))
        .unwrap_or_default();
    let canonical = |path: &Path| path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let mounted_at = |host: &Path| {
        container.iter().find_map(|m| match &m.source {
            Source::Host(source) if canonical(source) == canonical(host) => Some(m.target.clone()),
            _ => None,
        })
    };
    let mut problems = Vec::new();
    let config_target = mounted_at(&prometheus_dir.join("prometheus.yml"));
    let Some(config_dir) = config_target
        .as_deref()
        .and_then(|t| t.rsplit_once('/'))
        .map(|(dir, _)| dir.to_owned())
    else {
        panic!("deploy/prometheus/prometheus.yml is not mounted into the prometheus service");
    };
    let rule_files = sequence(&config["rule_files"]);
    if rule_files.is_empty() {
        problems.push("prometheus.yml loads no rule_files".to_owned());
    }
    let exported = exported_series();
    let mut alerts = BTreeSet::new();
    for file in rule_files {
        let file = file.as_str().unwrap_or_default();
        let host = prometheus_dir.join(file);
        if !host.is_file() {
            problems.push(format!("rule file {file:?} is not in deploy/prometheus"));
            continue;
        }
        let want = format!("{config_dir}/{file}");
        if mounted_at(&host).as_deref() != Some(want.as_str()) {
            problems.push(format!(
                "rule file {file:?} is not mounted at {want} in the prometheus service"
            ));
        }
        for group in sequence(&yaml(&host)["groups"]) {
            for rule in sequence(&group["rules"]) {
                let Some(name) = rule["alert"].as_str().or(rule["record"].as_str()) else {
                    problems.push(format!("{file}: a rule with neither alert nor record"));
                    continue;
                };
                if !alerts.insert(name.to_owned()) {
                    problems.push(format!("{file}: {name} is defined twice"));
                }
                let expr = rule["expr"].as_str().unwrap_or_default();
                let names = metric_names(expr);
                if names.is_empty() {
                    problems.push(format!("{file}: {name}: expr {expr:?} names no metric"));
                }
                for metric in names {
                    if !exported.contains(&metric) && !PROMETHEUS_SERIES.contains(&metric.as_str())
                    {
                        problems.push(format!(
                            "{file}: {name}: {metric} is not a metric sightline exports"
                        ));
                    }
                }
                if rule["alert"].is_string() {
                    for field in [&rule["labels"]["severity"], &rule["annotations"]["summary"]] {
                        if field.as_str().is_none_or(str::is_empty) {
                            problems.push(format!(
                                "{file}: {name}: needs labels.severity and annotations.summary"
                            ));
                        }
                    }
                }
            }
        }
    }
    if alerts.is_empty() {
        problems.push("no alert rule is defined".to_owned());
    }
    assert_no_problems("deploy/prometheus rules", &problems);
}

/// The metric table of `deploy/README.md` lists every metric the code records, with its
/// type, and nothing else.
#[test]
fn every_exported_metric_is_documented() {
    let exported = exported_metrics();
    let readme = read(&deploy().join("README.md"));
    let mut documented = BTreeMap::new();
    let mut problems = Vec::new();
    for line in readme.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(name) = cells
            .get(1)
            .and_then(|c| c.strip_prefix('`'))
            .and_then(|c| c.strip_suffix('`'))
            .filter(|c| c.starts_with("sightline_"))
        else {
            continue;
        };
        let kind = cells.get(2).copied().unwrap_or_default();
        if documented
            .insert(name.to_owned(), kind.to_owned())
            .is_some()
        {
            problems.push(format!("{name} is listed twice"));
        }
    }
    for (name, kind) in &exported {
        match documented.get(name) {
            None => problems.push(format!("{name} ({kind}) is not in the metric table")),
            Some(listed) if listed != kind => {
                problems.push(format!("{name} is a {kind}, listed as {listed:?}"));
            }
            Some(_) => {}
        }
    }
    for name in documented.keys() {
        if !exported.contains_key(name) {
            problems.push(format!("{name} is listed but no code records it"));
        }
    }
    assert_no_problems("deploy/README.md metrics", &problems);
}

#[test]
fn promql_metric_names_skip_functions_labels_ranges_and_variables() {
    let expr = r#"histogram_quantile(0.99, sum by (le, route) (rate(sightline_x_seconds_bucket{route!="a b", le=~"0.5"}[$__rate_interval]))) / ignoring(route) group_left max without (topic) (up offset 5m) * on (node) sightline_y_total"#;
    assert_eq!(
        metric_names(expr),
        ["sightline_x_seconds_bucket", "up", "sightline_y_total"]
    );
    assert_eq!(
        metric_names("sum(rate(a:b_total[5m])) by (source)"),
        ["a:b_total"]
    );
}

/// Dashboard series a short run cannot produce, and why. Everything else any dashboard
/// queries must be in the scrape of [`a_running_node_exports_what_the_dashboards_query`].
const NOT_PRODUCED_BY_THE_TRAFFIC: &[(&str, &str)] = &[
    ("sightline_analyst_llm_calls_total", "needs an LLM endpoint"),
    (
        "sightline_analyst_llm_tokens_total",
        "needs an LLM endpoint",
    ),
    (
        "sightline_analyst_llm_fallbacks_total",
        "needs an LLM endpoint",
    ),
    ("sightline_analyst_failures_total", "needs a failing store"),
    (
        "sightline_ingest_overloaded_total",
        "needs more bytes in flight than allowed",
    ),
    (
        "sightline_store_write_errors_total",
        "needs a failing store",
    ),
    (
        "sightline_store_rejected_total",
        "needs an undecodable record in the log",
    ),
    (
        "sightline_store_duplicates_total",
        "needs a record delivered twice",
    ),
    (
        "sightline_rollups_write_errors_total",
        "needs a failing store",
    ),
    (
        "sightline_rollups_rejected_total",
        "needs an undecodable record in the log",
    ),
    (
        "sightline_rollups_late_total",
        "needs records behind the watermark",
    ),
    (
        "sightline_sql_records_in_total",
        "needs a continuous SQL query",
    ),
    (
        "sightline_sql_rows_out_total",
        "needs a continuous SQL query",
    ),
    ("sightline_sql_late_total", "needs a continuous SQL query"),
    (
        "sightline_sql_write_errors_total",
        "needs a continuous SQL query and a failing store",
    ),
    (
        "sightline_sql_rejected_total",
        "needs a continuous SQL query",
    ),
    (
        "sightline_correlate_suppressed_total",
        "needs a silence or an inhibiting incident",
    ),
    ("sightline_rules_evaluations_total", "needs a trigger rule"),
    ("sightline_rules_matches_total", "needs a trigger rule"),
    ("sightline_rules_firings_total", "needs a trigger rule"),
    (
        "sightline_rules_throttled_total",
        "needs a throttled trigger rule",
    ),
    ("sightline_respond_runs_started_total", "needs a playbook"),
    ("sightline_respond_runs_finished_total", "needs a playbook"),
    (
        "sightline_respond_runs_refused_total",
        "needs a playbook over its limits",
    ),
    (
        "sightline_respond_trigger_to_first_step_seconds_bucket",
        "needs a playbook",
    ),
    ("sightline_respond_actions_total", "needs a playbook"),
    (
        "sightline_respond_actions_failed_total",
        "needs a failing playbook action",
    ),
    (
        "sightline_auth_failed_total",
        "authentication is off in this run",
    ),
    (
        "sightline_auth_denied_total",
        "authentication is off in this run",
    ),
    ("sightline_api_live_connections", "needs a live client"),
    (
        "sightline_api_live_refused_total",
        "needs more live clients than allowed",
    ),
    (
        "sightline_cache_live_skipped_total",
        "needs live points the cache does not keep",
    ),
];

/// The series a histogram exports.
fn histogram_series(name: &str) -> Vec<String> {
    ["_bucket", "_sum", "_count"]
        .iter()
        .map(|suffix| format!("{name}{suffix}"))
        .collect()
}

/// Every metric name the dashboards query (Prometheus' own series excluded).
fn dashboard_metric_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for file in json_files(&deploy().join("grafana/dashboards")) {
        let dashboard: serde_json::Value =
            serde_json::from_str(&read(&file)).expect("dashboard parses");
        for panel in panels(&dashboard) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                names.extend(metric_names(target["expr"].as_str().unwrap_or_default()));
            }
        }
    }
    names.retain(|n| !PROMETHEUS_SERIES.contains(&n.as_str()));
    names
}

/// A `sightline run` child process, killed when dropped.
struct RunningNode {
    child: std::process::Child,
    base: String,
    dir: tempfile::TempDir,
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary as operators do, with every stage on (embedded log, SQLite), short
/// checkpoint and group-wait intervals, and a detector that sees a latency spike.
async fn start_node() -> RunningNode {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let config = dir.path().join("sightline.toml");
    fs::write(
        &config,
        format!(
            r#"
http_addr = "127.0.0.1:{port}"
data_dir = "{data}"
[auth]
enabled = false
[stream]
checkpoint_interval_ms = 100
[detect.detectors]
default = [{{ kind = "robust_zscore", window = 120 }}]
[detect.new_pattern]
learning_period_ms = 0
[correlate.rules]
group_wait_ms = 200
"#,
            data = dir.path().join("data").display()
        ),
    )
    .expect("write config");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sightline"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SIGHTLINE_") {
            command.env_remove(key);
        }
    }
    let log = fs::File::create(dir.path().join("node.log")).expect("log file");
    let child = command
        .arg("run")
        .env("SIGHTLINE_CONFIG", &config)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start sightline run");
    let node = RunningNode {
        child,
        base: format!("http://127.0.0.1:{port}"),
        dir,
    };
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Ok(res) = client.get(format!("{}/ready", node.base)).send().await
            && res.status().is_success()
        {
            return node;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the node did not become ready: {}",
            read(&node.dir.path().join("node.log"))
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The value of the series whose line starts with `series` (name and labels), if any.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// The metric names of a Prometheus text scrape.
fn scraped_names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A real node given a little of every kind of traffic — metric points with a latency
/// spike (rollups, detection, correlation, analysis), events, invalid items, an incident
/// created, acknowledged and resolved through the API — exports every metric the
/// dashboards query, except those [`NOT_PRODUCED_BY_THE_TRAFFIC`] names with a reason;
/// and the incident business metrics hold the values the traffic implies.
#[tokio::test]
async fn a_running_node_exports_what_the_dashboards_query() {
    let on_dashboards = dashboard_metric_names();
    let mut problems = Vec::new();
    for (name, _) in NOT_PRODUCED_BY_THE_TRAFFIC {
        if !on_dashboards.contains(*name) {
            problems.push(format!(
                "{name} is listed as not produced but no dashboard queries it"
            ));
        }
    }
    assert_no_problems("NOT_PRODUCED_BY_THE_TRAFFIC", &problems);
    let expected: BTreeSet<&String> = on_dashboards
        .iter()
        .filter(|n| !NOT_PRODUCED_BY_THE_TRAFFIC.iter().any(|(m, _)| m == n))
        .collect();

    let node = start_node().await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", node.base);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;

    // 200 minutes of steady latency, a spike, and one invalid point.
    let base = now - 300 * 60_000;
    let mut points: Vec<serde_json::Value> = (0..200)
        .map(|i| {
            serde_json::json!({
                "service_name": "checkout",
                "metric_type": "latency_ms",
                "value": 120.0 + [-9.0, -3.0, 0.0, 4.0, 8.0][i % 5],
                "timestamp": base + i as i64 * 60_000,
            })
        })
        .collect();
    let spike_at = base + 200 * 60_000;
    points.push(serde_json::json!({
        "service_name": "checkout", "metric_type": "latency_ms", "value": 812.0, "timestamp": spike_at,
    }));
    points.push(serde_json::json!({"service_name": "checkout", "metric_type": "latency_ms", "value": "hot"}));
    let res = client
        .post(url("/api/v1/metrics"))
        .json(&points)
        .send()
        .await
        .expect("post metrics");
    assert_eq!(
        res.status(),
        202,
        "{}",
        res.text().await.unwrap_or_default()
    );
    for (id, severity) in [("evt-pool-1", "critical"), ("evt-info-1", "info")] {
        let res = client
            .post(url("/api/v1/events"))
            .json(&serde_json::json!({
                "event_id": id,
                "service_name": "checkout",
                "event_type": "ERROR",
                "severity": severity,
                "timestamp": spike_at + 1_000,
                "details": "connection pool exhausted",
            }))
            .send()
            .await
            .expect("post event");
        assert_eq!(
            res.status(),
            202,
            "{}",
            res.text().await.unwrap_or_default()
        );
    }

    // One incident worked through to resolution, one left open.
    let mut incident_ids = Vec::new();
    for severity in ["critical", "low"] {
        let res = client
            .post(url("/api/v1/incidents"))
            .json(&serde_json::json!({
                "title": format!("{severity} incident by hand"),
                "severity": severity,
                "service_name": "checkout",
            }))
            .send()
            .await
            .expect("create incident");
        assert_eq!(
            res.status(),
            201,
            "{}",
            res.text().await.unwrap_or_default()
        );
        let created: serde_json::Value = res.json().await.expect("incident JSON");
        incident_ids.push(created["id"].as_str().expect("id").to_owned());
    }
    for status in ["acknowledged", "resolved"] {
        let res = client
            .patch(url(&format!("/api/v1/incidents/{}", incident_ids[0])))
            .json(&serde_json::json!({ "status": status }))
            .send()
            .await
            .expect("patch incident");
        assert_eq!(
            res.status(),
            200,
            "{}",
            res.text().await.unwrap_or_default()
        );
    }
    // Resolving twice is refused, and must not be observed twice.
    let res = client
        .patch(url(&format!("/api/v1/incidents/{}", incident_ids[0])))
        .json(&serde_json::json!({ "status": "resolved" }))
        .send()
        .await
        .expect("patch incident");
    assert!(res.status().is_client_error(), "{}", res.status());

    // Stages run on their own; wait until every expected series is there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let (scrape, missing) = loop {
        let scrape = client
            .get(url("/metrics"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("scrape text");
        let names = scraped_names(&scrape);
        let missing: Vec<&String> = expected
            .iter()
            .copied()
            .filter(|n| !names.contains(*n))
            .collect();
        let open_counted = sample(
            &scrape,
            r#"sightline_incidents_open{severity="low",status="open"}"#,
        )
        .is_some_and(|n| n >= 1.0);
        if (missing.is_empty() && open_counted) || std::time::Instant::now() > deadline {
            break (scrape, missing);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    assert!(
        missing.is_empty(),
        "dashboard metrics missing from a running node's /metrics: {missing:?}\n\n{scrape}"
    );

    // The business metrics count what happened, once.
    for (series, want) in [
        (
            r#"sightline_events_ingested_total{severity="critical"}"#,
            1.0,
        ),
        (r#"sightline_events_ingested_total{severity="info"}"#, 1.0),
        (r#"sightline_incidents_opened_total{severity="low"}"#, 1.0),
        (
            r#"sightline_incidents_resolved_total{severity="critical"}"#,
            1.0,
        ),
        (
            r#"sightline_incident_time_to_acknowledge_seconds_count{severity="critical"}"#,
            1.0,
        ),
        (
            r#"sightline_incident_time_to_resolve_seconds_count{severity="critical"}"#,
            1.0,
        ),
        (
            r#"sightline_incidents_open{severity="critical",status="acknowledged"}"#,
            0.0,
        ),
    ] {
        assert_eq!(sample(&scrape, series), Some(want), "{series}\n\n{scrape}");
    }
    // The open low incident, read from the store (the correlator may add its own).
    assert!(
        sample(
            &scrape,
            r#"sightline_incidents_open{severity="low",status="open"}"#
        )
        .is_some_and(|n| n >= 1.0),
        "{scrape}"
    );
    // The hand-made critical incident; the correlator may open more from the spike.
    assert!(
        sample(
            &scrape,
            r#"sightline_incidents_opened_total{severity="critical"}"#
        )
        .is_some_and(|n| n >= 1.0),
        "{scrape}"
    );
    // Incident durations have minute-to-day buckets, not the latency ones.
    for name in [
        "sightline_incident_time_to_acknowledge_seconds",
        "sightline_incident_time_to_resolve_seconds",
    ] {
        for series in histogram_series(name) {
            assert!(scrape.contains(&series), "{series}\n\n{scrape}");
        }
        let bucket = format!(r#"{name}_bucket{{severity="critical",le="3600"}}"#);
        assert_eq!(sample(&scrape, &bucket), Some(1.0), "{bucket}\n\n{scrape}");
    }
}

// ---------------------------------------------------------------------------------------
// Kubernetes

#[test]
fn kubernetes_manifests_parse_and_live_in_the_namespace() {
    let dir = deploy().join("k8s");
    let listed = kustomization_resources();
    let mut problems = Vec::new();
    for file in yaml_files(&dir) {
        let name = file_name(&file);
        if name != "kustomization.yaml" && !listed.contains(&name) {
            problems.push(format!("{name} is not listed in kustomization.yaml"));
        }
    }
    for manifest in manifests() {
        let at = &manifest.at;
        let doc = &manifest.doc;
        for field in ["apiVersion", "kind"] {
            if doc[field].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{at}: no {field}"));
            }
        }
        if doc["metadata"]["name"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{at}: no metadata.name"));
        }
        let (kind, name) = (kind(doc), name(doc));
        let namespace = if kind == "Namespace" {
            Some(name)
        } else {
            doc["metadata"]["namespace"].as_str()
        };
        if namespace != Some("sightline") {
            problems.push(format!(
                "{at}: {kind} {name} is in namespace {namespace:?}, not \"sightline\""
            ));
        }
    }
    assert_no_problems("deploy/k8s", &problems);
}

#[test]
fn kubernetes_services_select_pods_and_their_ports() {
    let manifests = manifests();
    let deployments: Vec<&Manifest> = of_kind(&manifests, "Deployment");
    let services = of_kind(&manifests, "Service");
    assert!(!services.is_empty(), "deploy/k8s defines no Service");
    let mut problems = Vec::new();
    for deployment in &deployments {
        let selector = &deployment.doc["spec"]["selector"]["matchLabels"];
        if !labels_match(selector, pod_labels(&deployment.doc)) {
            problems.push(format!(
                "{}: selector.matchLabels do not match the pod template labels",
                deployment.at
            ));
        }
    }
    for service in services {
        let at = &service.at;
        let selector = &service.doc["spec"]["selector"];
        let selected: Vec<_> = deployments
            .iter()
            .filter(|d| labels_match(selector, pod_labels(&d.doc)))
            .collect();
        if selected.is_empty() {
            problems.push(format!(
                "{at}: selector {} matches no Deployment",
                labels_text(selector)
            ));
        }
        for port in sequence(&service.doc["spec"]["ports"]) {
            let target = match &port["targetPort"] {
                Value::Null => &port["port"],
                target => target,
            };
            for deployment in &selected {
                if !containers(&deployment.doc)
                    .iter()
                    .any(|c| has_port(c, target))
                {
                    problems.push(format!(
                        "{at}: targetPort {} is no container port of {}",
                        yaml_text(target),
                        name(&deployment.doc)
                    ));
                }
            }
        }
    }
    assert_no_problems("deploy/k8s services", &problems);
}

#[test]
fn kubernetes_deployments_reference_existing_config() {
    let manifests = manifests();
    let keys_of = |kind_name: &str| -> BTreeMap<String, BTreeSet<String>> {
        of_kind(&manifests, kind_name)
            .into_iter()
            .map(|m| {
                let keys = ["data", "stringData", "binaryData"]
                    .iter()
                    .flat_map(|field| mapping_keys(&m.doc[*field]))
                    .collect();
                (name(&m.doc).to_owned(), keys)
            })
            .collect()
    };
    let defined = [
        ("ConfigMap", keys_of("ConfigMap")),
        ("Secret", keys_of("Secret")),
    ];
    let mut problems = Vec::new();
    for deployment in of_kind(&manifests, "Deployment") {
        let at = format!("{} ({})", deployment.at, name(&deployment.doc));
        let pod = &deployment.doc["spec"]["template"]["spec"];
        let volume_names: BTreeSet<String> = sequence(&pod["volumes"])
            .iter()
            .filter_map(|v| v["name"].as_str().map(str::to_owned))
            .collect();
        for container in containers(&deployment.doc) {
            for mount in sequence(&container["volumeMounts"]) {
                let volume = mount["name"].as_str().unwrap_or_default();
                if !volume_names.contains(volume) {
                    problems.push(format!("{at}: mounts undefined volume {volume:?}"));
                }
            }
        }
        for reference in config_references(pod) {
            if reference.optional {
                continue;
            }
            let (what, name) = (reference.kind, &reference.name);
            let keys = defined
                .iter()
                .find(|(k, _)| *k == what)
                .map(|(_, keys)| keys);
            match (keys.and_then(|keys| keys.get(name)), &reference.key) {
                (None, _) => problems.push(format!("{at}: {what} {name:?} is not defined")),
                (Some(keys), Some(key)) if !keys.contains(key) => {
                    problems.push(format!("{at}: {what} {name:?} has no key {key:?}"));
                }
                _ => {}
            }
        }
    }
    assert_no_problems("deploy/k8s references", &problems);
}

#[test]
fn kubernetes_deployments_run_every_role_with_probes_resources_and_scraping() {
    let manifests = manifests();
    let mut problems = Vec::new();
    let mut pods_per_role: BTreeMap<String, u64> = BTreeMap::new();
    for deployment in of_kind(&manifests, "Deployment") {
        let at = format!("{} ({})", deployment.at, name(&deployment.doc));
        let template = &deployment.doc["spec"]["template"];
        let replicas = deployment.doc["spec"]["replicas"].as_u64().unwrap_or(1);
        for container in containers(&deployment.doc) {
            let c = container["name"].as_str().unwrap_or("?");
            for (probe, path) in [("readinessProbe", "/ready"), ("livenessProbe", "/health")] {
                let get = &container[probe]["httpGet"];
                if get["path"].as_str() != Some(path) {
                    problems.push(format!("{at}: container {c} {probe} does not GET {path}"));
                } else if !has_port(container, &get["port"]) {
                    problems.push(format!(
                        "{at}: container {c} {probe} port {} is no container port",
                        yaml_text(&get["port"])
                    ));
                }
            }
            for bound in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    if container["resources"][bound][resource].is_null() {
                        problems.push(format!("{at}: container {c} sets no {resource} {bound}"));
                    }
                }
            }
            let role = sequence(&container["env"])
                .iter()
                .find(|v| v["name"].as_str() == Some("SIGHTLINE_ROLE"))
                .and_then(|v| v["value"].as_str());
            match role {
                Some(role) if ROLES.contains(&role) => {
                    *pods_per_role.entry(role.to_owned()).or_default() += replicas;
                }
                other => problems.push(format!(
                    "{at}: container {c} SIGHTLINE_ROLE={other:?}, want one of {ROLES:?}"
                )),
            }
        }
        let annotations = &template["metadata"]["annotations"];
        if annotations["prometheus.io/scrape"].as_str() != Some("true") {
            problems.push(format!("{at}: pods lack prometheus.io/scrape: \"true\""));
        }
        let port = annotations["prometheus.io/port"]
            .as_str()
            .and_then(|p| p.parse::<u64>().ok());
        if port.is_none_or(|p| {
            !containers(&deployment.doc)
                .iter()
                .any(|c| has_port(c, &p.into()))
        }) {
            problems.push(format!(
                "{at}: prometheus.io/port {port:?} is no container port of the pod"
            ));
        }
    }
    let count = |role: &str| pods_per_role.get(role).copied().unwrap_or(0);
    for (role, least) in [("ingest", 1), ("process", 2), ("api", 1)] {
        if count(role) + count("all") < least {
            problems.push(format!(
                "role {role}: {} pod(s), want at least {least} (pods per role: {pods_per_role:?})",
                count(role) + count("all")
            ));
        }
    }
    assert_no_problems("deploy/k8s deployments", &problems);
}

#[test]
fn kubernetes_config_map_holds_the_shared_config() {
    let manifests = manifests();
    let holders: Vec<_> = of_kind(&manifests, "ConfigMap")
        .into_iter()
        .filter(|m| m.doc["data"]["sightline.toml"].is_string())
        .collect();
    assert_eq!(
        holders.len(),
        1,
        "want exactly one ConfigMap with a sightline.toml key, found {}",
        holders.len()
    );
    let holder = holders[0];
    let text = holder.doc["data"]["sightline.toml"]
        .as_str()
        .unwrap_or_default();
    let in_cluster: toml::Table = toml::from_str(text)
        .unwrap_or_else(|e| panic!("{}: sightline.toml does not parse: {e}", holder.at));
    let differences = toml_differences(&in_cluster, &shared_config());
    assert!(
        differences.is_empty(),
        "{}: sightline.toml differs from deploy/sightline.toml (ConfigMap vs file):\n  {}",
        holder.at,
        differences.join("\n  ")
    );

    // Every node reads it from where the ConfigMap is mounted.
    let config_map = name(&holder.doc);
    let mut problems = Vec::new();
    for deployment in of_kind(&manifests, "Deployment") {
        let pod = &deployment.doc["spec"]["template"]["spec"];
        let volume = sequence(&pod["volumes"])
            .iter()
            .find(|v| v["configMap"]["name"].as_str() == Some(config_map))
            .and_then(|v| v["name"].as_str());
        for container in containers(&deployment.doc) {
            let mount = sequence(&container["volumeMounts"])
                .iter()
                .find(|m| volume.is_some() && m["name"].as_str() == volume)
                .and_then(|m| m["mountPath"].as_str());
            let config = sequence(&container["env"])
                .iter()
                .find(|v| v["name"].as_str() == Some("SIGHTLINE_CONFIG"))
                .and_then(|v| v["value"].as_str());
            let expected = mount.map(|dir| format!("{}/sightline.toml", dir.trim_end_matches('/')));
            if expected.is_none() || config != expected.as_deref() {
                problems.push(format!(
                    "{} ({}): SIGHTLINE_CONFIG={config:?}, but ConfigMap {config_map} is mounted at {mount:?}",
                    deployment.at,
                    name(&deployment.doc)
                ));
            }
        }
    }
    assert_no_problems("deploy/k8s config", &problems);
}

// ---------------------------------------------------------------------------------------
// Reading the files

fn repository() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn deploy() -> PathBuf {
    repository().join("deploy")
}

/// A path as messages show it: relative to the repository, without `.` and `..`.
fn shown(path: &Path) -> String {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    let root = repository();
    normal
        .strip_prefix(&root)
        .unwrap_or(&normal)
        .display()
        .to_string()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", shown(path)))
}

/// One YAML document, with `<<` merge keys applied as compose applies them.
fn yaml(path: &Path) -> Value {
    let mut value: Value = serde_yaml_ng::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", shown(path)));
    value
        .apply_merge()
        .unwrap_or_else(|e| panic!("{}: bad merge key: {e}", shown(path)));
    value
}

fn files_ending(dir: &Path, suffixes: &[&str]) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", shown(dir)));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| suffixes.iter().any(|s| file_name(p).ends_with(s)))
        .collect();
    files.sort();
    files
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, &[".yml", ".yaml"])
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, &[".json"])
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}:\n  - {}",
        problems.join("\n  - ")
    );
}

fn sequence(value: &Value) -> &[Value] {
    value.as_sequence().map_or(&[], Vec::as_slice)
}

fn mapping_keys(value: &Value) -> BTreeSet<String> {
    value
        .as_mapping()
        .into_iter()
        .flat_map(|m| m.keys())
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect()
}

/// A scalar as text (numbers and booleans as written), a structure as YAML.
fn yaml_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

/// The host of `host:port`, `scheme://host:port/...` or `scheme://user:pw@host/...`.
fn host_of(address: &str) -> &str {
    let rest = address
        .trim()
        .split_once("://")
        .map_or(address.trim(), |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host_port.split(':').next().unwrap_or_default()
}

fn port_of(address: &str) -> &str {
    address.rsplit_once(':').map_or("", |(_, port)| port)
}

// ---------------------------------------------------------------------------------------
// Compose helpers

fn compose() -> Value {
    yaml(&deploy().join("docker-compose.yml"))
}

fn services(compose: &Value) -> BTreeMap<String, &Value> {
    let services: BTreeMap<String, &Value> = compose["services"]
        .as_mapping()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| k.as_str().map(|k| (k.to_owned(), v)))
        .collect();
    assert!(
        !services.is_empty(),
        "deploy/docker-compose.yml defines no services"
    );
    services
}

/// The Dockerfile a service builds from, resolved against `deploy/`.
fn build_dockerfile(service: &Value) -> Option<PathBuf> {
    let (context, dockerfile) = match &service["build"] {
        Value::Null => return None,
        Value::String(context) => (context.as_str(), "Dockerfile"),
        build => (
            build["context"].as_str().unwrap_or("."),
            build["dockerfile"].as_str().unwrap_or("Dockerfile"),
        ),
    };
    Some(deploy().join(context).join(dockerfile))
}

/// The services that run the sightline image: those built from `deploy/Dockerfile`.
fn sightline_services<'a>(services: &BTreeMap<String, &'a Value>) -> BTreeMap<String, &'a Value> {
    let ours = deploy()
        .join("Dockerfile")
        .canonicalize()
        .expect("deploy/Dockerfile exists");
    let nodes: BTreeMap<String, &Value> = services
        .iter()
        .filter(|(_, s)| {
            build_dockerfile(s)
                .and_then(|d| d.canonicalize().ok())
                .is_some_and(|d| d == ours)
        })
        .map(|(n, s)| (n.clone(), *s))
        .collect();
    assert!(
        !nodes.is_empty(),
        "no compose service builds deploy/Dockerfile"
    );
    nodes
}

fn depends_on(service: &Value) -> Vec<(String, String)> {
    match &service["depends_on"] {
        Value::Sequence(names) => names
            .iter()
            .map(|n| (yaml_text(n), "service_started".to_owned()))
            .collect(),
        Value::Mapping(map) => map
            .iter()
            .map(|(name, how)| {
                let condition = how["condition"].as_str().unwrap_or("service_started");
                (yaml_text(name), condition.to_owned())
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Mapping(map) => map
            .iter()
            .map(|(k, v)| (yaml_text(k), yaml_text(v)))
            .collect(),
        Value::Sequence(items) => items
            .iter()
            .filter_map(|item| {
                let item = item.as_str()?;
                let (k, v) = item.split_once('=').unwrap_or((item, ""));
                Some((k.to_owned(), v.to_owned()))
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn replicas(service: &Value) -> u64 {
    service["deploy"]["replicas"].as_u64().unwrap_or(1)
}

enum Source {
    /// A bind mount, resolved against `deploy/`.
    Host(PathBuf),
    /// A named volume.
    Volume(String),
    /// An anonymous volume or a tmpfs.
    None,
}

struct Mount {
    source: Source,
    target: String,
}

fn mounts(service: &Value) -> Vec<Mount> {
    let source_of = |source: &str, bind: bool| {
        if source.is_empty() {
            Source::None
        } else if bind || source.starts_with(['.', '/', '~']) {
            Source::Host(deploy().join(source))
        } else {
            Source::Volume(source.to_owned())
        }
    };
    sequence(&service["volumes"])
        .iter()
        .map(|volume| match volume {
            Value::String(short) => {
                let mut parts = short.split(':');
                let first = parts.next().unwrap_or_default();
                match parts.next() {
                    Some(target) => Mount {
                        source: source_of(first, false),
                        target: target.to_owned(),
                    },
                    None => Mount {
                        source: Source::None,
                        target: first.to_owned(),
                    },
                }
            }
            long => Mount {
                source: source_of(
                    long["source"].as_str().unwrap_or_default(),
                    long["type"].as_str() == Some("bind"),
                ),
                target: long["target"].as_str().unwrap_or_default().to_owned(),
            },
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Shared configuration helpers

fn shared_config() -> toml::Table {
    let path = deploy().join("sightline.toml");
    toml::from_str(&read(&path)).unwrap_or_else(|e| panic!("{} does not parse: {e}", shown(&path)))
}

fn toml_value<'a>(table: &'a toml::Table, dotted: &str) -> Option<&'a toml::Value> {
    let mut keys = dotted.split('.');
    let mut value = table.get(keys.next()?)?;
    for key in keys {
        value = value.get(key)?;
    }
    Some(value)
}

/// Every key, as a dotted path, whose value differs between two tables.
fn toml_differences(left: &toml::Table, right: &toml::Table) -> Vec<String> {
    fn flatten(prefix: &str, table: &toml::Table, into: &mut BTreeMap<String, String>) {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::Table(inner) => flatten(&path, inner, into),
                other => {
                    into.insert(path, other.to_string());
                }
            }
        }
    }
    let (mut l, mut r) = (BTreeMap::new(), BTreeMap::new());
    flatten("", left, &mut l);
    flatten("", right, &mut r);
    let keys: BTreeSet<&String> = l.keys().chain(r.keys()).collect();
    keys.into_iter()
        .filter(|k| l.get(*k) != r.get(*k))
        .map(|k| format!("{k}: {:?} vs {:?}", l.get(k), r.get(k)))
        .collect()
}

fn toml_str<'a>(table: &'a toml::Table, dotted: &str) -> Option<&'a str> {
    toml_value(table, dotted).and_then(toml::Value::as_str)
}

// ---------------------------------------------------------------------------------------
// Kubernetes helpers

/// One document of a manifest file, with where it came from for messages.
struct Manifest {
    at: String,
    doc: Value,
}

fn kustomization_resources() -> Vec<String> {
    let kustomization = yaml(&deploy().join("k8s/kustomization.yaml"));
    let resources: Vec<String> = sequence(&kustomization["resources"])
        .iter()
        .map(yaml_text)
        .collect();
    assert!(
        !resources.is_empty(),
        "deploy/k8s/kustomization.yaml lists no resources"
    );
    resources
}

fn manifests() -> Vec<Manifest> {
    let mut manifests = Vec::new();
    for resource in kustomization_resources() {
        let path = deploy().join("k8s").join(&resource);
        let text = read(&path);
        for (index, document) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let at = format!("k8s/{resource} document {}", index + 1);
            let doc =
                Value::deserialize(document).unwrap_or_else(|e| panic!("{at} does not parse: {e}"));
            assert!(doc.is_mapping(), "{at} is empty or not a mapping");
            manifests.push(Manifest { at, doc });
        }
    }
    manifests
}

/// A ConfigMap or Secret a pod uses, with the key it reads if it reads one.
struct ConfigReference {
    kind: &'static str,
    name: String,
    key: Option<String>,
    optional: bool,
}

/// The ConfigMaps and Secrets a pod spec uses: volumes, `envFrom` and `env[].valueFrom`.
fn config_references(pod: &Value) -> Vec<ConfigReference> {
    let reference = |kind, node: &Value, name_field: &str, key: Option<&str>| ConfigReference {
        kind,
        name: node[name_field].as_str().unwrap_or_default().to_owned(),
        key: key.map(str::to_owned),
        optional: node["optional"].as_bool() == Some(true),
    };
    let mut found = Vec::new();
    for volume in sequence(&pod["volumes"]) {
        if volume["configMap"].is_mapping() {
            found.push(reference("ConfigMap", &volume["configMap"], "name", None));
        }
        if volume["secret"].is_mapping() {
            found.push(reference("Secret", &volume["secret"], "secretName", None));
        }
    }
    for container in sequence(&pod["containers"]) {
        for source in sequence(&container["envFrom"]) {
            for (field, kind) in [("configMapRef", "ConfigMap"), ("secretRef", "Secret")] {
                if source[field].is_mapping() {
                    found.push(reference(kind, &source[field], "name", None));
                }
            }
        }
        for variable in sequence(&container["env"]) {
            for (field, kind) in [("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")] {
                let node = &variable["valueFrom"][field];
                if node.is_mapping() {
                    found.push(reference(kind, node, "name", node["key"].as_str()));
                }
            }
        }
    }
    found
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

fn of_kind<'a>(manifests: &'a [Manifest], wanted: &str) -> Vec<&'a Manifest> {
    manifests
        .iter()
        .filter(|m| kind(&m.doc) == wanted)
        .collect()
}

fn pod_labels(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["metadata"]["labels"]
}

fn containers(deployment: &Value) -> &[Value] {
    sequence(&deployment["spec"]["template"]["spec"]["containers"])
}

/// Whether every label of a non-empty `selector` is among `labels`.
fn labels_match(selector: &Value, labels: &Value) -> bool {
    let Some(selector) = selector.as_mapping().filter(|s| !s.is_empty()) else {
        return false;
    };
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn labels_text(labels: &Value) -> String {
    let pairs: Vec<String> = labels
        .as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{}={}", yaml_text(k), yaml_text(v)))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

/// Whether a container declares `port`, given by number or by name.
fn has_port(container: &Value, port: &Value) -> bool {
    sequence(&container["ports"]).iter().any(|p| match port {
        Value::Number(_) => p["containerPort"] == *port,
        Value::String(name) => p["name"].as_str() == Some(name),
        _ => false,
    })
}

// ---------------------------------------------------------------------------------------
// Metric names: what the code exports, what the dashboards query

/// Every series name the Prometheus endpoint can expose: the exporter writes counter names
/// as given (ours already end in `_total`; one that does not is also accepted with it), and
/// a histogram as `_bucket`, `_sum` and `_count` series.
fn exported_series() -> BTreeSet<String> {
    let mut series = BTreeSet::new();
    for (name, kind) in exported_metrics() {
        match kind {
            "counter" => {
                if !name.ends_with("_total") {
                    series.insert(format!("{name}_total"));
                }
                series.insert(name);
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    series.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                series.insert(name);
            }
        }
    }
    series
}

/// Every metric the code records and its type (`counter`, `gauge`, `histogram`), derived
/// from the metric macros in `crates/*/src`: the name is either a string literal or a
/// `&str` constant.
fn exported_metrics() -> BTreeMap<String, &'static str> {
    let crates = repository().join("crates");
    let mut sources: Vec<(String, PathBuf, String)> = Vec::new();
    for entry in fs::read_dir(&crates).expect("crates directory") {
        let crate_dir = entry.expect("crate entry").path();
        let crate_name = file_name(&crate_dir);
        for file in rust_files(&crate_dir.join("src")) {
            let text = read(&file);
            sources.push((crate_name.clone(), file, text));
        }
    }
    // Constants are looked up in their own file first (two modules of a crate may name
    // their metrics alike), then their crate, then anywhere (re-used names).
    let mut in_file: BTreeMap<(PathBuf, String), String> = BTreeMap::new();
    let mut constants: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut anywhere: BTreeMap<String, String> = BTreeMap::new();
    for (crate_name, file, text) in &sources {
        for (ident, value) in str_constants(text) {
            anywhere.insert(ident.clone(), value.clone());
            constants.insert((crate_name.clone(), ident.clone()), value.clone());
            in_file.insert((file.clone(), ident), value);
        }
    }
    let mut metrics = BTreeMap::new();
    let mut unresolved = Vec::new();
    for (crate_name, file, text) in &sources {
        for (macro_kind, argument) in metric_macro_names(text) {
            let name = if let Some(literal) = leading_string_literal(&argument) {
                literal
            } else {
                let ident = argument.rsplit("::").next().unwrap_or_default().trim();
                let found = in_file
                    .get(&(file.clone(), ident.to_owned()))
                    .or_else(|| constants.get(&(crate_name.clone(), ident.to_owned())))
                    .or_else(|| anywhere.get(ident));
                match found {
                    Some(value) => value.clone(),
                    // A runtime name cannot be known here; a constant must resolve.
                    None if ident.chars().any(|c| c.is_ascii_lowercase()) => continue,
                    None => {
                        unresolved.push(format!("{}: {argument}", shown(file)));
                        continue;
                    }
                }
            };
            let name: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == ':' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            metrics.insert(name, macro_kind);
        }
    }
    assert!(
        unresolved.is_empty(),
        "metric names that are neither literals nor known &str constants:\n  {}",
        unresolved.join("\n  ")
    );
    assert!(
        !metrics.is_empty(),
        "found no metric macros under crates/*/src"
    );
    metrics
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `const NAME: &str = "value";` declarations.
fn str_constants(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("const ") {
        if text[..at].chars().next_back().is_some_and(is_ident_char) {
            continue;
        }
        let rest = &text[at + "const ".len()..];
        let Some((ident, rest)) = rest.split_once(':') else {
            continue;
        };
        let Some((ty, value)) = rest.split_once('=') else {
            continue;
        };
        let ident = ident.trim();
        if !ident.chars().all(is_ident_char) || !matches!(ty.trim(), "&str" | "&'static str") {
            continue;
        }
        if let Some(value) = leading_string_literal(value) {
            found.push((ident.to_owned(), value));
        }
    }
    found
}

/// The first argument of every `counter!`, `gauge!` and `histogram!` (also `describe_*!`).
fn metric_macro_names(text: &str) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    for kind in ["counter", "gauge", "histogram"] {
        let pattern = format!("{kind}!(");
        for (at, _) in text.match_indices(&pattern) {
            let rest = &text[at + pattern.len()..];
            let end = rest.find([',', ')']).unwrap_or(rest.len());
            let argument = rest[..end].trim();
            if !argument.is_empty() {
                found.push((kind, argument.to_owned()));
            }
        }
    }
    found
}

/// The content of a plain string literal at the start of `text` (after whitespace).
fn leading_string_literal(text: &str) -> Option<String> {
    let rest = text.trim_start().strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(rest[..end].to_owned())
}

/// Every panel, including those nested in collapsed rows.
fn panels(dashboard: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut found = Vec::new();
    let mut stack: Vec<&serde_json::Value> = dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    while let Some(panel) = stack.pop() {
        stack.extend(panel["panels"].as_array().into_iter().flatten());
        found.push(panel);
    }
    found
}

/// PromQL words that are not metric names.
const PROMQL_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// The metric names a PromQL expression selects: identifiers outside strings, label
/// matchers (`{…}`), ranges (`[…]`) and label lists (`by (…)`), that are neither keywords,
/// functions (followed by `(`), numbers nor Grafana variables (`$name`).
fn metric_names(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    let skip_to = |from: usize, close: char| {
        chars[from..]
            .iter()
            .position(|&c| c == close)
            .map_or(chars.len(), |p| from + p + 1)
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => i = skip_to(i + 1, c),
            '{' => i = skip_to(i + 1, '}'),
            '[' => i = skip_to(i + 1, ']'),
            '$' => {
                i += 1;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (is_ident_char(chars[i]) || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len() && (is_ident_char(chars[i]) || chars[i] == ':') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut next = i;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                let call = chars.get(next) == Some(&'(');
                let label_list = matches!(
                    word.as_str(),
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                );
                if label_list && call {
                    i = skip_to(next + 1, ')');
                } else if !call && !PROMQL_KEYWORDS.contains(&word.as_str()) {
                    names.push(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// Every sightline node of the compose stack, started as the binary would be — the shared
/// file plus the node's environment — yields a configuration the binary accepts, with the
/// node's role and the scale-out backends.
#[test]
fn every_compose_node_configuration_loads() {
    let compose = compose();
    let services = services(&compose);
    let mut problems = Vec::new();
    for (name, service) in sightline_services(&services) {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sightline"));
        command.args(["config", "show"]);
        for (key, _) in std::env::vars() {
            if key.starts_with("SIGHTLINE_") {
                command.env_remove(key);
            }
        }
        for (key, value) in environment(service) {
            command.env(key, value);
        }
        // The file is mounted at SIGHTLINE_CONFIG in the container; read it from the repo.
        command.env("SIGHTLINE_CONFIG", deploy().join("sightline.toml"));
        let out = command.output().expect("run sightline config show");
        if !out.status.success() {
            problems.push(format!(
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            continue;
        }
        let shown: toml::Table =
            toml::from_str(&String::from_utf8_lossy(&out.stdout)).expect("config show prints TOML");
        let role = environment(service)
            .get("SIGHTLINE_ROLE")
            .cloned()
            .unwrap_or_default();
        for (key, expected) in [
            ("role", role.as_str()),
            ("log.kind", "kafka"),
            ("store.kind", "postgres"),
            ("cache.kind", "redis"),
        ] {
            let got = toml_value(&shown, key).and_then(toml::Value::as_str);
            if got != Some(expected) {
                problems.push(format!("{name}: {key} = {got:?}, expected {expected:?}"));
            }
        }
    }
    assert_no_problems("compose node configurations", &problems);
}
