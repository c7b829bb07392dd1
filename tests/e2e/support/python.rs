//! Python packaging for the `python` plugin's scenarios: the real clients (twine, `python -m
//! build`, uv, pip), installed once from PyPI into `target/test-tools/python-packaging`, and two
//! small real projects built with them. The projects use a standard-library build backend
//! (`tests/e2e/fixtures/python/backend.py`), so building, and installing an sdist, is offline.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The client releases the scenarios run.
const CLIENTS: &[&str] = &["twine>=6,<7", "build>=1,<2", "uv>=0.5,<1"];

/// The installed clients.
#[derive(Clone)]
pub struct PythonTools {
    venv: PathBuf,
}

impl PythonTools {
    /// Installs the clients on first use (a virtual environment, packages from PyPI).
    pub fn install() -> PythonTools {
        PythonTools {
            venv: super::tools::python_venv("python-packaging", CLIENTS),
        }
    }

    /// A program of the tools' environment (`python`, `twine`, `uv`, ...).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.venv.join("bin").join(name)
    }
}

/// Runs `command`, panicking with its output unless it succeeds; returns stdout and stderr.
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("running {command:?}: {error}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

/// Runs `command` expecting it to fail; returns its output.
pub fn run_failing(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("running {command:?}: {error}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{command:?} succeeded:\n{text}");
    text
}

/// A project to build: its name, version, dependencies and the code of its one module.
pub struct Project<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub dependencies: &'a [&'a str],
    pub code: &'a str,
}

impl Project<'_> {
    /// The module (and wheel) name: the project name with `_` for `-`.
    pub fn module(&self) -> String {
        self.name.replace('-', "_")
    }

    /// Builds the project with `python -m build` (`kind` is `wheel` or `sdist`) under `dir`;
    /// returns the built file.
    pub fn build(&self, tools: &PythonTools, dir: &Path, kind: &str) -> PathBuf {
        let source = dir.join(format!("{}-{}-src", self.name, self.version));
        let module = source.join(self.module());
        std::fs::create_dir_all(&module).expect("create the project directory");
        let dependencies: Vec<String> = self
            .dependencies
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect();
        std::fs::write(
            source.join("pyproject.toml"),
            format!(
                "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n\n\
                 [project]\nname = \"{}\"\nversion = \"{}\"\ndescription = \"Granary test project\"\n\
                 requires-python = \">=3.8\"\ndependencies = [{}]\n",
                self.name,
                self.version,
                dependencies.join(", ")
            ),
        )
        .expect("write pyproject.toml");
        std::fs::copy(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/e2e/fixtures/python/backend.py"),
            source.join("backend.py"),
        )
        .expect("copy the build backend");
        std::fs::write(module.join("__init__.py"), self.code).expect("write the module");
        let out = dir.join("dist");
        run(Command::new(tools.bin("python"))
            .args([
                "-m",
                "build",
                "--no-isolation",
                &format!("--{kind}"),
                "--outdir",
            ])
            .arg(&out)
            .arg(&source));
        let filename = match kind {
            "wheel" => format!("{}-{}-py3-none-any.whl", self.module(), self.version),
            _ => format!("{}-{}.tar.gz", self.module(), self.version),
        };
        let file = out.join(filename);
        assert!(file.exists(), "python -m build made no {}", file.display());
        file
    }
}

/// `granary-dep`: a library that the demo depends on.
pub fn dep(version: &str) -> Project<'_> {
    Project {
        name: "granary-dep",
        version,
        dependencies: &[],
        code: "ANSWER = 42\n",
    }
}

/// `granary-demo` 1.0: it imports `granary_dep`.
pub fn demo() -> Project<'static> {
    Project {
        name: "granary-demo",
        version: "1.0",
        dependencies: &["granary-dep>=0.2"],
        code: "from granary_dep import ANSWER\n\n\ndef answer():\n    return ANSWER\n",
    }
}

/// The two files the install scenarios need, built under `dir`: the demo's wheel and the
/// dependency's sdist.
pub fn build_demo_and_dep(tools: &PythonTools, dir: &Path) -> (PathBuf, PathBuf) {
    let wheel = demo().build(tools, dir, "wheel");
    let sdist = dep("0.2.0").build(tools, dir, "sdist");
    (wheel, sdist)
}

/// `pip install --index-url <index> granary-demo` into a fresh virtual environment under `dir`,
/// then imports it; returns pip's verbose output.
pub fn pip_install_demo(tools: &PythonTools, dir: &Path, index: &str) -> String {
    let venv = dir.join(format!("pip-env-{}", super::app::random_hex(4)));
    run(Command::new(tools.bin("python"))
        .args(["-m", "venv"])
        .arg(&venv));
    let output = run(Command::new(venv.join("bin/pip")).args([
        "install",
        "-v",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--index-url",
        index,
        "granary-demo",
    ]));
    assert_demo_imports(&venv);
    output
}

/// `uv pip install --index-url <index> granary-demo` into a fresh virtual environment made by
/// `uv venv`, with an empty cache, then imports it.
pub fn uv_install_demo(tools: &PythonTools, dir: &Path, index: &str) {
    let venv = dir.join(format!("uv-env-{}", super::app::random_hex(4)));
    let cache = dir.join("uv-cache");
    run(Command::new(tools.bin("uv"))
        .arg("venv")
        .arg(&venv)
        .arg("--python")
        .arg(tools.bin("python"))
        .env("UV_CACHE_DIR", &cache));
    run(Command::new(tools.bin("uv"))
        .args([
            "pip",
            "install",
            "--no-cache",
            "--index-url",
            index,
            "--python",
        ])
        .arg(venv.join("bin/python"))
        .arg("granary-demo")
        .env("UV_CACHE_DIR", &cache));
    assert_demo_imports(&venv);
}

fn assert_demo_imports(venv: &Path) {
    let output = run(Command::new(venv.join("bin/python"))
        .args(["-c", "import granary_demo; print(granary_demo.answer())"]));
    assert_eq!(output.trim(), "42", "the installed demo works");
}

/// `twine upload` to `legacy_url` with Basic credentials; `extra` adds options.
pub fn twine_upload(
    tools: &PythonTools,
    legacy_url: &str,
    (user, password): (&str, &str),
    files: &[&Path],
    extra: &[&str],
) -> Command {
    let mut command = Command::new(tools.bin("twine"));
    command
        .args([
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
            legacy_url,
        ])
        .args(["-u", user, "-p", password])
        .args(extra)
        .args(files);
    command
}
