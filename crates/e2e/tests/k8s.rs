//! The Kubernetes manifests (`deploy/k8s/`), rendered as kustomize would list them and checked for
//! what the schema validation (`scripts/k8s-check.sh`) cannot see: every container non-root,
//! read-only, without capabilities, with probes on the right endpoints and bounded resources;
//! keys only as files read through `*_FILE`; the NetworkPolicy's reach. Each check has a test
//! that breaks the real manifest and expects the finding.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/k8s")
}

fn docs_of(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    // Documents are separated by a `---` line (none of these files uses other document markers).
    text.split("\n---\n")
        .map(|d| {
            serde_yaml::from_str::<Value>(d).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The files kustomization.yaml applies, in its order.
fn resources() -> Vec<String> {
    let k = &docs_of(&dir().join("kustomization.yaml"))[0];
    k["resources"]
        .as_sequence()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("a file name").to_owned())
        .collect()
}

/// Every object kustomize would apply.
fn rendered() -> Vec<Value> {
    resources()
        .iter()
        .flat_map(|f| docs_of(&dir().join(f)))
        .collect()
}

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or("")
}

fn name(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or("")
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_sequence()
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Settings that are secrets: only their `*_FILE` form may appear in a manifest.
const SECRET_SETTINGS: &[&str] = &[
    "DATABASE_URL",
    "CLERK_SECRET_KEY",
    "CLERK_MACHINE_SECRET_KEY",
    "CLERK_JWT_KEY",
    "CLERK_M2M_TOKEN",
    "APPLIER_SUBMIT_URL",
];

/// Label of the pods the API admits (the bots).
const CLIENT_LABEL: &str = "jobtracker.example.com/api-client";

/// What is wrong with one Deployment's pod template.
fn deployment_findings(d: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let n = name(d);
    let pod = &d["spec"]["template"]["spec"];
    let psc = &pod["securityContext"];
    if psc["runAsNonRoot"] != Value::Bool(true) {
        out.push(format!("{n}: pod runAsNonRoot is not true"));
    }
    if psc["seccompProfile"]["type"].as_str() != Some("RuntimeDefault") {
        out.push(format!("{n}: pod seccompProfile is not RuntimeDefault"));
    }
    if pod["automountServiceAccountToken"] != Value::Bool(false) {
        out.push(format!("{n}: a service account token is mounted"));
    }
    for flag in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[flag] == Value::Bool(true) {
            out.push(format!("{n}: {flag}"));
        }
    }
    // Secret volumes: their names, mount paths, and modes no other user can read.
    let volumes = pod["volumes"].as_sequence().cloned().unwrap_or_default();
    let secret_volumes: BTreeSet<&str> = volumes
        .iter()
        .filter(|v| !v["secret"].is_null())
        .filter_map(|v| v["name"].as_str())
        .collect();
    for v in volumes.iter().filter(|v| !v["secret"].is_null()) {
        match v["secret"]["defaultMode"].as_u64() {
            Some(mode) if mode & 0o007 == 0 => {}
            _ => out.push(format!(
                "{n}: secret volume {} is readable by others (defaultMode)",
                v["name"].as_str().unwrap_or("?")
            )),
        }
    }
    for v in &volumes {
        if !v["hostPath"].is_null() {
            out.push(format!("{n}: hostPath volume"));
        }
    }
    let containers = pod["containers"].as_sequence().cloned().unwrap_or_default();
    if containers.is_empty() {
        out.push(format!("{n}: no container"));
    }
    for c in &containers {
        let cn = format!("{n}/{}", c["name"].as_str().unwrap_or("?"));
        let sc = &c["securityContext"];
        if sc["runAsNonRoot"] != Value::Bool(true) {
            out.push(format!("{cn}: runAsNonRoot is not true"));
        }
        if sc["readOnlyRootFilesystem"] != Value::Bool(true) {
            out.push(format!("{cn}: root filesystem is not read-only"));
        }
        if sc["allowPrivilegeEscalation"] != Value::Bool(false) {
            out.push(format!("{cn}: privilege escalation allowed"));
        }
        if sc["privileged"] == Value::Bool(true) {
            out.push(format!("{cn}: privileged"));
        }
        if strs(&sc["capabilities"]["drop"]) != ["ALL"] || !sc["capabilities"]["add"].is_null() {
            out.push(format!("{cn}: capabilities are not exactly drop [ALL]"));
        }
        if sc["seccompProfile"]["type"].as_str() != Some("RuntimeDefault") {
            out.push(format!("{cn}: seccompProfile is not RuntimeDefault"));
        }
        if let Some(uid) = sc["runAsUser"].as_u64().or(psc["runAsUser"].as_u64())
            && uid == 0
        {
            out.push(format!("{cn}: runs as uid 0"));
        }
        let res = &c["resources"];
        for (what, v) in [
            ("requests.cpu", &res["requests"]["cpu"]),
            ("requests.memory", &res["requests"]["memory"]),
            ("limits.memory", &res["limits"]["memory"]),
        ] {
            if v.is_null() {
                out.push(format!("{cn}: no {what}"));
            }
        }
        for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
            if c[probe]["httpGet"]["path"].as_str().is_none() {
                out.push(format!("{cn}: no {probe} over HTTP"));
            }
        }
        // Liveness never depends on the database (an outage would restart every replica).
        if c["livenessProbe"]["httpGet"]["path"].as_str() == Some("/readyz") {
            out.push(format!("{cn}: liveness on /readyz"));
        }
        for p in c["ports"].as_sequence().cloned().unwrap_or_default() {
            if p["name"].as_str() == Some("metrics") {
                out.push(format!("{cn}: a metrics port is exposed"));
            }
        }
        // Secrets: never in env (value or secretKeyRef), only as files read through *_FILE,
        // each under a read-only mount of a Secret volume.
        let mounts = c["volumeMounts"].as_sequence().cloned().unwrap_or_default();
        let env = c["env"].as_sequence().cloned().unwrap_or_default();
        for e in &env {
            let var = e["name"].as_str().unwrap_or("");
            if !e["valueFrom"]["secretKeyRef"].is_null() {
                out.push(format!(
                    "{cn}: {var} comes from a Secret as an environment variable"
                ));
            }
            if SECRET_SETTINGS.contains(&var) {
                out.push(format!("{cn}: {var} set directly (use {var}_FILE)"));
            }
            if let Some(base) = var.strip_suffix("_FILE")
                && SECRET_SETTINGS.contains(&base)
            {
                let path = e["value"].as_str().unwrap_or("");
                let mounted = mounts.iter().any(|m| {
                    let at = m["mountPath"].as_str().unwrap_or("\0");
                    path.starts_with(&format!("{at}/"))
                        && m["readOnly"] == Value::Bool(true)
                        && m["name"]
                            .as_str()
                            .is_some_and(|v| secret_volumes.contains(v))
                });
                if !mounted {
                    out.push(format!(
                        "{cn}: {var} is not under a read-only Secret volume mount"
                    ));
                }
            }
        }
        for e in c["envFrom"].as_sequence().cloned().unwrap_or_default() {
            if !e["secretRef"].is_null() {
                out.push(format!("{cn}: a whole Secret as environment variables"));
            }
        }
    }
    out
}

/// What is wrong with the system as a whole: the API's probes, PDB, HPA and network reach.
fn system_findings(objs: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    let of = |k: &str, n: &str| objs.iter().find(|o| kind(o) == k && name(o) == n);
    for d in objs.iter().filter(|o| kind(o) == "Deployment") {
        out.extend(deployment_findings(d));
    }
    for want in ["jobtracker-api", "candidate-representer", "job-applier"] {
        if of("Deployment", want).is_none() {
            out.push(format!("no Deployment {want}"));
        }
    }
    if objs.iter().any(|o| kind(o) == "Secret") {
        out.push("a Secret among the applied manifests (keys would be in git)".to_owned());
    }
    let Some(api) = of("Deployment", "jobtracker-api") else {
        return out;
    };
    let api_labels = &api["spec"]["template"]["metadata"]["labels"];
    let c = &api["spec"]["template"]["spec"]["containers"][0];
    for (probe, path) in [
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ] {
        if c[probe]["httpGet"]["path"].as_str() != Some(path) {
            out.push(format!("api: {probe} is not on {path}"));
        }
    }
    if api["spec"]["replicas"].as_u64().unwrap_or(1) < 2 {
        out.push("api: fewer than 2 replicas".to_owned());
    }
    if api_labels[CLIENT_LABEL] != Value::Null {
        out.push("api: carries the bots' label, so it may reach itself as a client".to_owned());
    }
    // PDB and HPA aim at the API.
    match of("PodDisruptionBudget", "jobtracker-api") {
        Some(pdb) if matches_labels(&pdb["spec"]["selector"]["matchLabels"], api_labels) => {}
        _ => out.push("api: no PodDisruptionBudget selecting its pods".to_owned()),
    }
    match of("HorizontalPodAutoscaler", "jobtracker-api") {
        Some(hpa)
            if hpa["spec"]["scaleTargetRef"]["name"].as_str() == Some("jobtracker-api")
                && hpa["spec"]["minReplicas"].as_u64().unwrap_or(1) >= 2 => {}
        _ => out.push("api: no HorizontalPodAutoscaler (minReplicas >= 2) on it".to_owned()),
    }
    // Bots carry the client label; nothing else does.
    for d in objs.iter().filter(|o| kind(o) == "Deployment") {
        let labelled =
            d["spec"]["template"]["metadata"]["labels"][CLIENT_LABEL].as_str() == Some("true");
        let bot = matches!(name(d), "candidate-representer" | "job-applier");
        if labelled != bot {
            out.push(format!(
                "{}: the API client label is {}",
                name(d),
                if labelled { "set" } else { "missing" }
            ));
        }
    }
    out.extend(network_findings(objs, api_labels));
    out
}

fn matches_labels(selector: &Value, labels: &Value) -> bool {
    selector.as_mapping().is_some_and(|m| {
        !m.is_empty()
            && m.iter()
                .all(|(k, v)| &labels[k.as_str().unwrap_or("")] == v)
    })
}

fn ports(rule: &Value) -> BTreeSet<(String, u64)> {
    rule["ports"]
        .as_sequence()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    (
                        p["protocol"].as_str().unwrap_or("TCP").to_owned(),
                        p["port"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn network_findings(objs: &[Value], api_labels: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let policies: Vec<&Value> = objs.iter().filter(|o| kind(o) == "NetworkPolicy").collect();
    let deny = policies.iter().any(|p| {
        p["spec"]["podSelector"]
            .as_mapping()
            .is_some_and(|m| m.is_empty())
            && strs(&p["spec"]["policyTypes"]) == ["Ingress", "Egress"]
            && p["spec"]["ingress"].is_null()
            && p["spec"]["egress"].is_null()
    });
    if !deny {
        out.push("network: no default-deny policy for ingress and egress".to_owned());
    }
    let api: Vec<&&Value> = policies
        .iter()
        .filter(|p| matches_labels(&p["spec"]["podSelector"]["matchLabels"], api_labels))
        .collect();
    if api.len() != 1 {
        out.push(format!(
            "network: {} policies select the API (want one)",
            api.len()
        ));
        return out;
    }
    let spec = &api[0]["spec"];
    if strs(&spec["policyTypes"]) != ["Ingress", "Egress"] {
        out.push("network: the API policy does not cover both directions".to_owned());
    }
    // Ingress: from the bots' label or the ingress controller's namespace, to 5000 only.
    for rule in spec["ingress"].as_sequence().cloned().unwrap_or_default() {
        if ports(&rule) != BTreeSet::from([("TCP".to_owned(), 5000)]) {
            out.push("network: the API admits a port other than TCP 5000".to_owned());
        }
        let from = rule["from"].as_sequence().cloned().unwrap_or_default();
        if from.is_empty() {
            out.push("network: the API admits anyone".to_owned());
        }
        for peer in from {
            let bots = peer["podSelector"]["matchLabels"]
                .as_mapping()
                .is_some_and(|m| {
                    m.len() == 1
                        && peer["podSelector"]["matchLabels"][CLIENT_LABEL].as_str() == Some("true")
                })
                && peer["namespaceSelector"].is_null();
            let ingress = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                .as_str()
                == Some("ingress-nginx")
                && peer["podSelector"].is_null();
            if !(bots || ingress) || !peer["ipBlock"].is_null() {
                out.push(format!("network: the API admits another peer: {peer:?}"));
            }
        }
    }
    // Egress: Postgres (5432, one address), Clerk (443), DNS (53) and nothing else.
    let mut seen = BTreeSet::new();
    for rule in spec["egress"].as_sequence().cloned().unwrap_or_default() {
        let p = ports(&rule);
        let to = rule["to"].as_sequence().cloned().unwrap_or_default();
        if p.is_empty() || to.is_empty() {
            out.push(
                "network: an API egress rule without ports or peers (anything goes)".to_owned(),
            );
            continue;
        }
        if p == BTreeSet::from([("TCP".to_owned(), 5432)]) {
            let one_host = to.len() == 1
                && to[0]["ipBlock"]["cidr"]
                    .as_str()
                    .is_some_and(|c| c.ends_with("/32"));
            if !one_host {
                out.push("network: API egress to 5432 is not one address".to_owned());
            }
            seen.insert("postgres");
        } else if p == BTreeSet::from([("TCP".to_owned(), 443)]) {
            let public = to.len() == 1
                && strs(&to[0]["ipBlock"]["except"]).contains(&"10.0.0.0/8")
                && strs(&to[0]["ipBlock"]["except"]).contains(&"172.16.0.0/12")
                && strs(&to[0]["ipBlock"]["except"]).contains(&"192.168.0.0/16");
            if !public {
                out.push("network: API egress to 443 reaches private addresses".to_owned());
            }
            seen.insert("clerk");
        } else if p == BTreeSet::from([("UDP".to_owned(), 53), ("TCP".to_owned(), 53)]) {
            let dns = to.len() == 1
                && to[0]["podSelector"]["matchLabels"]["k8s-app"].as_str() == Some("kube-dns");
            if !dns {
                out.push("network: API egress to 53 is not the cluster DNS only".to_owned());
            }
            seen.insert("dns");
        } else {
            out.push(format!("network: API egress to other ports: {p:?}"));
        }
    }
    if seen.len() != 3 {
        out.push(format!(
            "network: API egress lacks one of postgres, clerk, dns (has {seen:?})"
        ));
    }
    out
}

#[test]
fn every_manifest_parses_and_kustomization_lists_them_all() {
    let listed: BTreeSet<String> = resources().into_iter().collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .expect("deploy/k8s")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".yaml"))
        .filter(|f| f != "kustomization.yaml" && f != "secrets.example.yaml")
        .collect();
    assert_eq!(
        listed, on_disk,
        "kustomization.yaml's resources and the files differ"
    );
    for o in rendered() {
        assert!(
            o["apiVersion"].as_str().is_some() && !kind(&o).is_empty() && !name(&o).is_empty(),
            "{o:?}"
        );
    }
    // The example Secrets name every Secret the Deployments mount.
    let examples: BTreeSet<String> = docs_of(&dir().join("secrets.example.yaml"))
        .iter()
        .map(|s| name(s).to_owned())
        .collect();
    for d in rendered().iter().filter(|o| kind(o) == "Deployment") {
        for v in d["spec"]["template"]["spec"]["volumes"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            if let Some(s) = v["secret"]["secretName"].as_str() {
                assert!(
                    examples.contains(s),
                    "{s} is mounted but not in secrets.example.yaml"
                );
            }
        }
    }
}

#[test]
fn the_manifests_have_no_finding() {
    let findings = system_findings(&rendered());
    assert!(findings.is_empty(), "{findings:#?}");
}

/// The rendered manifests with one edit at `path` (keys, or indexes into sequences) in the
/// object of `kind`/`name`; `None` removes the key.
fn broken(kind_: &str, name_: &str, path: &[&str], value: Option<Value>) -> Vec<String> {
    let mut objs = rendered();
    let obj = objs
        .iter_mut()
        .find(|o| kind(o) == kind_ && name(o) == name_)
        .unwrap_or_else(|| panic!("no {kind_} {name_}"));
    let mut at = obj;
    for key in &path[..path.len() - 1] {
        at = match key.parse::<usize>() {
            Ok(i) => &mut at[i],
            Err(_) => &mut at[*key],
        };
    }
    let last = path[path.len() - 1];
    match value {
        Some(v) => match last.parse::<usize>() {
            Ok(i) => at[i] = v,
            Err(_) => at[last] = v,
        },
        None => {
            at.as_mapping_mut().expect("a mapping").remove(last);
        }
    }
    system_findings(&objs)
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).expect("test YAML")
}

fn expect_finding(findings: Vec<String>, needle: &str) {
    assert!(
        findings.iter().any(|f| f.contains(needle)),
        "expected a finding with {needle:?}, got {findings:#?}"
    );
}

const API_C: [&str; 6] = [
    "spec",
    "template",
    "spec",
    "containers",
    "0",
    "securityContext",
];

fn api_container(rest: &[&'static str]) -> Vec<&'static str> {
    let mut p = vec!["spec", "template", "spec", "containers", "0"];
    p.extend_from_slice(rest);
    p
}

#[test]
fn a_writable_root_filesystem_is_found() {
    let mut p = API_C.to_vec();
    p.push("readOnlyRootFilesystem");
    expect_finding(
        broken("Deployment", "job-applier", &p, Some(Value::Bool(false))),
        "not read-only",
    );
}

#[test]
fn root_privilege_escalation_and_capabilities_are_found() {
    let mut p = API_C.to_vec();
    p.push("runAsNonRoot");
    expect_finding(
        broken("Deployment", "jobtracker-api", &p, None),
        "runAsNonRoot",
    );
    let mut p = API_C.to_vec();
    p.push("allowPrivilegeEscalation");
    expect_finding(
        broken(
            "Deployment",
            "candidate-representer",
            &p,
            Some(Value::Bool(true)),
        ),
        "escalation",
    );
    let mut p = API_C.to_vec();
    p.push("capabilities");
    let caps: Value = yaml("{drop: [ALL], add: [NET_BIND_SERVICE]}");
    expect_finding(
        broken("Deployment", "jobtracker-api", &p, Some(caps)),
        "capabilities",
    );
    let mut p = API_C.to_vec();
    p.push("seccompProfile");
    expect_finding(
        broken("Deployment", "jobtracker-api", &p, None),
        "seccompProfile",
    );
    expect_finding(
        broken(
            "Deployment",
            "jobtracker-api",
            &[
                "spec",
                "template",
                "spec",
                "securityContext",
                "runAsNonRoot",
            ],
            None,
        ),
        "pod runAsNonRoot",
    );
}

#[test]
fn missing_probes_and_resources_are_found() {
    expect_finding(
        broken(
            "Deployment",
            "jobtracker-api",
            &api_container(&["readinessProbe"]),
            None,
        ),
        "readinessProbe",
    );
    expect_finding(
        broken(
            "Deployment",
            "job-applier",
            &api_container(&["startupProbe"]),
            None,
        ),
        "startupProbe",
    );
    let readyz: Value = yaml("{httpGet: {path: /readyz, port: http}}");
    expect_finding(
        broken(
            "Deployment",
            "jobtracker-api",
            &api_container(&["livenessProbe"]),
            Some(readyz),
        ),
        "liveness on /readyz",
    );
    expect_finding(
        broken(
            "Deployment",
            "jobtracker-api",
            &api_container(&["resources", "limits"]),
            None,
        ),
        "limits.memory",
    );
}

#[test]
fn a_key_in_the_environment_or_a_readable_secret_is_found() {
    // The database URL straight from a Secret into the environment.
    let env: Value = yaml(
        "{name: DATABASE_URL, valueFrom: {secretKeyRef: {name: jobtracker-database, key: database_url}}}",
    );
    let findings = broken(
        "Deployment",
        "jobtracker-api",
        &api_container(&["env", "2"]),
        Some(env),
    );
    expect_finding(
        findings.clone(),
        "comes from a Secret as an environment variable",
    );
    expect_finding(findings, "DATABASE_URL set directly");
    // A *_FILE pointing outside any Secret mount.
    let env: Value = yaml("{name: CLERK_SECRET_KEY_FILE, value: /tmp/key}");
    expect_finding(
        broken(
            "Deployment",
            "jobtracker-api",
            &api_container(&["env", "4"]),
            Some(env),
        ),
        "not under a read-only Secret volume mount",
    );
    // World-readable secret files.
    expect_finding(
        broken(
            "Deployment",
            "job-applier",
            &[
                "spec",
                "template",
                "spec",
                "volumes",
                "0",
                "secret",
                "defaultMode",
            ],
            Some(Value::from(0o644)),
        ),
        "readable by others",
    );
    let envfrom: Value = yaml("[{secretRef: {name: jobtracker-api-keys}}]");
    expect_finding(
        broken(
            "Deployment",
            "jobtracker-api",
            &api_container(&["envFrom"]),
            Some(envfrom),
        ),
        "a whole Secret",
    );
}

#[test]
fn a_metrics_port_is_found() {
    let ports: Value =
        yaml("[{name: http, containerPort: 5000}, {name: metrics, containerPort: 9000}]");
    expect_finding(
        broken(
            "Deployment",
            "jobtracker-api",
            &api_container(&["ports"]),
            Some(ports),
        ),
        "metrics port",
    );
}

#[test]
fn a_missing_pdb_or_hpa_target_is_found() {
    expect_finding(
        broken(
            "PodDisruptionBudget",
            "jobtracker-api",
            &["spec", "selector", "matchLabels", "app.kubernetes.io/name"],
            Some(Value::from("other")),
        ),
        "PodDisruptionBudget",
    );
    expect_finding(
        broken(
            "HorizontalPodAutoscaler",
            "jobtracker-api",
            &["spec", "minReplicas"],
            Some(Value::from(1)),
        ),
        "HorizontalPodAutoscaler",
    );
}

#[test]
fn a_wider_network_policy_is_found() {
    let policy = [
        "spec",
        "ingress",
        "0",
        "from",
        "0",
        "podSelector",
        "matchLabels",
    ];
    let anyone: Value = yaml("{app.kubernetes.io/part-of: jobtracker}");
    expect_finding(
        broken("NetworkPolicy", "jobtracker-api", &policy, Some(anyone)),
        "admits another peer",
    );
    expect_finding(
        broken(
            "NetworkPolicy",
            "jobtracker-api",
            &["spec", "ingress", "0", "from"],
            None,
        ),
        "admits anyone",
    );
    expect_finding(
        broken(
            "NetworkPolicy",
            "jobtracker-api",
            &["spec", "egress", "0", "ports", "0", "port"],
            Some(Value::from(6379)),
        ),
        "egress to other ports",
    );
    expect_finding(
        broken(
            "NetworkPolicy",
            "jobtracker-api",
            &["spec", "egress", "1", "to", "0", "ipBlock", "except"],
            None,
        ),
        "reaches private addresses",
    );
    expect_finding(
        broken(
            "NetworkPolicy",
            "jobtracker-api",
            &["spec", "egress", "2", "ports"],
            None,
        ),
        "without ports",
    );
    expect_finding(
        broken(
            "NetworkPolicy",
            "default-deny",
            &["spec", "policyTypes"],
            Some(yaml("[Ingress]")),
        ),
        "default-deny",
    );
    // The API labelled as a client of itself.
    expect_finding(
        broken(
            "Deployment",
            "jobtracker-api",
            &["spec", "template", "metadata", "labels", CLIENT_LABEL],
            Some(Value::from("true")),
        ),
        "bots' label",
    );
}
