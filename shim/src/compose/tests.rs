//! Composition of small components written in the component text format: what links, in
//! which order, where a dependency's capability imports go, and every error a wiring can
//! have. The linked components run on wasmtime to prove the wiring, not just its encoding.

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};

use super::*;

const GREET: &str = "spore:test/greet@0.1.0";
const ENV: &str = "wasi:cli/environment@0.2.6";
const HANDLER_03: &str = "wasi:http/handler@0.3.0";
const HANDLER_02: &str = "wasi:http/incoming-handler@0.2.12";

fn wasm(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Exports `greet` of `interface`, answering `n`, or with `env`, what its environment
/// import answers.
fn library(interface: &str, n: u32, env: bool) -> Vec<u8> {
    let (import, lower, body) = if env {
        (
            format!(r#"(import "{ENV}" (instance $env (export "get-arguments" (func (result u32)))))"#),
            r#"(core func $env (canon lower (func $env "get-arguments")))
               (core instance $envi (export "get" (func $env)))"#,
            r#"(import "env" "get" (func $get (result i32))) (func (export "greet") (result i32) call $get)"#
                .to_string(),
        )
    } else {
        (String::new(), "(core instance $envi)", format!(r#"(func (export "greet") (result i32) i32.const {n})"#))
    };
    wasm(&format!(
        r#"(component
             {import}
             {lower}
             (core module $m {body})
             (core instance $i (instantiate $m (with "env" (instance $envi))))
             (func $greet (result u32) (canon lift (core func $i "greet")))
             (instance $inst (export "greet" (func $greet)))
             (export "{interface}" (instance $inst)))"#
    ))
}

/// Exports `run`: 1000 times what `greet` answers, plus what its own environment import
/// answers.
fn main_component() -> Vec<u8> {
    wasm(&format!(
        r#"(component
             (import "{GREET}" (instance $g (export "greet" (func (result u32)))))
             (import "{ENV}" (instance $env (export "get-arguments" (func (result u32)))))
             (core func $greet (canon lower (func $g "greet")))
             (core func $env (canon lower (func $env "get-arguments")))
             (core instance $imports (export "greet" (func $greet)) (export "env" (func $env)))
             (core module $m
               (import "i" "greet" (func $greet (result i32)))
               (import "i" "env" (func $env (result i32)))
               (func (export "run") (result i32) call $greet i32.const 1000 i32.mul call $env i32.add))
             (core instance $i (instantiate $m (with "i" (instance $imports))))
             (func $run (result u32) (canon lift (core func $i "run")))
             (export "run" (func $run)))"#
    ))
}

/// A handler of `interface`: `handle(x)` is `x`, or with `inner` (a middleware),
/// `10 * inner(x) + tag`.
fn handler(interface: &str, inner: Option<&str>, tag: u32) -> Vec<u8> {
    let (import, lower, body) = match inner {
        Some(inner) => (
            format!(r#"(import "{inner}" (instance $h (export "handle" (func (param "x" u32) (result u32)))))"#),
            r#"(core func $next (canon lower (func $h "handle")))
               (core instance $hi (export "next" (func $next)))"#,
            format!(
                r#"(import "h" "next" (func $next (param i32) (result i32)))
                   (func (export "handle") (param i32) (result i32) local.get 0 call $next i32.const 10 i32.mul i32.const {tag} i32.add)"#
            ),
        ),
        None => (
            String::new(),
            "(core instance $hi)",
            r#"(func (export "handle") (param i32) (result i32) local.get 0)"#.into(),
        ),
    };
    wasm(&format!(
        r#"(component
             {import}
             {lower}
             (core module $m {body})
             (core instance $i (instantiate $m (with "h" (instance $hi))))
             (func $handle (param "x" u32) (result u32) (canon lift (core func $i "handle")))
             (instance $inst (export "handle" (func $handle)))
             (export "{interface}" (instance $inst)))"#
    ))
}

fn plugs(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn part<'a>(name: &'a str, bytes: &'a [u8], plugs: &'a [String]) -> Part<'a> {
    Part { name, bytes, plugs }
}

fn engine() -> Engine {
    let mut config = Config::new();
    config.wasm_component_model_implements(true);
    Engine::new(&config).unwrap()
}

/// Runs the linked app's `run`, its environment import answering 1 for the main component
/// and each routed import answering 2.
fn run(composed: &Composed) -> u32 {
    let engine = engine();
    let component = Component::new(&engine, &composed.bytes).expect("the linked app compiles");
    let mut linker = Linker::<()>::new(&engine);
    linker.instance(ENV).unwrap().func_wrap("get-arguments", |_, ()| Ok((1u32,))).unwrap();
    for routed in &composed.routed {
        linker.instance(&routed.label).unwrap().func_wrap("get-arguments", |_, ()| Ok((2u32,))).unwrap();
    }
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &component).expect("the linked app instantiates");
    let run = instance.get_typed_func::<(), (u32,)>(&mut store, "run").unwrap();
    run.call(&mut store, ()).unwrap().0
}

/// Calls `handle(x)` of the linked app's 0.3 handler export.
fn handle(composed: &Composed, x: u32) -> u32 {
    handle_of(composed, HANDLER_03, x)
}

/// Calls `handle(x)` of the linked app's export `interface`.
fn handle_of(composed: &Composed, interface: &str, x: u32) -> u32 {
    let engine = engine();
    let component = Component::new(&engine, &composed.bytes).expect("the linked app compiles");
    let mut store = Store::new(&engine, ());
    let instance = Linker::<()>::new(&engine).instantiate(&mut store, &component).expect("instantiates");
    let handler = instance.get_export_index(&mut store, None, interface).expect("the handler export");
    let func = instance.get_export_index(&mut store, Some(&handler), "handle").unwrap();
    let func = instance.get_typed_func::<(u32,), (u32,)>(&mut store, &func).unwrap();
    func.call(&mut store, (x,)).unwrap().0
}

fn import_names(bytes: &[u8]) -> Vec<String> {
    let engine = engine();
    let component = Component::new(&engine, bytes).unwrap();
    component.component_type().imports(&engine).map(|(name, _)| name.to_string()).collect()
}

#[test]
fn a_plug_satisfies_the_import_of_its_interface() {
    let (main, lib, with_lib) = (main_component(), library(GREET, 7, false), plugs(&["lib"]));
    let plan = Plan { main: part(MAIN, &main, &with_lib), others: vec![part("lib", &lib, &[])], middleware: &[] };
    let composed = compose(&plan).unwrap();
    assert_eq!(run(&composed), 7001);
    assert!(composed.routed.is_empty());
    assert_eq!(import_names(&composed.bytes), [ENV], "the plugged interface is no longer imported");
}

#[test]
fn a_plug_of_a_compatible_version_satisfies_the_import() {
    let (main, lib, with_lib) = (main_component(), library("spore:test/greet@0.1.3", 7, false), plugs(&["lib"]));
    let plan = Plan { main: part(MAIN, &main, &with_lib), others: vec![part("lib", &lib, &[])], middleware: &[] };
    assert_eq!(run(&compose(&plan).unwrap()), 7001);
}

#[test]
fn a_dependency_capability_import_gets_an_import_of_its_own() {
    let (main, lib, with_lib) = (main_component(), library(GREET, 0, true), plugs(&["lib"]));
    let plan = Plan { main: part(MAIN, &main, &with_lib), others: vec![part("lib", &lib, &[])], middleware: &[] };
    let composed = compose(&plan).unwrap();
    let routed = Routed { label: "spore-c1-cli-environment-p2".into(), component: "lib".into(), interface: ENV.into() };
    assert_eq!(composed.routed, [routed]);
    let mut imports = import_names(&composed.bytes);
    imports.sort();
    assert_eq!(imports, ["spore-c1-cli-environment-p2", ENV]);
    assert_eq!(run(&composed), 2001, "the library's environment is its own (2), the main one's the host's (1)");
}

#[test]
fn a_library_of_a_library_is_linked_first() {
    let main = main_component();
    // `outer` re-exports greet from `inner`: it imports what it exports.
    let outer = handler_free_reexport();
    let inner = library("spore:test/base@0.1.0", 9, false);
    let (with_outer, with_inner) = (plugs(&["outer"]), plugs(&["inner"]));
    let plan = Plan {
        main: part(MAIN, &main, &with_outer),
        others: vec![part("outer", &outer, &with_inner), part("inner", &inner, &[])],
        middleware: &[],
    };
    assert_eq!(run(&compose(&plan).unwrap()), 9001);
}

/// Exports `greet` of [`GREET`], answering what `greet` of `spore:test/base` answers.
fn handler_free_reexport() -> Vec<u8> {
    wasm(&format!(
        r#"(component
             (import "spore:test/base@0.1.0" (instance $b (export "greet" (func (result u32)))))
             (alias export $b "greet" (func $greet))
             (instance $inst (export "greet" (func $greet)))
             (export "{GREET}" (instance $inst)))"#
    ))
}

#[test]
fn middleware_wraps_the_handler_outermost_first() {
    let main = handler(HANDLER_03, None, 0);
    let (a, b) = (handler(HANDLER_03, Some(HANDLER_03), 1), handler(HANDLER_03, Some(HANDLER_03), 2));
    let order = plugs(&["a", "b"]);
    let plan =
        Plan { main: part(MAIN, &main, &[]), others: vec![part("a", &a, &[]), part("b", &b, &[])], middleware: &order };
    // a(x) = 10 * b(x) + 1 and b(x) = 10 * x + 2: a request meets a first.
    assert_eq!(handle(&compose(&plan).unwrap(), 5), 521);
}

#[test]
fn a_wasi_0_2_middleware_wraps_a_0_2_handler() {
    let main = handler(HANDLER_02, None, 0);
    let gate = handler(HANDLER_02, Some(HANDLER_02), 3);
    let order = plugs(&["gate"]);
    let plan = Plan { main: part(MAIN, &main, &[]), others: vec![part("gate", &gate, &[])], middleware: &order };
    let composed = compose(&plan).unwrap();
    assert_eq!(handle_of(&composed, HANDLER_02, 4), 43);
    assert!(import_names(&composed.bytes).is_empty(), "the gate's handler import is the main one's export");
}

#[test]
fn each_bad_wiring_is_one_clear_error() {
    let main = main_component();
    let lib = library(GREET, 7, false);
    let twin = library(GREET, 8, false);
    let other = library("spore:test/other@0.1.0", 1, false);
    let mismatched = wasm(&format!(
        r#"(component
             (core module $m (func (export "greet") (result i64) i64.const 1))
             (core instance $i (instantiate $m))
             (func $greet (result u64) (canon lift (core func $i "greet")))
             (instance $inst (export "greet" (func $greet)))
             (export "{GREET}" (instance $inst)))"#
    ));
    let service = handler(HANDLER_03, None, 0);
    let not_middleware = handler("wasi:http/handler@0.3.0", None, 0);
    let (proxy, middleware_03) = (handler(HANDLER_02, None, 0), handler(HANDLER_03, Some(HANDLER_03), 1));
    let none: &[String] = &[];
    let (with_lib, with_both, with_lib_other) = (plugs(&["lib"]), plugs(&["lib", "twin"]), plugs(&["lib", "other"]));
    let (loop_a, loop_b, in_front, into_a) = (plugs(&["b"]), plugs(&["a"]), plugs(&["m"]), plugs(&["a"]));
    let cases: Vec<(&str, Plan, &str)> = vec![
        (
            "an import no plug exports",
            Plan { main: part(MAIN, &main, none), others: vec![], middleware: none },
            "component \"app\" imports `spore:test/greet@0.1.0`, which none of its plugs (it has none) export and the host does not provide",
        ),
        (
            "two plugs exporting one interface",
            Plan {
                main: part(MAIN, &main, &with_both),
                others: vec![part("lib", &lib, none), part("twin", &twin, none)],
                middleware: none,
            },
            "imports `spore:test/greet@0.1.0` and several of its plugs export it (`lib`, `twin`)",
        ),
        (
            "a plug of another type",
            Plan { main: part(MAIN, &main, &with_lib), others: vec![part("lib", &mismatched, none)], middleware: none },
            "component \"app\" imports `spore:test/greet@0.1.0`, but \"lib\" exports it with another type",
        ),
        (
            "a plug that exports nothing needed",
            Plan {
                main: part(MAIN, &main, &with_lib_other),
                others: vec![part("lib", &lib, none), part("other", &other, none)],
                middleware: none,
            },
            "\"other\" is in the plugs of \"app\" but exports nothing it imports (\"other\" exports `spore:test/other@0.1.0`",
        ),
        (
            "plugs in a cycle",
            Plan {
                main: part(MAIN, &main, &into_a),
                others: vec![part("a", &lib, &loop_a), part("b", &lib, &loop_b)],
                middleware: none,
            },
            "plugs form a cycle (a -> b -> a)",
        ),
        (
            "not a component",
            Plan { main: part(MAIN, b"\0asm\x01\0\0\0", none), others: vec![], middleware: none },
            "component \"app\" is not a Wasm component",
        ),
        (
            "middleware in front of a command",
            Plan {
                main: part(MAIN, &main, &with_lib),
                others: vec![part("lib", &lib, none), part("m", &service, none)],
                middleware: &in_front,
            },
            "spec.middleware wraps the main component's HTTP handler, but the main component exports `run`; build it as a `wasi:http/handler@0.3`",
        ),
        (
            "a service listed as middleware",
            Plan {
                main: part(MAIN, &service, none),
                others: vec![part("m", &not_middleware, none)],
                middleware: &in_front,
            },
            "\"m\" is in spec.middleware but is not a middleware for the main component's handler: it must import and export `wasi:http/handler@0.3` as the main component exports it (it imports nothing; it exports `wasi:http/handler@0.3.0`)",
        ),
        (
            "a 0.3 middleware in front of a 0.2 handler",
            Plan {
                main: part(MAIN, &proxy, none),
                others: vec![part("m", &middleware_03, none)],
                middleware: &in_front,
            },
            "\"m\" is in spec.middleware but is not a middleware for the main component's handler: it must import and export `wasi:http/incoming-handler@0.2` as the main component exports it (it imports `wasi:http/handler@0.3.0`; it exports `wasi:http/handler@0.3.0`); build it for the same WASI version as the handler",
        ),
    ];
    for (name, plan, expected) in cases {
        let error = compose(&plan).map(|_| ()).expect_err(name).to_string();
        assert!(error.contains(expected), "{name}:\n  got      {error}\n  expected …{expected}…");
    }
}

/// A component that counts the variables the real `wasi:cli/environment` gives it: as the
/// main component, `run` answers 1000 times what `greet` (its plug) answers plus its own
/// count; as a library, `greet` answers its count.
fn env_counter(main: bool) -> Vec<u8> {
    let (greet_import, greet_lower, greet_core, body_import, body, export) = if main {
        (
            format!(r#"(import "{GREET}" (instance $g (export "greet" (func (result u32)))))"#),
            r#"(core func $greet (canon lower (func $g "greet")))"#,
            r#"(export "greet" (func $greet))"#,
            r#"(import "i" "greet" (func $greet (result i32)))"#,
            r#"(func (export "main") (result i32) call $greet i32.const 1000 i32.mul call $count i32.add)"#,
            r#"(func $run (result u32) (canon lift (core func $c "main"))) (export "run" (func $run))"#.to_string(),
        )
    } else {
        (
            String::new(),
            "",
            "",
            "",
            r#"(func (export "main") (result i32) call $count)"#,
            format!(
                r#"(func $greet (result u32) (canon lift (core func $c "main")))
                   (instance $inst (export "greet" (func $greet)))
                   (export "{GREET}" (instance $inst))"#
            ),
        )
    };
    wasm(&format!(
        r#"(component
             {greet_import}
             (import "{ENV}" (instance $env (export "get-environment" (func (result (list (tuple string string)))))))
             (core module $mem
               (memory (export "memory") 1)
               (global $bump (mut i32) (i32.const 1024))
               (func (export "realloc") (param i32 i32 i32 i32) (result i32)
                 (local $p i32)
                 global.get $bump local.get 2 i32.add i32.const 1 i32.sub
                 local.get 2 i32.const 1 i32.sub i32.const -1 i32.xor i32.and
                 local.tee $p local.get 3 i32.add global.set $bump
                 local.get $p))
             (core instance $m (instantiate $mem))
             (alias core export $m "memory" (core memory $memory))
             (alias core export $m "realloc" (core func $realloc))
             (core func $get (canon lower (func $env "get-environment") (memory $memory) (realloc $realloc)))
             {greet_lower}
             (core instance $imports (export "get" (func $get)) (export "memory" (memory $memory)) {greet_core})
             (core module $counter
               (import "i" "get" (func $get (param i32)))
               (import "i" "memory" (memory 1))
               {body_import}
               (func $count (result i32) i32.const 0 call $get i32.const 4 i32.load)
               {body})
             (core instance $c (instantiate $counter (with "i" (instance $imports))))
             {export})"#
    ))
}

/// Runs `run` of the linked app on the engine's own linker, with `env` for the main
/// component and `granted` for the library.
async fn run_with_grants(composed: &Composed, env: &[(&str, &str)], granted: &[(&str, &str)]) -> u32 {
    use crate::policy::{AppConfig, ComponentGrant, Sandbox};
    let pairs = |vars: &[(&str, &str)]| vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let config = AppConfig {
        name: "app".into(),
        env: pairs(env),
        components: vec![ComponentGrant { name: "lib".into(), env: pairs(granted), ..Default::default() }],
        ..AppConfig::default()
    };
    let sandbox = Sandbox::new(config, crate::Stdio::null()).unwrap();
    let engine = crate::Engine::new(crate::EngineConfig::default()).unwrap();
    let component = Component::new(engine.wasmtime(), &composed.bytes).unwrap();
    let mut store = Store::new(engine.wasmtime(), crate::state::P2State::new(&sandbox).unwrap());
    store.set_epoch_deadline(u64::MAX / 2);
    let instance = engine.p2_linker().instantiate_async(&mut store, &component).await.expect("instantiates");
    let run = instance.get_typed_func::<(), (u32,)>(&mut store, "run").unwrap();
    run.call_async(&mut store, ()).await.unwrap().0
}

#[tokio::test]
async fn the_host_gives_a_dependency_its_own_environment_not_the_apps() {
    let (main, lib, with_lib) = (env_counter(true), env_counter(false), plugs(&["lib"]));
    let plan = Plan { main: part(MAIN, &main, &with_lib), others: vec![part("lib", &lib, &[])], middleware: &[] };
    let composed = compose(&plan).unwrap();
    let app_env = [("TOKEN", "secret"), ("LOG", "debug")];
    assert_eq!(run_with_grants(&composed, &app_env, &[]).await, 2, "the library sees none of the app's 2");
    assert_eq!(run_with_grants(&composed, &app_env, &[("STYLE", "dark")]).await, 1002, "only its own grant");
    assert_eq!(run_with_grants(&composed, &[], &[("STYLE", "dark")]).await, 1000);
}

#[test]
fn the_link_key_changes_with_every_input_and_the_wiring() {
    let (main, lib, other) = (main_component(), library(GREET, 7, false), library(GREET, 8, false));
    let (with_lib, none) = (plugs(&["lib"]), plugs(&[]));
    let key = |main: &[u8], lib: &[u8], main_plugs: &[String], name: &str, middleware: &[String]| {
        link_key(&Plan { main: part(MAIN, main, main_plugs), others: vec![part(name, lib, &[])], middleware })
    };
    let base = key(&main, &lib, &with_lib, "lib", &none);
    assert_eq!(base, key(&main, &lib, &with_lib, "lib", &none), "the same plan has the same key");
    for (what, changed) in [
        ("a dependency's code", key(&main, &other, &with_lib, "lib", &none)),
        ("the main code", key(&lib, &lib, &with_lib, "lib", &none)),
        ("the plugs", key(&main, &lib, &none, "lib", &none)),
        ("a name", key(&main, &lib, &with_lib, "lib2", &none)),
        ("the middleware", key(&main, &lib, &with_lib, "lib", &with_lib)),
    ] {
        assert_ne!(base, changed, "{what} changed but the key did not");
    }
}
