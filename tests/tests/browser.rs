//! The demo in a real browser: headless Chromium driven over WebDriver.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without
//! them the test says plainly, past the harness's capture, that it was not run; with
//! `REQUIRE_BROWSER=1` (as CI sets) their absence is a failure instead.

use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use session_core::{Key, MemoryStore};

struct Driver(Child);

impl Drop for Driver {
    /// Kills chromedriver's whole process group, Chromium included, even when the test
    /// panicked before closing its session.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.0.id()))
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn find(program: &str, env: &str) -> Option<String> {
    if let Ok(p) = std::env::var(env) {
        return Some(p);
    }
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!path.is_empty()).then_some(path)
}

/// Starts the demo's two apps on free ports; returns their URLs.
async fn start_demo() -> (String, String) {
    let store = MemoryStore::default();
    let config = examples::demo::config(Key::generate());
    let axum_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let actix_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let axum_url = format!("http://{}/", axum_listener.local_addr().unwrap());
    let actix_url = format!("http://{}/", actix_listener.local_addr().unwrap());

    let app = examples::demo::axum_app(store.clone(), config.clone(), actix_url.clone());
    tokio::spawn(async move { axum::serve(axum_listener, app).await });

    let middleware = session_actix::SessionMiddleware::builder(store)
        .config(config)
        .build();
    let data = examples::demo::ActixInfo::new(axum_url.clone(), false);
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .app_data(data.clone())
                    .wrap(middleware.clone())
                    .configure(examples::demo::actix_routes)
            })
            .workers(1)
            .disable_signals()
            .listen(actix_listener)
            .unwrap()
            .run()
            .await
        })
    });
    (axum_url, actix_url)
}

async fn text(c: &Client, id: &str) -> String {
    c.find(Locator::Id(id)).await.unwrap().text().await.unwrap()
}

async fn session_cookie(c: &Client) -> Option<String> {
    c.get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.name() == "id")
        .map(|k| k.value().to_owned())
}

async fn submit(c: &Client, input: Option<(&str, &str)>, button: &str) {
    if let Some((id, value)) = input {
        c.find(Locator::Id(id))
            .await
            .unwrap()
            .send_keys(value)
            .await
            .unwrap();
    }
    // Mark this document, so the wait below ends on the next one, not on this one
    // (which has a `visits` element too).
    c.execute("window.beforeSubmit = true;", vec![])
        .await
        .unwrap();
    c.find(Locator::Id(button))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let replaced = c
            .execute("return window.beforeSubmit === undefined;", vec![])
            .await
            .is_ok_and(|v| v.as_bool() == Some(true));
        if replaced {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{button}: the page did not change"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    c.wait().for_element(Locator::Id("visits")).await.unwrap();
}

/// A Chromium of its own (its own profile, so its own cookie jar) driven by the
/// chromedriver at `webdriver`, with `user_agent` if given.
async fn browser(
    webdriver: &str,
    chromium: &str,
    profile: &std::path::Path,
    user_agent: Option<&str>,
) -> Client {
    let mut args = vec![
        "--headless".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--window-size=1000,1400".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    if let Some(agent) = user_agent {
        args.push(format!("--user-agent={agent}"));
    }
    let caps: fantoccini::wd::Capabilities = serde_json::from_value(serde_json::json!({
        "goog:chromeOptions": { "binary": chromium, "args": args }
    }))
    .unwrap();
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let started = Instant::now();
    loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(webdriver)
            .await
        {
            Ok(c) => break c,
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("chromedriver did not start a session: {e}"),
        }
    }
}

/// The rows of the "Your sessions" panel, as text.
async fn session_rows(c: &Client) -> Vec<String> {
    let mut rows = Vec::new();
    for row in c
        .find_all(Locator::Css("#sessions tr.session"))
        .await
        .unwrap()
    {
        rows.push(row.text().await.unwrap());
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_works_in_a_real_browser() {
    let required = std::env::var("REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let (Some(chromium), Some(chromedriver)) = (
        find("chromium", "CHROMIUM"),
        find("chromedriver", "CHROMEDRIVER"),
    ) else {
        assert!(
            !required,
            "REQUIRE_BROWSER=1 but chromium or chromedriver is missing"
        );
        let _ = std::io::stderr().write_all(
            b"browser test: chromium/chromedriver not installed, so the real-browser test was NOT run \
              (apt-get install chromium chromium-driver)\n",
        );
        return;
    };

    let port = free_port();
    let _driver = Driver(
        Command::new(&chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let webdriver = format!("http://127.0.0.1:{port}");
    let profile = std::env::temp_dir().join(format!("session-demo-chromium-{port}"));
    let c = browser(&webdriver, &chromium, &profile, None).await;

    let (axum_url, actix_url) = start_demo().await;

    // The counter survives reloads.
    c.goto(&axum_url).await.unwrap();
    assert_eq!(text(&c, "framework").await, "axum");
    assert_eq!(text(&c, "visits").await, "1");
    c.refresh().await.unwrap();
    c.refresh().await.unwrap();
    assert_eq!(text(&c, "visits").await, "3");

    // The session cookie is invisible to page scripts.
    let visible = c.execute("return document.cookie", vec![]).await.unwrap();
    assert!(
        !visible.as_str().unwrap_or_default().contains("id="),
        "{visible}"
    );
    let cookie = c.get_named_cookie("id").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));

    // A cart on axum is there on actix-web.
    submit(&c, Some(("item", "apple")), "add").await;
    assert!(text(&c, "cart").await.contains("apple"));
    c.find(Locator::Id("switch"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("framework"))
        .await
        .unwrap();
    assert_eq!(c.current_url().await.unwrap().as_str(), actix_url);
    assert_eq!(text(&c, "framework").await, "actix-web");
    assert!(text(&c, "cart").await.contains("apple"));
    assert_eq!(text(&c, "visits").await, "5");

    // Login changes the cookie's value and keeps the cart.
    let before = session_cookie(&c).await.unwrap();
    submit(&c, Some(("name", "Ada")), "login").await;
    let after = session_cookie(&c).await.unwrap();
    assert_ne!(before, after, "login cycles the id");
    assert_eq!(text(&c, "user").await, "Ada");
    assert!(text(&c, "cart").await.contains("apple"));
    let rows = session_rows(&c).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains("(this one)"), "{rows:?}");

    // A second browser (its own cookie jar, a phone's User-Agent) logs in as Ada too;
    // the first lists both, and logs the phone out.
    let phone_profile = std::env::temp_dir().join(format!("session-demo-phone-{port}"));
    let phone_agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) \
                       AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
    let phone = browser(&webdriver, &chromium, &phone_profile, Some(phone_agent)).await;
    phone.goto(&axum_url).await.unwrap();
    submit(&phone, Some(("name", "Ada")), "login").await;
    assert_eq!(text(&phone, "user").await, "Ada");
    assert_eq!(session_rows(&phone).await.len(), 2);
    c.refresh().await.unwrap();
    let rows = session_rows(&c).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].contains("(this one)"),
        "the current one first: {rows:?}"
    );
    assert!(rows[1].contains("Safari on iPhone"), "{rows:?}");
    let phone_sid = text(&phone, "sid").await;
    let phone_short = phone_sid.trim_end_matches('…');
    assert_eq!(phone_short.len(), 6, "{phone_sid}");
    assert!(rows[1].contains(phone_short), "{rows:?}");

    // One screenshot of the page, with both sessions listed, for the README.
    let png = c.screenshot().await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("demo.png"), &png).unwrap();
    if std::env::var("UPDATE_DOCS_SCREENSHOT").is_ok_and(|v| v == "1") {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/demo.png");
        std::fs::write(docs, &png).unwrap();
    }
    assert!(png.starts_with(b"\x89PNG"));

    submit(&c, None, "logout-others").await;
    let rows = session_rows(&c).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        text(&c, "user").await,
        "Ada",
        "this browser stays logged in"
    );
    phone.refresh().await.unwrap();
    assert!(
        phone.find(Locator::Id("user")).await.is_err(),
        "the phone is logged out"
    );
    assert!(phone.find(Locator::Id("sessions")).await.is_err());
    phone.close().await.unwrap();
    let _ = std::fs::remove_dir_all(phone_profile);

    // Logout empties it, on the other app too.
    submit(&c, None, "logout").await;
    assert!(text(&c, "cart").await.contains("empty"));
    c.goto(&axum_url).await.unwrap();
    assert!(text(&c, "cart").await.contains("empty"));
    assert!(c.find(Locator::Id("user")).await.is_err(), "logged out");

    // A tampered cookie set from the test gives a fresh session.
    submit(&c, Some(("item", "pear")), "add").await;
    let good = session_cookie(&c).await.unwrap();
    let forged = format!("{}x", &good[..good.len() - 1]);
    c.delete_cookie("id").await.unwrap();
    let plant = format!("document.cookie = 'id={forged}; path=/'");
    c.execute(&plant, vec![]).await.unwrap();
    assert_eq!(session_cookie(&c).await.as_deref(), Some(forged.as_str()));
    c.goto(&axum_url).await.unwrap();
    assert_eq!(text(&c, "visits").await, "1", "a fresh session");
    assert!(text(&c, "cart").await.contains("empty"));

    c.close().await.unwrap();
    let _ = std::fs::remove_dir_all(profile);
}
