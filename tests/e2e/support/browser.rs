//! A headless Chromium driven through ChromeDriver (Debian's `chromium` and `chromium-driver`,
//! installed when missing) over the W3C WebDriver protocol: the few commands a UI test needs
//! (open a page, find elements, type, click, read the page, take a screenshot), each one JSON
//! request to the driver on loopback. The page's text is read by a one-line script, in one step,
//! so that a page reloading itself cannot leave a stale element between two.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::tools::debian_tool;

/// The key WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running ChromeDriver and one browser session of it. Both end when it drops.
pub struct Browser {
    driver: Child,
    client: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`
    session: String,
}

impl Browser {
    /// Starts ChromeDriver on a free loopback port and a headless Chromium session.
    pub async fn start() -> Browser {
        let chromium = debian_tool("chromium", "chromium");
        let chromedriver = debian_tool("chromedriver", "chromium-driver");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900"],
            },
        }}});
        let created: Value = serde_json::from_slice(
            &client
                .post(format!("{base}/session"))
                .header("content-type", "application/json")
                .body(capabilities.to_string())
                .send()
                .await
                .expect("create a session")
                .bytes()
                .await
                .expect("a session answer"),
        )
        .expect("a JSON session answer");
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created:#}"))
            .to_owned();
        Browser {
            driver,
            client,
            session: format!("{base}/session/{id}"),
        }
    }

    /// One WebDriver command; its `value`.
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_command(method, path, body)
            .await
            .unwrap_or_else(|error| panic!("WebDriver {path}: {error}"))
    }

    /// One WebDriver command: its `value`, or the driver's error.
    async fn try_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let bytes = request
            .send()
            .await
            .expect("reach chromedriver")
            .bytes()
            .await
            .expect("a WebDriver answer");
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        match answer["value"]["error"].as_str() {
            Some(error) => Err(format!("{error}: {}", answer["value"]["message"])),
            None => Ok(answer["value"].clone()),
        }
    }

    /// Opens `url` and waits for it to load.
    pub async fn open(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// The URL shown now.
    pub async fn url(&self) -> String {
        let value = self.command(reqwest::Method::GET, "/url", None).await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.try_text()
            .await
            .unwrap_or_else(|error| panic!("reading the page: {error}"))
    }

    /// The page's visible text, read in one step (a page that reloads itself between two steps
    /// would leave a stale element), or why it could not be read (the page was reloading).
    async fn try_text(&self) -> Result<String, String> {
        let script = json!({"script": "return document.body.innerText;", "args": []});
        let value = self
            .try_command(reqwest::Method::POST, "/execute/sync", Some(script))
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The element `selector` (CSS) names; panics when there is none.
    async fn find(&self, selector: &str) -> String {
        let value = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": selector})),
            )
            .await;
        value[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {selector:?}: {value}"))
            .to_owned()
    }

    /// What `script` (a function body) returns, run in the page.
    pub async fn script(&self, script: &str) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// The text of the first element `selector` names.
    pub async fn find_text(&self, selector: &str) -> String {
        let element = self.find(selector).await;
        let value = self
            .command(
                reqwest::Method::GET,
                &format!("/element/{element}/text"),
                None,
            )
            .await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// How many elements `selector` names.
    pub async fn count(&self, selector: &str) -> usize {
        let value = self
            .command(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": selector})),
            )
            .await;
        value.as_array().map_or(0, Vec::len)
    }

    /// Types `text` into the field `selector` names (for a file input: the file's path).
    pub async fn type_into(&self, selector: &str, text: &str) {
        let element = self.find(selector).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Attaches the file at `path` to the file input `selector` names.
    pub async fn attach(&self, selector: &str, path: &Path) {
        let element = self.find(selector).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": path.display().to_string()})),
        )
        .await;
    }

    /// Clicks the element `selector` names, a link or a form's button, and returns once the
    /// page it leads to has loaded. ChromeDriver's click does not always wait for the navigation
    /// it starts (Chromium 156.0.8078.114 returned before the form's answer arrived), so the page
    /// being left is marked, and the call waits until a document without the mark is complete.
    pub async fn click(&self, selector: &str) {
        let element = self.find(selector).await;
        self.script("window.granaryLeaving = true;").await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
        let arrived = json!({
            "script": "return !window.granaryLeaving && document.readyState === 'complete';",
            "args": [],
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // A script run while the next page replaces this one may fail: look again.
            let done = self
                .try_command(
                    reqwest::Method::POST,
                    "/execute/sync",
                    Some(arrived.clone()),
                )
                .await;
            if done == Ok(Value::Bool(true)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clicking {selector} led to no new page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page's text holds `wanted` (a page that reloads itself, say), reading it
    /// again every 200 ms for up to a minute; answers the text.
    pub async fn wait_for_text(&self, wanted: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = self.try_text().await.unwrap_or_default();
            if text.contains(wanted) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {wanted:?}; it shows:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The browser's cookies, as WebDriver describes them (`name`, `httpOnly`, `sameSite`, …).
    pub async fn cookies(&self) -> Vec<Value> {
        let value = self.command(reqwest::Method::GET, "/cookie", None).await;
        value.as_array().cloned().unwrap_or_default()
    }

    /// Deletes every cookie (the visitor becomes anonymous).
    pub async fn forget_cookies(&self) {
        self.command(reqwest::Method::DELETE, "/cookie", None).await;
    }

    /// Ends the session (the driver closes its browser), then the driver.
    pub async fn quit(self) {
        let _ = self.client.delete(&self.session).send().await;
    }

    /// Writes a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let value = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().expect("base64 PNG"))
            .expect("a PNG");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("a screenshot directory");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver takes its browser down with it.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
