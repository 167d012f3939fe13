//! The table of WasmApps `spore validate` is tested with (`spore_crds::cases`), through a real
//! apiserver: `kubectl apply --dry-run=server` accepts every valid app and refuses every
//! invalid one, blaming the field `validate()` blames or the object that holds it. This is
//! where the CRD's OpenAPI schema (patterns, lengths, list-map keys) is checked; the crate's
//! own tests evaluate only its CEL rules. It needs nothing but the CRDs: on an apiserver
//! without Spore it applies them from `crds/`.

use std::time::Duration;

use spore_crds::WasmApp;
use spore_crds::cases::{invalid_apps, valid_apps};
use spore_e2e::*;

/// Workers that run kubectl at once.
const WORKERS: usize = 4;

fn ensure_crds() {
    if kubectl(&["get", "crd", "wasmapps.spore.dev"]).status.success() {
        return;
    }
    let crds = repo_root().join("crds");
    for file in ["wasmapps.spore.dev.yaml", "wasmruntimes.spore.dev.yaml"] {
        kubectl_ok(&["apply", "-f", crds.join(file).to_str().expect("utf-8 path")]);
    }
    kubectl_ok(&["wait", "--for=condition=Established", "crd/wasmapps.spore.dev", "--timeout=60s"]);
    // The apiserver serves a new CRD's rules a moment after Established.
    std::thread::sleep(Duration::from_secs(2));
}

/// What the apiserver says to `kubectl apply --dry-run=server` of `app`.
fn dry_run(app: &WasmApp) -> Result<String, String> {
    let json = serde_json::to_string(app).expect("a WasmApp serializes");
    kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &json)
}

/// Whether an error names `field` or an object that holds it (`spec.limits` for
/// `spec.limits.memory`), as kubectl prints each cause: `spec.limits.memory: Invalid value`.
fn blames(error: &str, field: &str) -> bool {
    let ends = field.char_indices().filter(|&(_, c)| c == '.' || c == '[').map(|(i, _)| i).chain([field.len()]);
    ends.into_iter().any(|end| error.contains(&format!("{}: ", &field[..end])))
}

/// Runs `judge` on every item with a few kubectls at once; the problems it reports, in order.
fn problems<T: Sync>(items: &[T], judge: impl Fn(&T) -> Option<String> + Sync) -> Vec<String> {
    let chunk = items.len().div_ceil(WORKERS).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().filter_map(&judge).collect::<Vec<_>>()))
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a worker finishes")).collect()
    })
}

#[test]
fn the_apiserver_judges_every_case_as_validate_does() {
    ensure_crds();
    let invalid = invalid_apps();
    let valid = valid_apps();

    let mut wrong = problems(&invalid, |case| match dry_run(&case.app) {
        Ok(out) => Some(format!("{}: accepted ({})", case.name, out.trim())),
        Err(err) if !blames(&err, case.field) => {
            Some(format!("{}: refused, but not for {}:\n{err}", case.name, case.field))
        }
        Err(_) => None,
    });
    wrong.extend(problems(&valid, |(name, app)| dry_run(app).err().map(|err| format!("{name}: refused:\n{err}"))));

    assert!(
        wrong.is_empty(),
        "{} of {} cases judged otherwise:\n{}",
        wrong.len(),
        invalid.len() + valid.len(),
        wrong.join("\n")
    );
    println!(
        "the apiserver refused all {} invalid apps, each for its field, and accepted all {} valid ones",
        invalid.len(),
        valid.len()
    );
}
