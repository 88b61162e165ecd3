//! The console in a real browser: headless Chromium, driven through chromedriver's
//! WebDriver by `fantoccini`, against the real `crosswalk serve` binary on a free port.
//!
//! The first test is a person's whole job: sign in, open the SAP connection's purchase
//! order mapping, load a sandbox order, remap `vendor.name` by clicking a value in the
//! record's tree, add `custom_fields.cost_center`, preview exactly those two changes,
//! save, see the new version in the history, check through the API that transforms
//! answer the new values, roll back to the shipped default, and check that the API
//! answers the old ones. The others: an invalid JSONPath shown at its rule with its
//! position and the save refused; a wrong key; a plugin uploaded and bound; the error
//! log of a connection whose transforms failed; the console at 800 px.
//!
//! Chromium and chromedriver are Debian's `chromium` and `chromium-driver`, which
//! `scripts/setup` installs (`CROSSWALK_CHROMEDRIVER` and `CROSSWALK_CHROMIUM` name
//! others). Without them these tests fail, naming what is missing, unless
//! `CROSSWALK_SKIP_BROWSER=1` says to leave them out. Every test saves screenshots
//! (`console-*.png`) under the test build's temporary directory, or under
//! `CROSSWALK_SCREENSHOTS` when set.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::server::{Server, request};
use crate::support;

/// How long the page may take to show what a step waits for.
const WAIT: Duration = Duration::from_secs(20);

/// A headless Chromium, its chromedriver, and the page it shows.
struct Browser {
    driver: Child,
    client: Client,
    shots: PathBuf,
    /// The prefix of this test's screenshots.
    test: &'static str,
    _profile: tempfile_dir::Dir,
}

/// The browser of a test, or `None` when the user opted out with
/// `CROSSWALK_SKIP_BROWSER=1`. A missing Chromium or chromedriver fails the test,
/// naming it.
async fn browser(test: &'static str) -> Option<Browser> {
    if std::env::var_os("CROSSWALK_SKIP_BROWSER").is_some_and(|v| v == "1") {
        eprintln!("{test}: skipped, CROSSWALK_SKIP_BROWSER=1");
        return None;
    }
    let chromium = program("CROSSWALK_CHROMIUM", &["chromium", "chromium-browser"]);
    let chromedriver = program("CROSSWALK_CHROMEDRIVER", &["chromedriver"]);
    let (chromium, chromedriver) = match (chromium, chromedriver) {
        (Some(c), Some(d)) => (c, d),
        (c, d) => panic!(
            "the console's browser tests need {}: scripts/setup installs Debian's `chromium` and `chromium-driver` (CROSSWALK_CHROMIUM and CROSSWALK_CHROMEDRIVER name others; CROSSWALK_SKIP_BROWSER=1 leaves these tests out)",
            [
                c.is_none().then_some("Chromium"),
                d.is_none().then_some("chromedriver"),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" and ")
        ),
    };
    let port = free_port();
    // A process group of its own, with the browsers it starts: a test that fails
    // (and never closes its session) still stops them all (see `Drop`).
    let driver = Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{} does not start: {e}", chromedriver.display()));
    let profile = tempfile_dir::Dir::new("crosswalk-console-profile");
    let capabilities = json!({
        "browserName": "chrome",
        "goog:loggingPrefs": {"browser": "ALL"},
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                // The machine's network is closed: no background calls to make.
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--no-first-run",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("an object")
    };
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + WAIT;
    let client = loop {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => break client,
            Err(e) if Instant::now() > deadline => {
                panic!("no WebDriver session from {}: {e}", chromedriver.display())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let shots = std::env::var_os("CROSSWALK_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console"));
    std::fs::create_dir_all(&shots).expect("the screenshot folder");
    Some(Browser {
        driver,
        client,
        shots,
        test,
        _profile: profile,
    })
}

/// A program named by `variable`, or the first of `names` on the `PATH`.
fn program(variable: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Browser {
    /// Opens `path` of the server.
    async fn open(&self, server: &Server, path: &str) {
        self.client
            .goto(&format!("http://{}{path}", server.addr))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// The element `css` selects, once it is on the page.
    async fn find(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => {
                self.shot("failed").await;
                panic!("`{css}` never showed: {e}")
            }
        }
    }

    /// Clicks the element `css` selects.
    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        // Into view first: a click on an element off screen is refused.
        self.scroll_into_view(&element, "center").await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("click `{css}`: {e}"));
    }

    /// Scrolls the element `css` selects to the top of its scrolling box.
    async fn scroll_to(&self, css: &str) {
        let element = self.find(css).await;
        self.scroll_into_view(&element, "start").await;
    }

    /// Scrolls `element` into view, placed at `block` (`start`, `center`).
    async fn scroll_into_view(&self, element: &Element, block: &str) {
        self.client
            .execute(
                &format!("arguments[0].scrollIntoView({{block: '{block}'}})"),
                vec![serde_json::to_value(element).expect("an element reference")],
            )
            .await
            .expect("scroll into view");
    }

    /// Replaces the text of the input `css` selects with `text`.
    async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        element.clear().await.expect("clear");
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into `{css}`: {e}"));
    }

    /// Chooses the option of the select `css` whose label contains `label`.
    async fn choose(&self, css: &str, label: &str) {
        let select = self.find(css).await;
        let deadline = Instant::now() + WAIT;
        loop {
            for option in select
                .find_all(Locator::Css("option"))
                .await
                .expect("options")
            {
                if option.text().await.expect("text").contains(label) {
                    option.click().await.expect("choose");
                    return;
                }
            }
            if Instant::now() > deadline {
                self.shot("failed").await;
                panic!("`{css}` has no option with `{label}`");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the element `css` selects shows `part` in its text; answers it.
    async fn wait_text(&self, css: &str, part: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(part) {
                return text;
            }
            if Instant::now() > deadline {
                self.shot("failed").await;
                panic!("`{css}` never said `{part}`; it says: {text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every element `css` selects now.
    async fn all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("find all")
    }

    /// Saves a screenshot of the page as `console-<test>-<name>.png`.
    async fn shot(&self, name: &str) -> PathBuf {
        let path = self.shots.join(format!("console-{}-{name}.png", self.test));
        if let Ok(png) = self.client.screenshot().await {
            std::fs::write(&path, png).expect("write the screenshot");
        }
        path
    }

    /// What the page logged to the browser console since the last call, as
    /// `LEVEL message` lines.
    async fn console_log(&self) -> Vec<String> {
        let entries = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("chromedriver gives the browser's log");
        entries
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                format!(
                    "{} {}",
                    e["level"].as_str().unwrap_or("?"),
                    e["message"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }

    /// Fails the test if the page logged an error: an exception, a refused script or
    /// style (the Content-Security-Policy), or a request that failed, except answers
    /// of the API with a status in `expected` (a wrong key's 401, a refused save's
    /// 422), which the browser logs as failed loads.
    async fn assert_no_console_errors(&self, expected: &[u16]) {
        let errors: Vec<String> = self
            .console_log()
            .await
            .into_iter()
            .filter(|line| line.starts_with("SEVERE"))
            .filter(|line| {
                !expected.iter().any(|status| {
                    line.contains("/v1/")
                        && line.contains(&format!("the server responded with a status of {status}"))
                })
            })
            .collect();
        if !errors.is_empty() {
            self.shot("console-errors").await;
        }
        assert!(
            errors.is_empty(),
            "the browser console has errors:\n{}",
            errors.join("\n")
        );
    }

    /// Closes the session; `Drop` then stops chromedriver and what is left of Chromium.
    async fn quit(self) {
        let _ = self.client.clone().close().await;
    }
}

/// chromedriver and the Chromium it started are stopped together, by their process
/// group, whether or not the test closed its session.
impl Drop for Browser {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

/// chromedriver's `POST /session/{id}/se/log` for the `browser` log: the console
/// messages since the last read.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// A temporary directory, removed when dropped.
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(prefix: &str) -> Dir {
            let path = std::env::temp_dir().join(format!(
                "{prefix}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("after 1970")
                    .as_nanos()
            ));
            std::fs::create_dir_all(&path).expect("a temporary directory");
            Dir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs a browser test on its own runtime (the e2e tests are synchronous).
fn run(test: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(test)
}

/// A server on a fresh data dir, kept with it.
fn server() -> (Server, tempfile_dir::Dir) {
    let data = tempfile_dir::Dir::new("crosswalk-console-data");
    (Server::start(data.path()), data)
}

/// Signs in with `key` and waits for the connections.
async fn sign_in(b: &Browser, server: &Server, key: &str) {
    b.open(server, "/").await;
    b.fill("#key", key).await;
    b.click("#sign-in").await;
}

/// The SAP sandbox order with custom `ZZ1_` fields, as the sandbox holds it.
fn order_with_custom_fields() -> Value {
    let sandbox: Value = serde_json::from_str(
        &std::fs::read_to_string(support::root().join("engine/systems/sandbox/sap-s4hana.json"))
            .expect("the SAP sandbox"),
    )
    .expect("JSON");
    sandbox["purchase_order"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| &o["record"])
        .find(|r| r["PurchaseOrder"] == "4500000187")
        .expect("order 4500000187")
        .clone()
}

/// `POST …/transform/purchase_order` of the order through the API: the unified record.
fn transform(server: &Server, sap: &str, order: &Value) -> Value {
    let (status, _, body) = request(
        &server.addr,
        "POST",
        &format!("/v1/connections/{sap}/transform/purchase_order"),
        &server.demo_key,
        order.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    // One record in, one record out.
    body["data"].clone()
}

#[test]
fn a_person_remaps_a_field_and_adds_a_custom_field() {
    run(async {
        let (server, _data) = server();
        let Some(b) = browser("remap").await else {
            return;
        };
        let sap = server.sandbox("sap-s4hana");
        let order = order_with_custom_fields();
        let before = transform(&server, &sap, &order);
        assert_eq!(before["vendor"]["name"], Value::Null, "{before}");
        assert_eq!(before["custom_fields"], json!({}), "{before}");

        // Sign in and open the SAP connection's purchase order mapping.
        sign_in(&b, &server, &server.demo_key).await;
        b.click(&format!("#connections tr[data-connection='{sap}'] a.open"))
            .await;
        b.find("#rules tr[data-target='vendor.name']").await;
        b.wait_text("#rules tr[data-target='vendor.name']", "AddressName")
            .await;

        // Load the sandbox order that carries custom fields, as a tree.
        b.choose("#sample-record", "4500000187").await;
        b.click("#load-sample").await;
        b.find("#sample-tree button.node[data-path='$.ZZ1_SupplierName_PDH']")
            .await;

        // Remap vendor.name: open its rule, click the supplier's name in the tree.
        b.click("#rules tr[data-target='vendor.name'] button.edit")
            .await;
        b.click("#sample-tree button.node[data-path='$.ZZ1_SupplierName_PDH']")
            .await;
        let path = b
            .find("#rule-path")
            .await
            .prop("value")
            .await
            .expect("value");
        assert_eq!(path.as_deref(), Some("$.ZZ1_SupplierName_PDH"));
        let supplier = order["ZZ1_SupplierName_PDH"]
            .as_str()
            .expect("a name")
            .to_owned();
        b.wait_text("#path-result", &supplier).await;
        // A window tall enough to show the editor and the tree together.
        b.client.set_window_size(1280, 1700).await.expect("resize");
        b.scroll_to("#editor").await;
        b.shot("tree-picker").await;
        b.client.set_window_size(1280, 900).await.expect("resize");
        b.click("#apply-rule").await;
        b.find("#staged li[data-target='vendor.name']").await;

        // Add custom_fields.cost_center from the ZZ1_ cost center.
        b.fill("#custom-name", "cost_center").await;
        b.click("#add-custom").await;
        b.find("#editor").await;
        b.click("#sample-tree button.node[data-path='$.ZZ1_CostCenter_PDH']")
            .await;
        let cost_center = order["ZZ1_CostCenter_PDH"]
            .as_str()
            .expect("a cost center")
            .to_owned();
        b.wait_text("#path-result", &cost_center).await;
        b.click("#apply-rule").await;
        b.find("#staged li[data-target='custom_fields.cost_center']")
            .await;

        // The preview shows exactly those two changes.
        b.click("#preview").await;
        b.find("#preview-changes li").await;
        let mut changed = Vec::new();
        for li in b.all("#preview-changes li").await {
            changed.push(
                li.attr("data-path")
                    .await
                    .expect("attr")
                    .unwrap_or_default(),
            );
        }
        changed.sort();
        assert_eq!(changed, ["custom_fields.cost_center", "vendor.name"]);
        b.wait_text("#preview-changes", &supplier).await;
        b.find("#preview-pane .changed[data-path='vendor.name']")
            .await;
        b.shot("preview").await;

        // Save: a new version, and the history shows it.
        b.click("#save").await;
        b.wait_text("#status", "Saved version 1").await;
        b.find("#history tr[data-version='1']").await;
        b.shot("saved").await;

        // The API maps with the new version.
        let after = transform(&server, &sap, &order);
        assert_eq!(after["vendor"]["name"], json!(supplier), "{after}");
        assert_eq!(
            after["custom_fields"]["cost_center"],
            json!(cost_center),
            "{after}"
        );

        // Roll back to the shipped default: the API answers the old values.
        b.click("#history tr[data-version='0'] button.rollback")
            .await;
        b.click("#history tr[data-version='0'] button.rollback")
            .await;
        b.wait_text("#status", "Rolled back to version 0").await;
        b.find("#history tr[data-version='2']").await;
        let restored = transform(&server, &sap, &order);
        assert_eq!(restored, before);

        // The diff of version 1 against the default names both targets.
        b.choose("#diff-from", "0").await;
        b.choose("#diff-to", "1").await;
        b.click("#show-diff").await;
        b.wait_text("#diff", "custom_fields.cost_center").await;
        b.wait_text("#diff", "vendor.name").await;

        b.assert_no_console_errors(&[]).await;
        b.quit().await;
    });
}

#[test]
fn an_invalid_jsonpath_is_shown_at_its_rule_and_not_saved() {
    run(async {
        let (server, _data) = server();
        let Some(b) = browser("invalid-path").await else {
            return;
        };
        let sap = server.sandbox("sap-s4hana");
        sign_in(&b, &server, &server.demo_key).await;
        b.click(&format!("#connections tr[data-connection='{sap}'] a.open"))
            .await;
        b.click("#load-sample").await;
        b.find("#sample-tree button.node").await;

        // As it is typed: where the path stops being valid.
        b.click("#rules tr[data-target='currency'] button.edit")
            .await;
        b.fill("#rule-path", "$.DocumentCurrency[").await;
        b.wait_text("#path-result", "position 20").await;
        b.click("#apply-rule").await;

        // The service refuses it: at the rule, with the position; nothing is saved.
        b.click("#save").await;
        b.wait_text(
            "#rules tr[data-target='currency'] .rule-error",
            "position 20",
        )
        .await;
        b.wait_text("#problems", "invalid JSONPath").await;
        b.shot("refused").await;
        let (_, version, _) = request(
            &server.addr,
            "GET",
            &format!("/v1/connections/{sap}/mappings/purchase_order"),
            &server.demo_key,
            b"",
        );
        assert_eq!(version, Some(0), "a refused save stored a version");

        b.assert_no_console_errors(&[422]).await;
        b.quit().await;
    });
}

#[test]
fn a_wrong_key_is_told_so() {
    run(async {
        let (server, _data) = server();
        let Some(b) = browser("wrong-key").await else {
            return;
        };
        sign_in(&b, &server, "cw_not_a_key").await;
        let message = b.wait_text("#sign-in-error", "not accepted").await;
        assert!(message.contains("Authorization"), "{message}");
        assert!(
            b.all("#connections").await.is_empty(),
            "signed in with a wrong key"
        );
        b.shot("wrong-key").await;

        // The right key then works, typed and sent with the keyboard alone (Enter), and
        // signing out forgets it.
        b.fill("#key", &format!("{}\u{E007}", server.demo_key))
            .await;
        b.find("#connections tr[data-connection]").await;
        b.click("#sign-out").await;
        b.find("#key").await;
        let kept = b
            .client
            .execute("return sessionStorage.length + localStorage.length", vec![])
            .await
            .expect("storage");
        assert_eq!(kept, json!(0), "the key outlived signing out");

        b.assert_no_console_errors(&[401]).await;
        b.quit().await;
    });
}

#[test]
fn an_admin_key_also_lists_tenants() {
    run(async {
        let (server, _data) = server();
        let Some(b) = browser("admin").await else {
            return;
        };
        // The key `Server::start` gives the admin (CROSSWALK_ADMIN_KEY).
        sign_in(&b, &server, "cw_e2e_admin").await;
        b.click("a[href='#/tenants']").await;
        b.wait_text("#tenants", "demo").await;
        b.fill("#tenant-name", "acme").await;
        b.click("#create-tenant").await;
        let shown = b.wait_text("#tenant-key", "cw_").await;
        let key = shown
            .split_whitespace()
            .find(|w| w.starts_with("cw_"))
            .expect("the new key")
            .trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .to_owned();
        b.wait_text("#tenants", "acme").await;
        // The key shown once works.
        let (status, _, body) = request(&server.addr, "GET", "/v1/key", &key, b"");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["role"], "tenant", "{body}");
        b.assert_no_console_errors(&[]).await;
        b.quit().await;
    });
}

#[test]
fn a_plugin_is_uploaded_and_bound() {
    let uom = support::rust_plugin("crosswalk-plugin-uom");
    run(async {
        let (server, _data) = server();
        let Some(b) = browser("plugin").await else {
            return;
        };
        let sap = server.sandbox("sap-s4hana");
        sign_in(&b, &server, &server.demo_key).await;
        b.find("#connections tr[data-connection]").await;
        b.open(&server, &format!("/console/#/connections/{sap}/plugins"))
            .await;

        // Upload through the file input (what a drop on the drop zone also sends).
        b.find("#plugin-file")
            .await
            .send_keys(&uom.display().to_string())
            .await
            .expect("choose the file");
        let row = b.find("#plugins tr[data-sha256]").await;
        let sha = row
            .attr("data-sha256")
            .await
            .expect("attr")
            .expect("a sha256");
        b.wait_text(&format!("#plugins tr[data-sha256='{sha}']"), "convert")
            .await;

        // Bind it to the purchase order mapping.
        b.choose("#bind-plugin", "uom").await;
        b.choose("#bind-entity", "Purchase orders").await;
        b.click("#bind").await;
        b.wait_text("#bindings", "uom").await;
        b.shot("bound").await;
        let (_, version, mapping) = request(
            &server.addr,
            "GET",
            &format!("/v1/connections/{sap}/mappings/purchase_order"),
            &server.demo_key,
            b"",
        );
        assert_eq!(version, Some(1), "{mapping}");
        assert_eq!(mapping["plugins"][0]["sha256"], json!(sha), "{mapping}");

        // A bound plugin cannot be deleted: the console shows the service's reason.
        b.click(&format!("#plugins tr[data-sha256='{sha}'] button.delete"))
            .await;
        b.wait_text("#plugins-error", "bound").await;

        b.assert_no_console_errors(&[409]).await;
        b.quit().await;
    });
}

#[test]
fn the_error_log_shows_a_connection_whose_transforms_failed() {
    run(async {
        let (server, _data) = server();
        let Some(b) = browser("errors").await else {
            return;
        };
        let sap = server.sandbox("sap-s4hana");
        // A date read from a field that holds none: every record fails that field.
        let (status, _, body) = request(
            &server.addr,
            "PUT",
            &format!("/v1/connections/{sap}/mappings/purchase_order"),
            &server.demo_key,
            json!({"overrides": [{"target": "order_date", "path": "$.PurchaseOrderType", "transforms": ["date"]}]})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(status, 200, "{body}");
        let (status, _, body) = request(
            &server.addr,
            "GET",
            &format!("/v1/connections/{sap}/purchase-orders?page_size=3"),
            &server.demo_key,
            b"",
        );
        assert_eq!(status, 200, "{body}");

        sign_in(&b, &server, &server.demo_key).await;
        b.find("#connections tr[data-connection]").await;
        b.open(&server, &format!("/console/#/connections/{sap}/health"))
            .await;
        b.find("#health-status").await;
        b.choose("#error-kind", "mapping").await;
        let row = b
            .wait_text("#errors tr[data-kind='mapping']", "order_date")
            .await;
        assert!(
            row.contains("transform `date`"),
            "the entry names the transform: {row}"
        );
        assert!(
            b.all("#errors tr[data-kind]:not([data-kind='mapping'])")
                .await
                .is_empty(),
            "the filter let other kinds through"
        );
        b.shot("error-log").await;

        b.assert_no_console_errors(&[]).await;
        b.quit().await;
    });
}

#[test]
fn the_console_is_usable_at_800_pixels() {
    run(async {
        let (server, _data) = server();
        let Some(b) = browser("narrow").await else {
            return;
        };
        b.client.set_window_size(800, 900).await.expect("resize");
        let sap = server.sandbox("sap-s4hana");
        sign_in(&b, &server, &server.demo_key).await;
        b.click(&format!("#connections tr[data-connection='{sap}'] a.open"))
            .await;
        b.find("#rules tr[data-target='vendor.name']").await;
        // Nothing wider than the window: no sideways scrolling of the page.
        let overflow = b
            .client
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                vec![],
            )
            .await
            .expect("widths");
        assert!(
            overflow.as_i64().is_some_and(|o| o <= 0),
            "the page is {overflow} px wider than an 800 px window"
        );
        // Every control can be reached with the keyboard: none is taken out of the
        // tab order.
        let unreachable = b
            .client
            .execute(
                "return [...document.querySelectorAll('button, a[href], input, select, textarea')].filter(e => e.tabIndex < 0 && !e.disabled && e.offsetParent !== null).map(e => e.outerHTML.slice(0, 80))",
                vec![],
            )
            .await
            .expect("controls");
        assert_eq!(unreachable, json!([]), "controls out of the tab order");
        b.shot("narrow").await;
        b.assert_no_console_errors(&[]).await;
        b.quit().await;
    });
}

/// The console's own response headers: a policy that allows this origin only, and no
/// inline script, on every file.
#[test]
fn console_files_carry_the_content_security_policy() {
    let (server, _data) = server();
    for path in ["/console/", "/console/app.js", "/console/style.css"] {
        let mut stream = std::net::TcpStream::connect(&server.addr).expect("connect");
        use std::io::{Read, Write};
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server.addr
        )
        .expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        let head = answer
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{path}: {head}");
        assert!(
            head.contains("content-security-policy: default-src 'none'; script-src 'self';"),
            "{path}: {head}"
        );
        assert!(!head.contains("unsafe-inline"), "{path}: {head}");
    }
}
