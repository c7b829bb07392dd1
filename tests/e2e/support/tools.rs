//! Python tools the tests drive (pulp-cli, schemathesis, openapi-spec-validator, moto, twine and
//! uv, componentize-py), each installed
//! once from PyPI into its own virtual environment under `target/test-tools/<name>`; JavaScript
//! ones (pnpm, yarn) from the npm registry under `target/test-tools/<name>` the same way.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// The virtual environment `target/test-tools/<name>` with `requirements` installed; installs it
/// on first use. A stamp file written after a successful install records the requirements, so an
/// interrupted install or changed pins install again.
pub fn python_venv(name: &str, requirements: &[&str]) -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _guard = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let venv =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../target/test-tools/{name}"));
    let stamp = venv.join(".installed");
    let wanted = requirements.join("\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        return venv;
    }
    let run = |command: &mut Command| {
        let status = command.status().expect("run the installer");
        assert!(status.success(), "{command:?} failed");
    };
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet"])
        .args(requirements));
    std::fs::write(&stamp, wanted).expect("write the install stamp");
    venv
}

/// The npm packages `packages` installed from the npm registry into `target/test-tools/<name>`
/// (with the machine's npm, installed with apt-get when missing), once, as [`python_venv`]
/// installs; answers the directory of their commands (`node_modules/.bin`).
pub fn node_tools(name: &str, packages: &[&str]) -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _guard = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let npm = debian_tool("npm", "npm");
    let prefix =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../target/test-tools/{name}"));
    let stamp = prefix.join(".installed");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        return prefix.join("node_modules/.bin");
    }
    std::fs::create_dir_all(&prefix).expect("create the tools directory");
    let status = Command::new(npm)
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&prefix)
        .args(packages)
        .status()
        .expect("run npm install");
    assert!(status.success(), "npm install {packages:?} failed");
    std::fs::write(&stamp, wanted).expect("write the install stamp");
    prefix.join("node_modules/.bin")
}

/// The virtual environment of pulp-cli (with pulp-glue) from PyPI, the release line the
/// Pulp-compatibility tests target.
pub fn pulp_cli_venv() -> PathBuf {
    python_venv("pulp-cli", &["pulp-cli>=0.41,<0.42"])
}

/// The `pulp` command.
pub fn pulp_cli() -> PathBuf {
    pulp_cli_venv().join("bin/pulp")
}

/// schemathesis and openapi-spec-validator, for the OpenAPI document's tests and the fuzz run.
pub fn api_tools() -> PathBuf {
    python_venv(
        "api-tools",
        &["schemathesis>=4.3,<5", "openapi-spec-validator>=0.7,<0.8"],
    )
}

/// The path of `program`, installing the Debian package `package` with apt-get first when the
/// program is missing (the tests run as root on Debian, as CI does).
pub fn debian_tool(program: &str, package: &str) -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _guard = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let find = || {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {program}"))
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
    };
    if let Some(path) = find() {
        return path;
    }
    let install = |update: bool| {
        if update {
            let _ = Command::new("apt-get").arg("update").status();
        }
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|status| status.success())
    };
    // The package lists may be stale on a fresh machine: refreshed once, when needed.
    assert!(
        install(false) || install(true),
        "apt-get could not install {package}"
    );
    find().unwrap_or_else(|| panic!("{package} is installed but {program} is not on PATH"))
}
