//! The web UI at `/ui/` in a real browser (headless Chromium through ChromeDriver): a staff user
//! logs in, creates a repository, uploads a file, watches the task finish, distributes the
//! repository, finds the file at the distribution's URL, installs and removes a plugin, deletes a
//! repository, syncs one from a remote given in its creation form, and logs out; an anonymous visitor sees
//! only the log-in form, and a user without roles sees none of the staff's repositories and, on
//! the users page, only themselves. Each main page is checked for one heading, labelled
//! controls and named links and buttons. Screenshots of the main pages land in `target/ui-screenshots/` (and in
//! `docs/ui/` with `GRANARY_UI_SCREENSHOTS_TO_DOCS=1`, how `docs/ui.md`'s are made).

use std::path::PathBuf;

use reqwest::StatusCode;

use crate::support::browser::Browser;
use crate::support::fixture::Fixture;
use crate::support::pulp::API;
use crate::support::upstream::Upstream;
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(a_user_creates_uploads_distributes_and_logs_out_in_a_browser);

/// Checks what makes the page usable with a screen reader and a keyboard, then saves a
/// screenshot of it as `name`.png: one `h1`, every visible form control named by a label (or
/// `aria-label`), every button and link with text, nothing reachable only by pointer (no
/// `tabindex` below 0, no click handlers: the pages have no script).
async fn screenshot(browser: &Browser, name: &str) {
    let problems = browser
        .script(
            "const named = e => (e.labels && e.labels.length) || e.getAttribute('aria-label');
             const problems = [];
             if (document.querySelectorAll('h1').length !== 1) problems.push('not one h1');
             for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea'))
                 if (!named(e)) problems.push('unlabelled ' + (e.id || e.name));
             for (const e of document.querySelectorAll('button, a'))
                 if (!e.textContent.trim() && !e.getAttribute('aria-label')) problems.push('empty ' + e.outerHTML);
             for (const e of document.querySelectorAll('[tabindex], [onclick]'))
                 if (e.tabIndex < 0 || e.hasAttribute('onclick')) problems.push('pointer-only ' + e.outerHTML);
             return problems;",
        )
        .await;
    assert_eq!(problems, serde_json::json!([]), "{name}: accessibility");
    let mut targets =
        vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots")];
    if std::env::var_os("GRANARY_UI_SCREENSHOTS_TO_DOCS").is_some() {
        targets.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/ui"));
    }
    for dir in targets {
        browser.screenshot(&dir.join(format!("{name}.png"))).await;
    }
}

/// Logs `username` in through the form the repositories page leads an anonymous visitor to.
async fn log_in(browser: &Browser, app: &TestApp, username: &str, password: &str) {
    browser.open(&app.url("/ui/repositories/")).await;
    assert!(browser.url().await.contains("/ui/login?next="));
    browser.type_into("#username", username).await;
    browser.type_into("#password", password).await;
    browser.click("form.card button[type=submit]").await;
}

async fn a_user_creates_uploads_distributes_and_logs_out_in_a_browser(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.create_user("reader", "reader-password-1").await;
    let (admin, password) = app.credentials();
    let browser = Browser::start().await;

    // Anonymous: any page leads to the log-in form, which shows nothing else.
    browser.open(&app.url("/ui/repositories/")).await;
    assert!(
        browser.url().await.contains("/ui/login"),
        "{}",
        browser.url().await
    );
    assert_eq!(
        browser.count("nav").await,
        0,
        "no navigation before logging in"
    );
    screenshot(&browser, "log-in").await;

    // A wrong password is refused and says so.
    log_in(&browser, &app, admin, "not-the-password").await;
    assert!(
        browser
            .text()
            .await
            .contains("The username or the password is wrong.")
    );

    // The staff user logs in and lands where they were going.
    log_in(&browser, &app, admin, password).await;
    let text = browser.text().await;
    assert!(text.contains(&format!("Signed in as {admin}")), "{text}");
    assert!(browser.url().await.ends_with("/ui/repositories/"));
    let session = browser
        .cookies()
        .await
        .into_iter()
        .find(|cookie| cookie["name"] == "granary_ui_session")
        .expect("a session cookie");
    assert_eq!(session["httpOnly"], true, "{session:#}");
    assert_eq!(session["sameSite"], "Lax", "{session:#}");

    // A repository, created through the form.
    browser.type_into("#name", "docs").await;
    browser
        .click("form[method=post][action='/ui/repositories/'] button")
        .await;
    let text = browser.text().await;
    assert!(text.contains("Repository created."), "{text}");
    assert!(text.contains("Repository docs"), "{text}");

    // A file uploaded into it; the task page follows the task until it ends.
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("hello.txt");
    std::fs::write(&file, b"hello from the browser\n").unwrap();
    browser.attach("#file", &file).await;
    browser.type_into("#relative_path", "notes/hello.txt").await;
    browser
        .click("form[enctype='multipart/form-data'] button[type=submit]")
        .await;
    assert!(
        browser.url().await.contains("/ui/tasks/"),
        "{}",
        browser.url().await
    );
    browser.wait_for_text("completed").await;
    screenshot(&browser, "task").await;

    // Distributed at a base path: its client settings name the URL, which serves the file.
    browser.open(&app.url("/ui/repositories/")).await;
    browser.click("table a").await;
    screenshot(&browser, "repository").await;
    browser.type_into("#base_path", "docs").await;
    browser
        .click("form[action$='/distribute'] button[type=submit]")
        .await;
    browser.wait_for_text("completed").await;
    browser.open(&app.url("/ui/distributions/")).await;
    let text = browser.text().await;
    let url = app.url("/pulp/content/docs/");
    assert!(text.contains(&format!("curl -O {url}")), "{text}");
    screenshot(&browser, "distributions").await;
    // The publication is a task of its own, queued with the distribution's; once it is done
    // the distribution serves the file.
    let publications = app
        .get_json(&format!("{API}/tasks/?name__contains=publish"))
        .await;
    let publication = publications["results"][0]["pulp_href"]
        .as_str()
        .unwrap_or_else(|| panic!("no publication task: {publications:#}"));
    app.wait_task(publication).await;
    let served = reqwest::get(format!("{url}notes/hello.txt")).await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    let served = served.text().await.unwrap();
    assert_eq!(served, "hello from the browser\n");

    // The version's content lists the file; the search finds it by any part of its path, in
    // any case, and finds nothing for a part no path has.
    browser.open(&app.url("/ui/repositories/")).await;
    browser.click("table a").await;
    browser.click("table a[href*='/versions/1/']").await;
    browser.type_into("#path", "HELLO").await;
    browser.click("form[role=search] button").await;
    assert!(browser.text().await.contains("notes/hello.txt"));
    browser.type_into("#path", "goodbye").await;
    browser.click("form[role=search] button").await;
    assert!(!browser.text().await.contains("notes/hello.txt"));
    // Compared with version 0, version 1 holds the file and lacks nothing.
    browser.type_into("#against", "0").await;
    browser.click("form[aria-labelledby=compare] button").await;
    let text = browser.text().await;
    assert!(
        text.contains("In version 1, not in version 0 (1)")
            && text.contains("In version 0, not in version 1 (0)"),
        "{text}"
    );
    screenshot(&browser, "version").await;
    browser.open(&app.url("/ui/")).await;
    screenshot(&browser, "dashboard").await;

    // Staff install a plugin from the plugins page, then remove it.
    browser.open(&app.url("/ui/plugins/")).await;
    browser
        .attach(
            "#component",
            std::path::Path::new(env!("GRANARY_EXAMPLE_RAW_WASM")),
        )
        .await;
    browser
        .click("form[enctype='multipart/form-data'] button")
        .await;
    let text = browser.text().await;
    assert!(text.contains("Installed raw"), "{text}");
    screenshot(&browser, "plugins").await;
    browser.click("button[aria-label='Remove raw']").await;
    let text = browser.text().await;
    assert!(text.contains("Removed raw."), "{text}");
    assert_eq!(browser.count("button[aria-label='Remove raw']").await, 0);

    // A repository deleted from its page is gone from the list once its task ends.
    browser.open(&app.url("/ui/repositories/")).await;
    browser.type_into("#name", "scratch").await;
    browser
        .click("form[method=post][action='/ui/repositories/'] button")
        .await;
    browser.click("form[action$='/delete'] button").await;
    browser.wait_for_text("completed").await;
    browser.open(&app.url("/ui/repositories/")).await;
    let text = browser.text().await;
    assert!(!text.contains("scratch") && text.contains("docs"), "{text}");

    // A repository with a remote, created in one form and synced from its page.
    let fixture = Fixture::generate(3, 7);
    let upstream = Upstream::serve(&fixture).await;
    browser.open(&app.url("/ui/repositories/")).await;
    browser.type_into("#name", "mirror").await;
    browser
        .type_into("#remote_url", &upstream.manifest_url())
        .await;
    browser
        .click("form[method=post][action='/ui/repositories/'] button")
        .await;
    browser.click("form[action$='/sync'] button").await;
    browser.wait_for_text("completed").await;
    browser.open(&app.url("/ui/repositories/?q=mirror")).await;
    browser.click("table a").await;
    let text = browser.text().await;
    assert!(text.contains("Repository mirror"), "{text}");
    let present = browser.find_text("table tbody tr td:nth-child(5)").await;
    assert_eq!(
        present, "3",
        "the synced version holds the upstream's three files: {text}"
    );

    // A form posted without the session's CSRF token is refused, session cookie and all.
    let cookie = format!("granary_ui_session={}", session["value"].as_str().unwrap());
    let forged = reqwest::Client::new()
        .post(app.url("/ui/repositories/"))
        .header("cookie", &cookie)
        .form(&[("name", "forged"), ("plugin", "file")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // Pages may not be framed by other sites, run no script, and are not cached.
    let headers = forged.headers();
    assert_eq!(headers["x-frame-options"], "DENY");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(
        policy.contains("script-src 'none'") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    assert_eq!(headers["cache-control"], "no-store");

    // Logging out ends the session: the old cookie opens nothing any more.
    browser.click("form.logout button").await;
    assert!(browser.url().await.contains("/ui/login"));
    let replayed = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/ui/repositories/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), StatusCode::SEE_OTHER);

    // A user without roles sees no repository of the staff's, and no link to the users page.
    log_in(&browser, &app, "reader", "reader-password-1").await;
    browser.open(&app.url("/ui/repositories/")).await;
    let text = browser.text().await;
    assert!(!text.contains("docs"), "{text}");
    assert_eq!(browser.count("a[href='/ui/users/']").await, 0);
    // The users page, not linked for them, shows what the API shows them: themselves.
    browser.open(&app.url("/ui/users/")).await;
    let text = browser.text().await;
    assert!(text.contains("reader") && !text.contains(admin), "{text}");
    // The plugins page offers them no install or removal (the API would refuse both).
    browser.open(&app.url("/ui/plugins/")).await;
    assert_eq!(
        browser.count("form[enctype='multipart/form-data']").await,
        0
    );
    assert_eq!(browser.count("form[action='/ui/plugins/remove']").await, 0);
    browser.forget_cookies().await;
    browser.quit().await;
}
