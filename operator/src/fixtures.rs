//! Test fixtures: custom resources from short YAML, as a user would write them.

use spore_crds::{WasmApp, WasmRuntime};

/// A WasmApp `apps/hello` running `localhost:5010/spore/hello-http:1`, with `extra` (spec
/// lines indented by two spaces) appended to its spec.
pub fn app(extra: &str) -> WasmApp {
    let yaml = format!(
        "apiVersion: spore.dev/v1alpha1\nkind: WasmApp\nmetadata: {{name: hello, namespace: apps, uid: u-1, generation: 2}}\nspec:\n  module: {{image: localhost:5010/spore/hello-http:1}}\n{extra}"
    );
    serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("fixture WasmApp: {e}\n{yaml}"))
}

/// A WasmRuntime `spore` installing `localhost:5010/spore/node-installer:1`, with `extra`.
pub fn runtime(extra: &str) -> WasmRuntime {
    let yaml = format!(
        "apiVersion: spore.dev/v1alpha1\nkind: WasmRuntime\nmetadata: {{name: spore, uid: u-2, generation: 1}}\nspec:\n  shim: {{image: localhost:5010/spore/node-installer:1}}\n{extra}"
    );
    serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("fixture WasmRuntime: {e}\n{yaml}"))
}

/// One API call a reconcile is expected to make, and the answer it gets.
pub struct Call {
    pub method: &'static str,
    pub path: String,
    pub status: u16,
    pub body: serde_json::Value,
}

/// A call answered with `body` (status 200).
pub fn call(method: &'static str, path: &str, body: serde_json::Value) -> Call {
    Call { method, path: path.to_string(), status: 200, body }
}

/// A call answered with 404 Not Found.
pub fn not_found(method: &'static str, path: &str) -> Call {
    let body = serde_json::json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"});
    Call { method, path: path.to_string(), status: 404, body }
}

/// A call the API server refuses with `code`, its Status `reason` and `message`.
pub fn refused(method: &'static str, path: &str, code: u16, reason: &str, message: &str) -> Call {
    let body = serde_json::json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": reason, "code": code, "message": message});
    Call { method, path: path.to_string(), status: code, body }
}

/// A Context whose client is served by a fake API server that expects exactly `calls`, in
/// order (method and path, queries ignored). The returned task ends once every call came,
/// with the request bodies; a call out of order fails it.
pub fn mock_context(
    calls: Vec<Call>,
) -> (std::sync::Arc<crate::context::Context>, tokio::task::JoinHandle<Vec<serde_json::Value>>) {
    use http::{Request, Response};
    use http_body_util::BodyExt;
    use kube::client::Body;

    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let verifier = tokio::spawn(async move {
        let mut handle = std::pin::pin!(handle);
        let mut bodies = Vec::new();
        for expected in calls {
            let (request, send) = handle.next_request().await.expect("the reconcile made fewer calls than expected");
            let seen = format!("{} {}", request.method(), request.uri().path());
            assert_eq!(seen, format!("{} {}", expected.method, expected.path), "unexpected API call");
            let bytes = request.into_body().collect().await.expect("request body").to_bytes();
            bodies.push(serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null));
            let response = Response::builder()
                .status(expected.status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&expected.body).unwrap()))
                .unwrap();
            send.send_response(response);
        }
        bodies
    });
    let client = kube::Client::new(service, "default");
    let reporter = kube::runtime::events::Reporter { controller: "spore-operator".into(), instance: None };
    let settings = crate::context::Settings {
        default_runtime_class: "spore".into(),
        installer: crate::resources::daemonset::InstallerSettings {
            namespace: "spore-system".into(),
            service_account: "spore-node-installer".into(),
        },
        activator: crate::context::ActivatorSettings {
            namespace: "spore-system".into(),
            service: "spore-activator".into(),
            port: 8012,
            metrics_port: 9090,
        },
        autoscaler: Default::default(),
    };
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::default());
    (std::sync::Arc::new(crate::context::Context::new(client, reporter, metrics, settings)), verifier)
}
