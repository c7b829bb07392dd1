//! #25: the web UI's pages for a repository of 100,000 units (a file repository synced
//! `on_demand` from a manifest nginx serves), each beside the REST list call it is built
//! around: the repository page (its versions), a version's first and last page of content, and
//! the repositories list searched by name. Each page is fetched with a session cookie got
//! through the log-in form, as a browser does; sequential requests, the median of
//! [`ROUNDS`] after two unmeasured ones.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::api::{API, Api};
use crate::procs::PASSWORD;
use crate::report::{Row, Spread};
use crate::{Bench, fixture};

/// Units in the repository.
const UNITS: usize = 100_000;

/// Measured requests per page.
const ROUNDS: usize = 15;

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let nginx = bench.nginx()?;
    fixture::manifest_only(&bench.www().join("ui"), UNITS)?;
    let addr = bench.granary()?;
    let api = Api::new(addr)?;
    let (repository, remote) = api
        .repository_and_remote(
            "ui-100k",
            &format!("http://{nginx}/ui/PULP_MANIFEST"),
            "on_demand",
        )
        .await?;
    api.sync(&repository, &remote).await?;
    let origin = format!("http://{addr}");
    let browser = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookie = log_in(&browser, &origin).await?;
    let version = format!("{repository}versions/1/");
    let ui = |href: &str| href.replacen(&format!("{API}/"), "/ui/", 1);
    let last_page = UNITS - 25;
    let encoded_version = version.replace('/', "%2F");
    let pages = [
        (
            "repository page (its versions)",
            ui(&repository),
            format!("{repository}versions/?limit=25&offset=0"),
        ),
        (
            "version page, first 25 units",
            ui(&version),
            format!("{API}/content/?repository_version={encoded_version}&limit=25&offset=0"),
        ),
        (
            "version page, last 25 units",
            format!("{}?offset={last_page}", ui(&version)),
            format!(
                "{API}/content/?repository_version={encoded_version}&limit=25&offset={last_page}"
            ),
        ),
        (
            "repositories list searched by name",
            "/ui/repositories/?q=ui-100k".to_owned(),
            format!("{API}/repositories/?ordering=name&limit=25&offset=0&name__icontains=ui-100k"),
        ),
    ];
    for (what, page, rest) in pages {
        let mut page_times = Vec::new();
        let mut rest_times = Vec::new();
        for round in 0..ROUNDS + 2 {
            let page_time = timed(
                browser
                    .get(format!("{origin}{page}"))
                    .header("cookie", &cookie),
            )
            .await?;
            let rest_time = timed(
                browser
                    .get(format!("{origin}{rest}"))
                    .basic_auth("admin", Some(PASSWORD)),
            )
            .await?;
            if round >= 2 {
                page_times.push(page_time.as_secs_f64() * 1000.0);
                rest_times.push(rest_time.as_secs_f64() * 1000.0);
            }
        }
        let page_ms = Spread::of(page_times.iter().copied());
        let rest_ms = Spread::of(rest_times.iter().copied());
        let ratios = Spread::ratios(&page_times, &rest_times);
        bench.row(Row {
            item: 5,
            measure: format!(
                "#25: UI {what}, {UNITS} units, ratio range {}",
                ratios.ratio_range()
            ),
            granary: format!("{:.1} ms", page_ms.median),
            reference: format!(
                "{:.1} ms (the REST list call it is built around)",
                rest_ms.median
            ),
            ratio: Some(ratios.median),
            target: "page < 1 s",
            holds: Some(page_ms.median < 1000.0),
        });
    }
    Ok(())
}

/// Logs in through the form (its CSRF cookie and field, then the password); answers the
/// session's `Cookie` header value.
async fn log_in(browser: &reqwest::Client, origin: &str) -> anyhow::Result<String> {
    let form = browser.get(format!("{origin}/ui/login")).send().await?;
    let login_cookie = set_cookie(&form, "granary_ui_login")?;
    let html = form.text().await?;
    let marker = r#"name="csrf" value=""#;
    let start = html
        .find(marker)
        .context("no CSRF field in the log-in form")?
        + marker.len();
    let csrf = &html[start..start + html[start..].find('"').unwrap_or(0)];
    let answer = browser
        .post(format!("{origin}/ui/login"))
        .header("cookie", format!("granary_ui_login={login_cookie}"))
        .form(&[
            ("username", "admin"),
            ("password", PASSWORD),
            ("csrf", csrf),
            ("next", "/ui/"),
        ])
        .send()
        .await?;
    if answer.status() != reqwest::StatusCode::SEE_OTHER {
        bail!("the log-in answered {}", answer.status());
    }
    Ok(format!(
        "granary_ui_session={}",
        set_cookie(&answer, "granary_ui_session")?
    ))
}

/// The value `response` sets for cookie `name`.
fn set_cookie(response: &reqwest::Response, name: &str) -> anyhow::Result<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            let first = value.split(';').next()?;
            let (key, value) = first.split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
        .with_context(|| format!("no {name} cookie set"))
}

/// How long `request` takes to answer 200 with its whole body.
async fn timed(request: reqwest::RequestBuilder) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let response = request.send().await?;
    let status = response.status();
    response.bytes().await?;
    if !status.is_success() {
        bail!("HTTP {status}");
    }
    Ok(started.elapsed())
}
