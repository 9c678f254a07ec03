//! Headless Chromium for tests of the hub's web pages (`/store`, `/hq`).
//!
//! [`Browser::start`] runs its own `chromedriver` on a free port, which starts Debian's
//! Chromium headless with a fresh profile in a temporary directory; both are installed by
//! `scripts/browser.sh` (the test command runs it). Paths can be overridden with the
//! environment variables `CHROMEDRIVER` and `CHROMIUM`. Each browser is independent, so
//! tests may start several at once, in one process or many.
//!
//! Pages are driven by CSS selectors. Every wait polls the page (every 50 ms) up to a
//! bound and, when the bound runs out, fails with the selector, the text looked for, the
//! page's URL and the start of its text, so a failing test says what the page showed.
//!
//! ```ignore
//! let browser = Browser::start().await?;
//! browser.set_size(TABLET.0, TABLET.1).await?;
//! browser.goto(&format!("{}/store", hub.base)).await?;
//! browser.click("button.accept").await?;
//! browser.wait_text("#status", "accepted", Duration::from_secs(5)).await?;
//! browser.screenshot("store-accepted").await?;
//! browser.close().await?;
//! ```
//!
//! Dropping a [`Browser`] kills chromedriver and Chromium (the whole process group) and
//! removes the temporary directory; [`Browser::close`] first ends the session properly.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fantoccini::elements::Element;
use fantoccini::error::{CmdError, ErrorStatus, NewSessionError};
use fantoccini::{Client, ClientBuilder, Locator};
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

use crate::harness;

/// A tablet in landscape, the stores' console: 1024×768.
pub const TABLET: (u32, u32) = (1024, 768);

/// A desktop screen, HQ's dashboard: 1440×900.
pub const DESKTOP: (u32, u32) = (1440, 900);

/// Where `scripts/browser.sh` installs chromedriver (override: `CHROMEDRIVER`).
pub const DEFAULT_CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Where `scripts/browser.sh` installs Chromium (override: `CHROMIUM`).
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// How long [`Browser::find`] and the actions built on it wait for their element, unless
/// changed with [`Browser::set_wait`]: the harness's [`harness::WAIT`].
pub const WAIT: Duration = harness::WAIT;

/// How often waits look at the page again.
const POLL: Duration = Duration::from_millis(50);

/// How long chromedriver may take to answer `/status` with `ready`.
const DRIVER_READY: Duration = Duration::from_secs(20);

/// How long chromedriver may take to start Chromium and open the session.
const SESSION_START: Duration = Duration::from_secs(60);

/// How long ending the session (Chromium quitting) may take before the processes are killed.
const SESSION_END: Duration = Duration::from_secs(10);

/// How many times a chromedriver that exits at once is started again on another port (the
/// free port found may be taken by another test before chromedriver binds it).
const DRIVER_ATTEMPTS: usize = 3;

/// How many of chromedriver's (and Chromium's) last output lines an error quotes.
const OUTPUT_LINES: usize = 30;

/// How much of the page's text a failed wait quotes.
const BODY_SNIPPET: usize = 600;

/// Chromium's switches: headless, and nothing that reaches out to Google's services (this
/// machine's closed network refuses those connections, many at a time).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
];

/// What went wrong driving the browser, and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// No chromedriver executable.
    #[error(
        "chromedriver not found at {}; run scripts/browser.sh (or set CHROMEDRIVER)",
        path.display()
    )]
    DriverMissing { path: PathBuf },
    /// No Chromium executable.
    #[error("chromium not found at {}; run scripts/browser.sh (or set CHROMIUM)", path.display())]
    ChromiumMissing { path: PathBuf },
    /// The temporary directory (profile, TMPDIR) could not be made.
    #[error("cannot create the browser's temporary directory under {}: {source}", path.display())]
    TempDir { path: PathBuf, source: io::Error },
    /// No free port to run chromedriver on.
    #[error("cannot find a free port on 127.0.0.1 for chromedriver: {0}")]
    Port(io::Error),
    /// chromedriver could not be started.
    #[error("cannot start chromedriver {}: {source}", path.display())]
    Spawn { path: PathBuf, source: io::Error },
    /// chromedriver exited before answering `/status`.
    #[error("chromedriver exited before it was ready ({status}); its output:\n{output}")]
    DriverExited { status: String, output: String },
    /// chromedriver ran but never said it was ready.
    #[error(
        "chromedriver on port {port} not ready after {waited:?} (GET /status: {last}); its output:\n{output}"
    )]
    DriverNotReady {
        port: u16,
        waited: Duration,
        last: String,
        output: String,
    },
    /// The WebDriver client's HTTP stack could not be set up.
    #[error(
        "cannot set up the WebDriver client (rustls with the system's root certificates; is ca-certificates installed?): {0}"
    )]
    Tls(io::Error),
    /// chromedriver could not start Chromium or open the session.
    #[error(
        "cannot open a session in {} through chromedriver: {message}; chromedriver's and chromium's output:\n{output}",
        chromium.display()
    )]
    Session {
        chromium: PathBuf,
        message: String,
        output: String,
    },
    /// A WebDriver command failed.
    #[error("{action}: {source}")]
    Command {
        action: String,
        source: Box<CmdError>,
    },
    /// A wait ran out.
    #[error("timed out after {waited:?} waiting for {what}\n  page: {url}\n  text: {body}")]
    Timeout {
        what: String,
        waited: Duration,
        url: String,
        body: String,
    },
    /// The window could not give the page the viewport asked for.
    #[error(
        "cannot make the page's viewport {width}×{height}: it is {got_width}×{got_height} (Chromium's windows are at least about 500 px wide)"
    )]
    WindowSize {
        width: u32,
        height: u32,
        got_width: u64,
        got_height: u64,
    },
    /// A script or a page answered something of the wrong shape.
    #[error("{action}: unexpected answer {value}")]
    Unexpected { action: String, value: Value },
    /// A screenshot name that is not a plain file name.
    #[error("screenshot name {0:?} is not a file name: use letters, digits, '-', '_' and '.'")]
    ScreenshotName(String),
    /// A screenshot could not be written.
    #[error("cannot write screenshot {}: {source}", path.display())]
    ScreenshotWrite { path: PathBuf, source: io::Error },
}

impl BrowserError {
    fn command(action: impl Into<String>, source: CmdError) -> BrowserError {
        BrowserError::Command {
            action: action.into(),
            source: Box::new(source),
        }
    }
}

/// A headless Chromium with its own chromedriver and its own temporary profile.
pub struct Browser {
    // Fields drop in this order: the session handle, then the processes, then the files.
    client: Client,
    driver: Driver,
    scratch: Scratch,
    wait: Duration,
    chromium_pid: Option<u32>,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("chromedriver_port", &self.driver.port)
            .field("chromium_pid", &self.chromium_pid)
            .field("temp_dir", &self.scratch.root)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts chromedriver on a free port and opens a session in a new headless Chromium
    /// with a fresh profile. Needs a Tokio runtime (chromedriver's output is read by tasks).
    pub async fn start() -> Result<Browser, BrowserError> {
        let driver_path = env_path("CHROMEDRIVER", DEFAULT_CHROMEDRIVER);
        let chromium = env_path("CHROMIUM", DEFAULT_CHROMIUM);
        if !driver_path.is_file() {
            return Err(BrowserError::DriverMissing { path: driver_path });
        }
        if !chromium.is_file() {
            return Err(BrowserError::ChromiumMissing { path: chromium });
        }
        let scratch = Scratch::create()?;
        let driver = Driver::start(&driver_path, &scratch).await?;

        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", scratch.profile().display()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": chromium.to_string_lossy(), "args": args }),
        );
        let mut builder = ClientBuilder::rustls().map_err(BrowserError::Tls)?;
        builder.capabilities(capabilities);
        let session_error = |message: String| BrowserError::Session {
            chromium: chromium.clone(),
            message,
            output: driver.output.text(),
        };
        let client = match tokio::time::timeout(SESSION_START, builder.connect(&driver.url())).await
        {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => return Err(session_error(describe_session_error(&error))),
            Err(_) => {
                return Err(session_error(format!("no session after {SESSION_START:?}")));
            }
        };
        let chromium_pid = client
            .capabilities()
            .and_then(|c| c.get("goog:processID"))
            .and_then(Value::as_u64)
            .and_then(|pid| u32::try_from(pid).ok());
        tracing::info!(
            port = driver.port,
            chromium_pid,
            temp_dir = %scratch.root.display(),
            "browser started"
        );
        Ok(Browser {
            client,
            driver,
            scratch,
            wait: WAIT,
            chromium_pid,
        })
    }

    /// Ends the session (Chromium exits), stops chromedriver and removes the temporary
    /// directory. Dropping the browser does the same without ending the session first: the
    /// processes are killed.
    pub async fn close(self) -> Result<(), BrowserError> {
        let Browser {
            client,
            mut driver,
            mut scratch,
            ..
        } = self;
        let ended = tokio::time::timeout(SESSION_END, client.close()).await;
        driver.stop().await;
        scratch.remove_waiting().await;
        tracing::info!(port = driver.port, "browser closed");
        match ended {
            Ok(ended) => ended.map_err(|e| BrowserError::command("close the session", e)),
            Err(_) => Err(BrowserError::Unexpected {
                action: format!("close the session: no answer after {SESSION_END:?}"),
                value: Value::Null,
            }),
        }
    }

    /// The WebDriver client, for anything this type does not offer.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Chromium's browser process, as chromedriver reported it.
    pub fn chromium_pid(&self) -> Option<u32> {
        self.chromium_pid
    }

    /// This browser's temporary directory (its profile and Chromium's TMPDIR), removed
    /// when the browser is closed or dropped.
    pub fn temp_dir(&self) -> &Path {
        &self.scratch.root
    }

    /// Changes how long [`find`](Self::find), [`click`](Self::click),
    /// [`fill`](Self::fill), [`select`](Self::select) and [`text`](Self::text) wait
    /// for their element (default [`WAIT`]).
    pub fn set_wait(&mut self, wait: Duration) {
        self.wait = wait;
    }

    /// Sizes the window so that the page's viewport, and so a screenshot, is exactly
    /// `width`×`height` CSS pixels (the window rect is adjusted for the browser's own
    /// frame). See [`TABLET`] and [`DESKTOP`].
    pub async fn set_size(&self, width: u32, height: u32) -> Result<(), BrowserError> {
        let (mut window_width, mut window_height) = (width, height);
        let mut got = (0, 0);
        for _ in 0..3 {
            self.client
                .set_window_rect(0, 0, window_width, window_height)
                .await
                .map_err(|e| {
                    BrowserError::command(
                        format!("set the window rect to {window_width}×{window_height}"),
                        e,
                    )
                })?;
            got = self.viewport().await?;
            if got == (u64::from(width), u64::from(height)) {
                return Ok(());
            }
            // The frame's size is what the window has beyond the viewport.
            window_width = adjust(window_width, width, got.0);
            window_height = adjust(window_height, height, got.1);
        }
        Err(BrowserError::WindowSize {
            width,
            height,
            got_width: got.0,
            got_height: got.1,
        })
    }

    /// The page's viewport (`innerWidth`, `innerHeight`) in CSS pixels.
    pub async fn viewport(&self) -> Result<(u64, u64), BrowserError> {
        let value = self
            .eval("return [window.innerWidth, window.innerHeight];")
            .await?;
        match (
            value.get(0).and_then(Value::as_u64),
            value.get(1).and_then(Value::as_u64),
        ) {
            (Some(width), Some(height)) => Ok((width, height)),
            _ => Err(BrowserError::Unexpected {
                action: "read the viewport's size".to_owned(),
                value,
            }),
        }
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) -> Result<(), BrowserError> {
        self.client
            .goto(url)
            .await
            .map_err(|e| BrowserError::command(format!("go to {url}"), e))
    }

    /// The page's URL now.
    pub async fn url(&self) -> Result<String, BrowserError> {
        self.client
            .current_url()
            .await
            .map(|url| url.to_string())
            .map_err(|e| BrowserError::command("read the current URL", e))
    }

    /// The first element matching `css` that is displayed, waiting for one up to the
    /// browser's wait ([`set_wait`](Self::set_wait)).
    pub async fn find(&self, css: &str) -> Result<Element, BrowserError> {
        self.find_within(css, self.wait).await
    }

    /// [`find`](Self::find) with its own bound.
    pub async fn find_within(&self, css: &str, timeout: Duration) -> Result<Element, BrowserError> {
        let started = Instant::now();
        loop {
            let elements = self
                .client
                .find_all(Locator::Css(css))
                .await
                .map_err(|e| BrowserError::command(format!("find {css:?}"), e))?;
            for element in elements {
                match element.is_displayed().await {
                    Ok(true) => return Ok(element),
                    Ok(false) => {}
                    // Replaced between the search and the question: search again.
                    Err(e) if e.is_stale_element_reference() => {}
                    Err(e) => return Err(BrowserError::command(format!("find {css:?}"), e)),
                }
            }
            if started.elapsed() >= timeout {
                return Err(self
                    .timeout(format!("a displayed element {css:?}"), timeout)
                    .await);
            }
            sleep(POLL).await;
        }
    }

    /// Waits until an element matching `css` is displayed with text (as rendered,
    /// `innerText`) containing `needle`, and returns that element's text.
    pub async fn wait_text(
        &self,
        css: &str,
        needle: &str,
        timeout: Duration,
    ) -> Result<String, BrowserError> {
        let started = Instant::now();
        loop {
            let texts = self.visible_texts(css).await?;
            if let Some(text) = texts.into_iter().find(|text| text.contains(needle)) {
                return Ok(text);
            }
            if started.elapsed() >= timeout {
                return Err(self
                    .timeout(format!("text {needle:?} in an element {css:?}"), timeout)
                    .await);
            }
            sleep(POLL).await;
        }
    }

    /// Waits until no element matching `css` is displayed (removed or hidden).
    pub async fn wait_gone(&self, css: &str, timeout: Duration) -> Result<(), BrowserError> {
        let started = Instant::now();
        loop {
            if self.visible_texts(css).await?.is_empty() {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(self
                    .timeout(format!("no displayed element {css:?}"), timeout)
                    .await);
            }
            sleep(POLL).await;
        }
    }

    /// Clicks the element matching `css` once it is displayed; while something covers it
    /// or it cannot be clicked yet, tries again up to the browser's wait.
    pub async fn click(&self, css: &str) -> Result<(), BrowserError> {
        let started = Instant::now();
        loop {
            let element = self.find_within(css, self.wait).await?;
            match element.click().await {
                Ok(()) => return Ok(()),
                Err(e) if is_retryable_click(&e) && started.elapsed() < self.wait => {
                    tracing::debug!(css, error = %e, "click refused, trying again");
                    sleep(POLL).await;
                }
                Err(e) => return Err(BrowserError::command(format!("click {css:?}"), e)),
            }
        }
    }

    /// Empties the field matching `css` and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) -> Result<(), BrowserError> {
        let element = self.find(css).await?;
        element
            .clear()
            .await
            .map_err(|e| BrowserError::command(format!("clear {css:?}"), e))?;
        element
            .send_keys(text)
            .await
            .map_err(|e| BrowserError::command(format!("type {text:?} into {css:?}"), e))
    }

    /// Chooses the option whose `value` is `value` in the `<select>` matching `css` (as a
    /// user would: `input` and `change` fire).
    pub async fn select(&self, css: &str, value: &str) -> Result<(), BrowserError> {
        let element = self.find(css).await?;
        let options = element
            .find_all(Locator::Css("option"))
            .await
            .map_err(|e| BrowserError::command(format!("list the options of {css:?}"), e))?;
        let mut values = Vec::new();
        for option in options {
            let option_value = option.prop("value").await.map_err(|e| {
                BrowserError::command(format!("read an option's value in {css:?}"), e)
            })?;
            if option_value.as_deref() == Some(value) {
                return option
                    .click()
                    .await
                    .map_err(|e| BrowserError::command(format!("choose {value:?} in {css:?}"), e));
            }
            values.extend(option_value);
        }
        Err(BrowserError::Unexpected {
            action: format!("choose {value:?} in {css:?}: no such option"),
            value: json!({ "options": values }),
        })
    }

    /// Runs `js` in the page as the body of a function (`return document.title;`) and
    /// returns what it returned.
    pub async fn eval(&self, js: &str) -> Result<Value, BrowserError> {
        self.eval_with(js, Vec::new()).await
    }

    /// [`eval`](Self::eval) with arguments, which the script reads as `arguments[i]`.
    pub async fn eval_with(&self, js: &str, args: Vec<Value>) -> Result<Value, BrowserError> {
        self.client
            .execute(js, args)
            .await
            .map_err(|e| BrowserError::command(format!("run script {}", snippet(js, 120)), e))
    }

    /// The rendered text of the first displayed element matching `css` (waits for it).
    pub async fn text(&self, css: &str) -> Result<String, BrowserError> {
        self.find(css)
            .await?
            .text()
            .await
            .map_err(|e| BrowserError::command(format!("read the text of {css:?}"), e))
    }

    /// How many elements match `css` now, displayed or not (no waiting).
    pub async fn count(&self, css: &str) -> Result<usize, BrowserError> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|elements| elements.len())
            .map_err(|e| BrowserError::command(format!("find {css:?}"), e))
    }

    /// Saves what the window shows now (the viewport, at the size it has) as
    /// `screenshots/<name>.png` under the repository root, and returns the file's path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf, BrowserError> {
        let valid = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(BrowserError::ScreenshotName(name.to_owned()));
        }
        let png = self
            .client
            .screenshot()
            .await
            .map_err(|e| BrowserError::command(format!("take screenshot {name:?}"), e))?;
        let root = harness::repo_root();
        let root = root.canonicalize().unwrap_or(root);
        let dir = root.join("screenshots");
        let file = if name.ends_with(".png") {
            name.to_owned()
        } else {
            format!("{name}.png")
        };
        let path = dir.join(file);
        let write = async {
            tokio::fs::create_dir_all(&dir).await?;
            tokio::fs::write(&path, &png).await
        };
        write
            .await
            .map_err(|source| BrowserError::ScreenshotWrite {
                path: path.clone(),
                source,
            })?;
        tracing::info!(path = %path.display(), bytes = png.len(), "screenshot");
        Ok(path)
    }

    /// The rendered text of every displayed element matching `css`.
    async fn visible_texts(&self, css: &str) -> Result<Vec<String>, BrowserError> {
        const SCRIPT: &str = "return Array.from(document.querySelectorAll(arguments[0])) \
             .filter(e => e.checkVisibility({ visibilityProperty: true })) \
             .map(e => e.innerText ?? e.textContent ?? '');";
        let value = self
            .client
            .execute(SCRIPT, vec![Value::from(css)])
            .await
            .map_err(|e| BrowserError::command(format!("find {css:?}"), e))?;
        match value {
            Value::Array(items) => Ok(items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) => text,
                    other => other.to_string(),
                })
                .collect()),
            value => Err(BrowserError::Unexpected {
                action: format!("read the texts of {css:?}"),
                value,
            }),
        }
    }

    /// A wait's failure, with where the page is and what it shows.
    async fn timeout(&self, what: String, waited: Duration) -> BrowserError {
        let url = match self.client.current_url().await {
            Ok(url) => url.to_string(),
            Err(e) => format!("(unknown: {e})"),
        };
        let body = match self
            .client
            .execute(
                "return document.body ? document.body.innerText : document.documentElement.outerHTML;",
                Vec::new(),
            )
            .await
        {
            Ok(Value::String(text)) => snippet(&text, BODY_SNIPPET),
            Ok(other) => snippet(&other.to_string(), BODY_SNIPPET),
            Err(e) => format!("(unknown: {e})"),
        };
        BrowserError::Timeout {
            what,
            waited,
            url,
            body,
        }
    }
}

/// The next window size to try so that the viewport becomes `want`.
fn adjust(window: u32, want: u32, got: u64) -> u32 {
    let next = i64::from(window) + i64::from(want) - i64::try_from(got).unwrap_or(i64::MAX);
    u32::try_from(next.max(1)).unwrap_or(u32::MAX)
}

/// Clicks that may succeed a moment later: something covers the element (an animation, an
/// overlay going away), or it is not interactable yet, or it was replaced.
fn is_retryable_click(error: &CmdError) -> bool {
    matches!(
        error,
        CmdError::Standard(e) if matches!(
            e.error,
            ErrorStatus::ElementClickIntercepted
                | ErrorStatus::ElementNotInteractable
                | ErrorStatus::StaleElementReference
        )
    )
}

fn describe_session_error(error: &NewSessionError) -> String {
    match error {
        NewSessionError::SessionNotCreated(e) => format!("session not created: {}", e.message),
        other => other.to_string(),
    }
}

/// `text` on one line, cut to about `max` characters.
fn snippet(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None if flat.is_empty() => "(empty)".to_owned(),
        None => flat,
    }
}

fn env_path(var: &str, default: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(value) if !value.is_empty() => PathBuf::from(value),
        _ => PathBuf::from(default),
    }
}

/// A running chromedriver, leader of its own process group, which Chromium and its helpers
/// join: killing the group leaves nothing behind (Chromium outlives a killed chromedriver).
struct Driver {
    child: Child,
    group: Option<Pid>,
    port: u16,
    output: Output,
    readers: Vec<JoinHandle<()>>,
}

impl Driver {
    async fn start(path: &Path, scratch: &Scratch) -> Result<Driver, BrowserError> {
        let mut attempt = 1;
        loop {
            let port = free_port()?;
            let mut driver = Driver::spawn(path, port, scratch)?;
            match driver.wait_ready().await {
                Ok(()) => return Ok(driver),
                Err(BrowserError::DriverExited { status, output }) if attempt < DRIVER_ATTEMPTS => {
                    tracing::warn!(port, %status, %output, "chromedriver exited at once; trying another port");
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn spawn(path: &Path, port: u16, scratch: &Scratch) -> Result<Driver, BrowserError> {
        let mut command = Command::new(path);
        command
            .arg(format!("--port={port}"))
            // Chromium's scratch files (shared memory with --disable-dev-shm-usage, its
            // scoped dirs) go to the browser's own directory, removed with it.
            .env("TMPDIR", scratch.tmp())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| BrowserError::Spawn {
            path: path.to_owned(),
            source,
        })?;
        let group = child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .map(Pid::from_raw);
        let output = Output::default();
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(output.read(stdout, port));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(output.read(stderr, port));
        }
        Ok(Driver {
            child,
            group,
            port,
            output,
            readers,
        })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Polls `/status` until chromedriver says it is ready for new sessions.
    async fn wait_ready(&mut self) -> Result<(), BrowserError> {
        let status_url = format!("{}/status", self.url());
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    // Its pipes are closed: let the readers take the last lines.
                    for reader in self.readers.drain(..) {
                        let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
                    }
                    return Err(BrowserError::DriverExited {
                        status: status.to_string(),
                        output: self.output.text(),
                    });
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "cannot check chromedriver's process"),
            }
            let answer = http
                .get(&status_url)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            let last = match answer {
                Ok(response) => match response.json::<Value>().await {
                    Ok(body) if body["value"]["ready"] == Value::Bool(true) => return Ok(()),
                    Ok(body) => body.to_string(),
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            if started.elapsed() >= DRIVER_READY {
                return Err(BrowserError::DriverNotReady {
                    port: self.port,
                    waited: DRIVER_READY,
                    last,
                    output: self.output.text(),
                });
            }
            sleep(POLL).await;
        }
    }

    /// Kills chromedriver and everything in its process group (Chromium and its helpers).
    fn kill(&mut self) {
        if let Some(group) = self.group.take() {
            match killpg(group, Signal::SIGKILL) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => {
                    tracing::warn!(%group, error = %e, "cannot kill chromedriver's process group")
                }
            }
        }
        // Also when the group was unknown; harmless when already dead.
        let _ = self.child.start_kill();
    }

    /// Kills the processes and waits for chromedriver's exit.
    async fn stop(&mut self) {
        self.kill();
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                port = self.port,
                "chromedriver still running 5 s after SIGKILL"
            );
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.kill();
    }
}

/// chromedriver's and Chromium's last lines of output, for errors; each line is also logged.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<VecDeque<String>>>);

impl Output {
    fn read(&self, pipe: impl AsyncRead + Unpin + Send + 'static, port: u16) -> JoinHandle<()> {
        let output = self.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(target: "chromedriver", port, "{line}");
                let mut kept = output.0.lock().unwrap_or_else(PoisonError::into_inner);
                if kept.len() == OUTPUT_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        })
    }

    fn text(&self) -> String {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.is_empty() {
            "(none)".to_owned()
        } else {
            kept.iter().map(|line| format!("  {line}\n")).collect()
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16, BrowserError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(BrowserError::Port)
}

/// The browser's temporary directory: `profile/` (Chromium's user data dir) and `tmp/`
/// (TMPDIR of chromedriver and Chromium). Removed on drop.
struct Scratch {
    root: PathBuf,
    removed: bool,
}

impl Scratch {
    fn create() -> Result<Scratch, BrowserError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        let error = |source| BrowserError::TempDir {
            path: base.clone(),
            source,
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default();
            let root = base.join(format!(
                "crossdock-browser-{}-{}-{nanos:08x}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            match std::fs::create_dir(&root) {
                Ok(()) => {
                    let scratch = Scratch {
                        root,
                        removed: false,
                    };
                    std::fs::create_dir(scratch.profile()).map_err(error)?;
                    std::fs::create_dir(scratch.tmp()).map_err(error)?;
                    return Ok(scratch);
                }
                // Left by an earlier process of the same pid: take the next name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => {}
                Err(e) => return Err(error(e)),
            }
        }
    }

    fn profile(&self) -> PathBuf {
        self.root.join("profile")
    }

    fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn try_remove(&mut self) -> io::Result<()> {
        if self.removed {
            return Ok(());
        }
        match std::fs::remove_dir_all(&self.root) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.removed = true;
        Ok(())
    }

    /// Removes the directory, trying again while the killed processes' last writes land.
    async fn remove_waiting(&mut self) {
        let started = Instant::now();
        loop {
            match self.try_remove() {
                Ok(()) => return,
                Err(e) if started.elapsed() >= Duration::from_secs(5) => {
                    tracing::warn!(dir = %self.root.display(), error = %e, "cannot remove the browser's temporary directory");
                    return;
                }
                Err(_) => sleep(POLL).await,
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Processes killed a moment ago may still write (a dying renderer): a few tries.
        for attempt in 0..10 {
            match self.try_remove() {
                Ok(()) => return,
                Err(e) if attempt == 9 => {
                    tracing::warn!(dir = %self.root.display(), error = %e, "cannot remove the browser's temporary directory");
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}
