//! Export and import (#21, item 8) against the same work done with the standard tools on the
//! same bytes, on the same disk.
//!
//! - Export: the large mirror (4 × 100 MiB) exported whole, timed from the request to the task
//!   completed (units listed, artifacts read from storage into one tar, the tar hashed and
//!   synced, the table of contents written). Reference: `tar -cf` of the same files, then
//!   `openssl dgst -sha256` of the tar (SHA extensions, as the `sha2` crate) and `sync`.
//! - Import: that export into a second, empty server, timed from the request to its task group
//!   done (the table of contents' digest checked, every artifact hashed, stored and recorded,
//!   the units recorded, the version made). Reference: `openssl dgst -sha256` of the tar,
//!   `tar -xf`, the same of every file, then `sync`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::json;

use crate::api::{self, Api};
use crate::procs::{transfer_dir, write_back};
use crate::report::Row;
use crate::{Bench, LARGE};

/// How long an import may take before the run gives up.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(600);

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    bench.large_mirror().await?;
    let api = Api::new(bench.granary()?)?;
    let transfer = transfer_dir(&bench.dir("data"));
    std::fs::create_dir_all(&transfer)?;
    let bytes = (LARGE.0 * LARGE.1) as f64;

    let repositories = api
        .get(&format!("{}/repositories/file/file/?name=large", api::API))
        .await?;
    let repository = repositories["results"][0]["pulp_href"]
        .as_str()
        .context("the large mirror's repository")?
        .to_owned();
    let exports = transfer.join("exports");
    let exporter = api
        .post(
            &format!("{}/exporters/core/pulp/", api::API),
            json!({"name": "bench", "path": exports, "repositories": [repository]}),
        )
        .await?;
    let exporter = exporter["pulp_href"].as_str().context("the exporter")?;
    write_back()?;
    let started = Instant::now();
    let accepted = api.post(&format!("{exporter}exports/"), json!({})).await?;
    let task = api.wait(&accepted).await?;
    let export_time = started.elapsed();
    let export = api.get(&api::created(&task)?).await?;
    let toc = export["toc_info"]["file"]
        .as_str()
        .context("the export's table of contents")?
        .to_owned();
    let tar = export["output_file_info"]
        .as_object()
        .and_then(|files| files.keys().find(|path| path.ends_with(".tar")).cloned())
        .context("the export's tar")?;

    write_back()?;
    let reference_tar = transfer.join("reference.tar");
    let export_reference = timed_shell(&format!(
        "tar -cf {out} -C {www} large && openssl dgst -sha256 {out} > /dev/null && sync",
        out = reference_tar.display(),
        www = bench.www().display()
    ))?;
    bench.row(Row {
        item: 8,
        measure: format!(
            "export (#21), {} × {} MiB whole into a tar with its table of contents",
            LARGE.0,
            LARGE.1 >> 20
        ),
        granary: format!("{:.0} MB/s", bytes / export_time.as_secs_f64() / 1e6),
        reference: format!(
            "{:.0} MB/s `tar -cf` + `openssl dgst -sha256` + `sync`",
            bytes / export_reference.as_secs_f64() / 1e6
        ),
        ratio: Some(export_reference.as_secs_f64() / export_time.as_secs_f64()),
        target: "≥ 0.5×",
        holds: Some(export_reference.as_secs_f64() / export_time.as_secs_f64() >= 0.5),
    });

    // The import goes to a server of its own, empty, so every artifact is stored.
    let importing = bench.start_granary(&bench.dir("import-data"))?;
    let other = Api::new(importing.addr)?;
    let importer = other
        .post(
            &format!("{}/importers/core/pulp/", api::API),
            json!({"name": "bench"}),
        )
        .await?;
    let importer = importer["pulp_href"].as_str().context("the importer")?;
    write_back()?;
    let started = Instant::now();
    let accepted = other
        .post(
            &format!("{importer}imports/"),
            json!({"toc": toc, "create_repositories": true}),
        )
        .await?;
    let group = accepted["task_group"]
        .as_str()
        .context("the import's task group")?;
    loop {
        let state = other.get(group).await?;
        if state["failed"].as_u64() != Some(0) || state["canceled"].as_u64() != Some(0) {
            bail!("the import failed: {state}");
        }
        if state["all_tasks_dispatched"] == true && state["completed"].as_u64() == Some(2) {
            break;
        }
        if started.elapsed() > IMPORT_TIMEOUT {
            bail!("the import did not finish: {state}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let import_time = started.elapsed();
    drop(importing);

    write_back()?;
    let unpacked = transfer.join("unpacked");
    std::fs::create_dir_all(&unpacked)?;
    let import_reference = timed_shell(&format!(
        "openssl dgst -sha256 {tar} > /dev/null && tar -xf {tar} -C {out} && find {out} -type f -exec openssl dgst -sha256 {{}} + > /dev/null && sync",
        tar = tar,
        out = unpacked.display()
    ))?;
    bench.row(Row {
        item: 8,
        measure: format!(
            "import (#21) of that export into an empty server, through its table of contents, \
             to the repository version made ({} × {} MiB)",
            LARGE.0,
            LARGE.1 >> 20
        ),
        granary: format!("{:.0} MB/s", bytes / import_time.as_secs_f64() / 1e6),
        reference: format!(
            "{:.0} MB/s `openssl dgst -sha256` + `tar -xf` + the same of each file + `sync`",
            bytes / import_reference.as_secs_f64() / 1e6
        ),
        ratio: Some(import_reference.as_secs_f64() / import_time.as_secs_f64()),
        target: "≥ 0.5×",
        holds: Some(import_reference.as_secs_f64() / import_time.as_secs_f64() >= 0.5),
    });
    for path in [reference_tar.as_path(), Path::new(&tar)] {
        let _ = std::fs::remove_file(path);
    }
    let _ = std::fs::remove_dir_all(&unpacked);
    Ok(())
}

/// Runs `script` with `sh -c`; answers how long it took.
fn timed_shell(script: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = Command::new("sh")
        .args(["-c", script])
        .status()
        .context("running sh")?;
    if !status.success() {
        bail!("{script} failed: {status}");
    }
    Ok(started.elapsed())
}
