//! examples/kubernetes/: the promptsync container's args and env are run with the real
//! binary (its mounts mapped to temp dirs: the Secrets' files, the mirror's emptyDir,
//! the remote served over smart HTTP on loopback; in the git-sync variant, a git-sync
//! link to a repository), and the manifests are checked against each other and against
//! promptsync's defaults. `.ci/run` validates them against the Kubernetes schemas.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{
    LISTEN_PORT, assert_settings_known, defaults, mebibytes, repo_with_a_prompt, text, yaml,
};
use crate::support::emulator::TestEmulator;
use crate::support::promptsync;
use crate::support::scenario::{KEY, texts};

const DIR: &str = "examples/kubernetes";

/// The daemon's peak resident memory in its first, full pass with 10,000 prompt files
/// beside their 10,000 prompts (`cargo bench --bench floor`, release build: 194 MiB).
const MEASURED_PEAK_MIB: u64 = 195;

fn manifest(name: &str) -> Value {
    yaml(&format!("{DIR}/{name}"))
}

fn pod() -> Value {
    manifest("deployment.yaml")["spec"]["template"].clone()
}

/// The variant beside kubernetes git-sync.
fn git_sync_pod() -> Value {
    manifest("deployment-git-sync.yaml")["spec"]["template"].clone()
}

/// The container named `name`, among the containers or the init containers.
fn container(pod: &Value, name: &str) -> Value {
    ["containers", "initContainers"]
        .iter()
        .filter_map(|list| pod["spec"][list].as_array())
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
        .clone()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|v| v.as_str().expect("a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The value of `--flag=value` or `--flag value` in `args`.
fn flag(args: &[String], name: &str) -> Option<String> {
    let long = format!("--{name}");
    args.iter().enumerate().find_map(|(i, arg)| {
        if let Some(value) = arg.strip_prefix(&format!("{long}=")) {
            Some(value.to_owned())
        } else if *arg == long {
            args.get(i + 1).cloned()
        } else {
            None
        }
    })
}

fn env_of(container: &Value) -> Vec<(String, String)> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["value"].as_str().expect("a plain value").to_owned(),
            )
        })
        .collect()
}

/// The port named `name` of `container`.
fn port(container: &Value, name: &str) -> u64 {
    container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no port named {name}"))
}

/// git-sync's `--root` and `--link`: the link to the newest checkout is root/link.
fn git_sync_link(pod: &Value) -> (String, String) {
    let args = strings(&container(pod, "git-sync")["args"]);
    (
        flag(&args, "root").expect("git-sync --root"),
        flag(&args, "link").expect("git-sync --link"),
    )
}

#[test]
fn the_promptsync_container_s_args_parse_and_its_env_names_settings_promptsync_knows() {
    for pod in [pod(), git_sync_pod()] {
        args_parse_and_env_is_known(&pod);
    }
}

fn args_parse_and_env_is_known(pod: &Value) {
    let promptsync_container = container(pod, "promptsync");
    assert!(
        promptsync_container["command"].is_null(),
        "the image's ENTRYPOINT (promptsync) runs"
    );
    assert_eq!(
        super::docker::runtime().exec_form("ENTRYPOINT"),
        ["promptsync"]
    );
    let args = strings(&promptsync_container["args"]);
    assert_eq!(args.first().map(String::as_str), Some("watch"));
    let output = promptsync().args(&args).arg("--help").output().unwrap();
    let (stdout, stderr) = texts(&output);
    assert!(
        output.status.success(),
        "promptsync {args:?} --help:\n{stdout}{stderr}"
    );
    assert!(stdout.contains("Usage: promptsync watch"), "{stdout}");

    // The key file must exist for the setting to load: give it one where the Secret
    // would put it.
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("api-key");
    std::fs::write(&key_file, KEY).unwrap();
    let env: Vec<(String, String)> = env_of(&promptsync_container)
        .into_iter()
        .map(|(name, value)| match name.as_str() {
            "PROMPTSYNC_API__API_KEY_FILE" => (name, text(&key_file)),
            _ => (name, value),
        })
        .collect();
    assert_settings_known(&env, "the promptsync container");
}

/// Each volume mount of `container` made a directory under `sandbox`, and a function
/// from a path in the pod to the path in the sandbox.
fn mounts(container: &Value, sandbox: &Path) -> impl Fn(&str) -> String {
    let mounts: Vec<(String, PathBuf)> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let local = sandbox.join(m["name"].as_str().unwrap());
            std::fs::create_dir_all(&local).unwrap();
            (m["mountPath"].as_str().unwrap().to_owned(), local)
        })
        .collect();
    move |path: &str| -> String {
        mounts
            .iter()
            .find_map(|(mount, local)| {
                let rest = path.strip_prefix(mount.as_str())?;
                (rest.is_empty() || rest.starts_with('/'))
                    .then(|| text(&local.join(rest.trim_start_matches('/'))))
            })
            .unwrap_or_else(|| path.to_owned())
    }
}

/// The one-container pod as Kubernetes starts it, in a temp dir standing in for the
/// pod: each volume mount is a directory, the Secrets' files hold the API key and the
/// git token, the repository is served over smart HTTP with basic auth on loopback
/// (its URL in place of the example's). `--once` runs one pass of the daemon's loop:
/// it fetches the branch tip and the release tag into the mirror on the emptyDir,
/// syncs, and deploys the tag.
#[test]
fn the_one_container_pod_fetches_the_repository_itself_and_deploys_tags() {
    let pod = pod();
    let c = container(&pod, "promptsync");
    assert_eq!(
        pod["spec"]["initContainers"],
        Value::Null,
        "one container: no git-sync"
    );
    let origin = crate::support::git::TestRepo::new();
    origin.write(
        "prompts/a.prompt.yaml",
        &crate::support::scenario::prompt("A", "first"),
    );
    origin.commit("Add A");
    origin.tag("v1.0.0");
    let served = origin.path().parent().unwrap().to_owned();
    let name = origin
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let server = crate::support::githttp::GitHttp::start(&served);
    server.require_token(Some(("git", "the-git-token")));

    let sandbox = tempfile::tempdir().unwrap();
    let mapped = mounts(&c, sandbox.path());
    let mut env: Vec<(String, String)> = env_of(&c)
        .into_iter()
        .map(|(name, value)| (name, mapped(&value)))
        .collect();
    let value_of = |env: &[(String, String)], name: &str| {
        env.iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| PathBuf::from(value))
            .unwrap_or_else(|| panic!("{name} is set"))
    };
    std::fs::write(
        value_of(&env, "PROMPTSYNC_API__API_KEY_FILE"),
        format!("{KEY}\n"),
    )
    .unwrap();
    std::fs::write(
        value_of(&env, "PROMPTSYNC_SOURCE__TOKEN_FILE"),
        "the-git-token\n",
    )
    .unwrap();
    std::fs::write(
        value_of(&env, "PROMPTSYNC_WEBHOOK__GITHUB_SECRET_FILE"),
        "hook\n",
    )
    .unwrap();
    let cache = value_of(&env, "PROMPTSYNC_SOURCE__CACHE_DIR");
    assert!(
        cache.starts_with(sandbox.path()),
        "the mirror is on a volume"
    );
    for (key, value) in &mut env {
        if key == "PROMPTSYNC_SOURCE__URL" {
            *value = server.url(&name);
        }
    }
    let args: Vec<String> = strings(&c["args"]).iter().map(|arg| mapped(arg)).collect();

    let emu = TestEmulator::start();
    let output = promptsync()
        .current_dir(sandbox.path())
        .args(&args)
        .arg("--once")
        .envs(env)
        .env("RESPAN_BASE_URL", emu.base_url())
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{args:?}:\n{stdout}{stderr}");
    let prompts = emu.prompts();
    assert_eq!(prompts.len(), 1, "{prompts:#?}");
    let id = prompts[0]["id"].as_str().unwrap();
    let prompt = emu.get(&format!("/api/prompts/{id}/"));
    assert!(
        prompt["live_version"]["version"].is_u64(),
        "the pod deploys the release tag itself: {prompt:#}\n{stderr}"
    );
    assert!(
        std::fs::read_dir(&cache).unwrap().count() == 1,
        "the mirror is in source.cache_dir"
    );
    assert!(!stderr.contains("the-git-token") && !stderr.contains(KEY));
}

/// The git-sync variant's container as Kubernetes starts it, in a temp dir standing
/// in for the pod: each volume mount is a directory, git-sync's link points at a real
/// repository, the Secret's file holds the key. `--once` runs one pass of the
/// daemon's loop.
#[test]
fn the_promptsync_container_syncs_git_sync_s_checkout_and_does_not_deploy() {
    let pod = git_sync_pod();
    let promptsync_container = container(&pod, "promptsync");
    let (root, link) = git_sync_link(&pod);

    let upstream = repo_with_a_prompt();
    upstream.tag("v1.0.0");
    let sandbox = tempfile::tempdir().unwrap();
    let mapped = mounts(&promptsync_container, sandbox.path());
    // git-sync's link, swapped to the newest worktree at every sync.
    let link_path = PathBuf::from(mapped(&format!("{root}/{link}")));
    std::os::unix::fs::symlink(upstream.path(), &link_path).unwrap();
    let env: Vec<(String, String)> = env_of(&promptsync_container)
        .into_iter()
        .map(|(name, value)| (name, mapped(&value)))
        .collect();
    let key_file = env
        .iter()
        .find(|(name, _)| name == "PROMPTSYNC_API__API_KEY_FILE")
        .map(|(_, value)| PathBuf::from(value))
        .expect("the key comes from a file");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let args: Vec<String> = strings(&promptsync_container["args"])
        .iter()
        .map(|arg| mapped(arg))
        .collect();

    let emu = TestEmulator::start();
    let output = promptsync()
        .current_dir(sandbox.path())
        .args(&args)
        .arg("--once")
        .envs(env)
        .env("RESPAN_BASE_URL", emu.base_url())
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{args:?}:\n{stdout}{stderr}");
    let prompts = emu.prompts();
    assert_eq!(prompts.len(), 1, "{prompts:#?}");
    assert_eq!(prompts[0]["name"], "A");
    let id = prompts[0]["id"].as_str().unwrap();
    let prompt = emu.get(&format!("/api/prompts/{id}/"));
    assert!(
        prompt["live_version"].is_null(),
        "the sidecar never deploys (no tags come through git-sync): {prompt:#}"
    );
    assert!(!stderr.contains(KEY) && !stdout.contains(KEY));
}

#[test]
fn promptsync_runs_on_git_sync_s_link_as_git_sync_s_user() {
    let pod = git_sync_pod();
    let promptsync_container = container(&pod, "promptsync");
    let git_sync = container(&pod, "git-sync");
    let (root, link) = git_sync_link(&pod);
    let args = strings(&promptsync_container["args"]);
    assert_eq!(flag(&args, "repo"), Some(format!("{root}/{link}")));
    assert!(
        git_sync["image"].as_str().unwrap().contains("git-sync:v4."),
        "git-sync v4"
    );
    assert_eq!(
        git_sync["restartPolicy"], "Always",
        "a native sidecar, started before promptsync"
    );
    assert!(
        git_sync["startupProbe"].is_object(),
        "promptsync waits for the first clone"
    );
    let volume = |c: &Value, path: &str| {
        c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| path.starts_with(m["mountPath"].as_str().unwrap()))
            .map(|m| m["name"].as_str().unwrap().to_owned())
    };
    let shared = volume(&git_sync, &root).expect("git-sync's root is a volume");
    assert_eq!(volume(&promptsync_container, &root), Some(shared.clone()));
    let volumes = pod["spec"]["volumes"].as_array().unwrap();
    let shared_volume = volumes
        .iter()
        .find(|v| v["name"] == shared.as_str())
        .unwrap();
    assert!(shared_volume["emptyDir"].is_object());

    let security = &pod["spec"]["securityContext"];
    let user = super::docker::runtime().last("USER").to_owned();
    assert_eq!(
        format!("{}:{}", security["runAsUser"], security["runAsGroup"]),
        user,
        "the pod runs as the image's user, git-sync's"
    );
    assert_eq!(security["runAsNonRoot"], true);
}

/// Two promptsync writers on one account can each create the same new prompt or
/// version (the API has no lock; README, "One writer at a time"): one replica, and a
/// rollout that stops the old pod before it starts the new one.
#[test]
fn the_deployment_is_one_writer_even_during_a_rollout() {
    let deployment = manifest("deployment.yaml");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
}

#[test]
fn probes_grace_period_and_resources_fit_the_daemon() {
    let pod = pod();
    let c = container(&pod, "promptsync");
    let http = port(&c, "http");
    assert_eq!(http, u64::from(LISTEN_PORT), "watch.listen's port");
    assert!(
        env_of(&c).contains(&(
            "PROMPTSYNC_WATCH__LISTEN".to_owned(),
            format!("0.0.0.0:{LISTEN_PORT}")
        )),
        "the probes come from outside the pod: every interface, said explicitly"
    );
    for (probe, path) in [
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ] {
        assert_eq!(c[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(c[probe]["httpGet"]["port"], "http", "{probe}");
    }
    let grace = pod["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    let shutdown = defaults().watch.shutdown_timeout.as_secs();
    assert!(
        grace > shutdown,
        "terminationGracePeriodSeconds ({grace}) above watch.shutdown_timeout ({shutdown})"
    );
    assert!(
        !env_of(&c)
            .iter()
            .any(|(name, _)| name == "PROMPTSYNC_WATCH__SHUTDOWN_TIMEOUT"),
        "the default shutdown_timeout is the one compared"
    );
    let memory = |kind: &str| mebibytes(c["resources"][kind]["memory"].as_str().unwrap());
    assert!(
        memory("requests") > MEASURED_PEAK_MIB,
        "request above the measured peak"
    );
    assert!(
        memory("limits") >= 2 * MEASURED_PEAK_MIB,
        "limit with headroom"
    );
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert!(
        mounts.iter().all(|m| m["subPath"].is_null()),
        "a subPath never sees key rotation"
    );
}

#[test]
fn the_service_network_policy_secret_and_service_monitor_fit_the_deployment() {
    let pod = pod();
    let labels = pod["metadata"]["labels"].as_object().unwrap().clone();
    let selects = |selector: &Value| {
        selector
            .as_object()
            .unwrap()
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    };
    let c = container(&pod, "promptsync");

    let service = manifest("service.yaml");
    assert!(selects(&service["spec"]["selector"]));
    let service_port = &service["spec"]["ports"][0];
    assert_eq!(service_port["targetPort"], "http");
    assert_eq!(
        service_port["name"], "metrics",
        "named, for a ServiceMonitor"
    );

    let hooks_port = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "hooks")
        .expect("a Service port for the webhooks");
    assert_eq!(hooks_port["targetPort"], "http");

    // Every Secret the pod mounts has its example, and each file setting names a
    // file in its Secret's mount.
    for (example, setting) in [
        ("secret.example.yaml", "PROMPTSYNC_API__API_KEY_FILE"),
        (
            "git-credentials.example.yaml",
            "PROMPTSYNC_SOURCE__TOKEN_FILE",
        ),
        (
            "hooks.example.yaml",
            "PROMPTSYNC_WEBHOOK__GITHUB_SECRET_FILE",
        ),
    ] {
        let secret = manifest(example);
        let volume = pod["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["secret"]["secretName"] == secret["metadata"]["name"])
            .unwrap_or_else(|| panic!("a volume of the Secret in {example}"));
        let mount = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == volume["name"])
            .unwrap();
        let file = env_of(&c)
            .into_iter()
            .find(|(name, _)| name == setting)
            .map(|(_, value)| PathBuf::from(value))
            .unwrap();
        assert_eq!(
            file.parent(),
            Some(Path::new(mount["mountPath"].as_str().unwrap())),
            "{setting}"
        );
        let key = file.file_name().unwrap().to_str().unwrap();
        assert!(secret["stringData"][key].is_string(), "{example} has {key}");
    }

    let monitor = manifest("servicemonitor.yaml");
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service_port["name"]
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    let service_labels = &service["metadata"]["labels"];
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            &service_labels[k], v,
            "the ServiceMonitor selects the Service"
        );
    }

    let policy = manifest("networkpolicy.yaml");
    assert!(selects(&policy["spec"]["podSelector"]["matchLabels"]));
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    let mut egress: Vec<String> = policy["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["ports"].as_array().unwrap().clone())
        .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap()))
        .collect();
    egress.sort();
    assert_eq!(
        egress,
        ["443/TCP", "53/TCP", "53/UDP"],
        "DNS and HTTPS only"
    );
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], "http");

    let secret = manifest("secret.example.yaml");
    let key_file = env_of(&c)
        .into_iter()
        .find(|(name, _)| name == "PROMPTSYNC_API__API_KEY_FILE")
        .map(|(_, value)| PathBuf::from(value))
        .unwrap();
    let volume = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["secret"].is_object())
        .unwrap();
    assert_eq!(volume["secret"]["secretName"], secret["metadata"]["name"]);
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .unwrap();
    assert_eq!(
        key_file.parent(),
        Some(Path::new(mount["mountPath"].as_str().unwrap()))
    );
    let file_name = key_file.file_name().unwrap().to_str().unwrap();
    assert!(
        secret["stringData"][file_name].is_string(),
        "the Secret has the key {file_name}"
    );
}

#[test]
fn the_kustomization_lists_every_manifest_and_names_the_image() {
    let kustomization = manifest("kustomization.yaml");
    let mut listed = strings(&kustomization["resources"]);
    listed.sort();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".yaml"))
        .filter(|name| {
            // Left out on purpose (see kustomization.yaml).
            !name.ends_with(".example.yaml")
                && !matches!(
                    name.as_str(),
                    "kustomization.yaml" | "servicemonitor.yaml" | "deployment-git-sync.yaml"
                )
        })
        .collect();
    files.sort();
    assert_eq!(listed, files);
    let image = container(&pod(), "promptsync")["image"]
        .as_str()
        .unwrap()
        .to_owned();
    let name = kustomization["images"][0]["name"].as_str().unwrap();
    assert!(image.starts_with(&format!("{name}:")), "{image} vs {name}");
}
