//! Headless Chromium driven over WebDriver, for `switchboard demo --screenshots` and the web
//! view's browser tests: starts `chromedriver` on a free loopback port and opens a session.
//!
//! Owns the browser process and its WebDriver session only; it knows nothing of the pages.
//! Only in builds with the `demo` feature.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};

/// Why no browser could be started.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// `chromedriver` was not found.
    #[error(
        "chromedriver was not found: install Debian's `chromium` and `chromium-driver` \
         packages, or set SWITCHBOARD_CHROMEDRIVER to its path"
    )]
    NoDriver,
    /// It could not be started or did not answer.
    #[error("chromedriver did not start: {0}")]
    Driver(String),
    /// The WebDriver session could not be opened.
    #[error("could not open a Chromium session: {0}")]
    Session(String),
}

/// A headless Chromium session, closed (and its driver stopped) by [`Browser::stop`] or on
/// drop.
pub struct Browser {
    client: Option<Client>,
    driver: Child,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").finish_non_exhaustive()
    }
}

/// Where `chromedriver` is: `SWITCHBOARD_CHROMEDRIVER`, else on `PATH`, else Debian's place.
pub fn driver_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SWITCHBOARD_CHROMEDRIVER") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromedriver"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let debian = PathBuf::from("/usr/bin/chromedriver");
        debian.is_file().then_some(debian)
    })
}

/// The Chromium binary: `SWITCHBOARD_CHROMIUM`, else Debian's, else the driver's own choice.
fn chromium_path() -> Option<String> {
    std::env::var("SWITCHBOARD_CHROMIUM").ok().or_else(|| {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file())
            .map(String::from)
    })
}

impl Browser {
    /// Starts chromedriver and a headless Chromium window of `width` × `height`.
    pub async fn start(width: u32, height: u32) -> Result<Browser, BrowserError> {
        let path = driver_path().ok_or(BrowserError::NoDriver)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| BrowserError::Driver(e.to_string()))?
            .port();
        let driver = Command::new(&path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| BrowserError::Driver(format!("{}: {e}", path.display())))?;
        let mut browser = Browser {
            client: None,
            driver,
        };
        let mut ready = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !ready {
            return Err(BrowserError::Driver(format!(
                "{} did not listen on port {port} within 10 s",
                path.display()
            )));
        }
        let mut options = serde_json::json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                format!("--window-size={width},{height}"),
            ]
        });
        if let Some(bin) = chromium_path() {
            options["binary"] = serde_json::Value::String(bin);
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "chrome".into());
        caps.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .map_err(|e| BrowserError::Session(e.to_string()))?;
        browser.client = Some(client);
        Ok(browser)
    }

    /// The WebDriver client.
    pub fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("a started browser has a session")
    }

    /// Closes the session and stops the driver.
    pub async fn stop(mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.close().await;
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
