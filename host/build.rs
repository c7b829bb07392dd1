//! Builds the plugin components to `wasm32-wasip2` so the server can embed the built-in ones and
//! the tests can load the test components. Installs the target first when it is missing: a
//! `rust-toolchain.toml` does not add a target to an already-installed toolchain.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// (package, environment variable carrying the built component's path)
const COMPONENTS: &[(&str, &str)] = &[
    ("granary-plugin-file", "GRANARY_PLUGIN_FILE_WASM"),
    ("granary-plugin-python", "GRANARY_PLUGIN_PYTHON_WASM"),
    ("granary-plugin-container", "GRANARY_PLUGIN_CONTAINER_WASM"),
    ("granary-plugin-cargo", "GRANARY_PLUGIN_CARGO_WASM"),
    ("granary-plugin-npm", "GRANARY_PLUGIN_NPM_WASM"),
    ("granary-test-hostile", "GRANARY_TEST_HOSTILE_WASM"),
    ("granary-test-misfit", "GRANARY_TEST_MISFIT_WASM"),
    ("granary-test-lookups", "GRANARY_TEST_LOOKUPS_WASM"),
    ("granary-test-blobs", "GRANARY_TEST_BLOBS_WASM"),
    ("granary-example-raw", "GRANARY_EXAMPLE_RAW_WASM"),
    ("granary-example-raw-v2", "GRANARY_EXAMPLE_RAW_V2_WASM"),
];

/// Components built against an older WIT version, through a feature of their own that selects the
/// SDK's (`granary-sdk/wit-v0_2`), in a cargo invocation of their own so that the feature does not
/// reach the others: (package, feature, environment variable).
const OLDER_WIT_COMPONENTS: &[(&str, &str, &str)] = &[(
    "granary-test-handler",
    "wit-v0_2",
    "GRANARY_TEST_HANDLER_WASM",
)];

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.parent().expect("workspace root").to_path_buf();
    // `sqlx::migrate!` embeds host/migrations, but a new file there does not make cargo
    // rebuild the crate by itself.
    for watched in [
        "host/migrations",
        "wit",
        "sdk",
        "plugins",
        "examples",
        "tests/components",
        "Cargo.toml",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    ensure_target();
    let target_dir = workspace.join("target").join("wasm");
    let packages: Vec<&str> = COMPONENTS.iter().map(|(package, _)| *package).collect();
    build_components(&workspace, &target_dir, &packages, &[]);
    for (package, feature, _) in OLDER_WIT_COMPONENTS {
        build_components(
            &workspace,
            &target_dir,
            &[package],
            &[format!("{package}/{feature}")],
        );
    }
    let built = COMPONENTS
        .iter()
        .map(|(package, variable)| (package, variable))
        .chain(
            OLDER_WIT_COMPONENTS
                .iter()
                .map(|(package, _, variable)| (package, variable)),
        );
    for (package, variable) in built {
        let file = target_dir
            .join(TARGET)
            .join("plugin")
            .join(format!("{}.wasm", package.replace('-', "_")));
        assert!(
            file.exists(),
            "expected component {} after the build",
            file.display()
        );
        println!("cargo:rustc-env={variable}={}", file.display());
    }
}

/// Builds `packages` for the Wasm target with the `plugin` profile into `target_dir`, with
/// `features` (`package/feature`) on.
fn build_components(workspace: &Path, target_dir: &Path, packages: &[&str], features: &[String]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "build",
            "--profile",
            "plugin",
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(target_dir);
    for package in packages {
        command.args(["-p", package]);
    }
    for feature in features {
        command.args(["--features", feature]);
    }
    // The outer build's flags are for the host, not for Wasm guests.
    for variable in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        command.env_remove(variable);
    }
    let status = command
        .status()
        .expect("running cargo to build the plugin components");
    assert!(
        status.success(),
        "building the plugin components {packages:?} for {TARGET} failed"
    );
}

/// Adds the `wasm32-wasip2` target with rustup when the toolchain does not have it.
fn ensure_target() {
    let libdir = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    if libdir.as_deref().is_some_and(has_std) {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status();
    assert!(
        status.is_ok_and(|status| status.success()),
        "the {TARGET} target is missing and `rustup target add {TARGET}` failed; install it and build again"
    );
}

fn has_std(libdir: &Path) -> bool {
    std::fs::read_dir(libdir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|entry| entry.file_name().to_string_lossy().starts_with("libstd-"))
        })
        .unwrap_or(false)
}
