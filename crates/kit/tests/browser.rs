//! Tests of the browser harness (`crossdock_kit::browser`) and the dropping proxy
//! (`crossdock_kit::proxy`) against small pages served here with axum: a real headless
//! Chromium (installed by `scripts/browser.sh`) fills, selects, clicks, waits and takes
//! screenshots; an event stream through the proxy drops on a cut and comes back after a
//! restore; several browsers run at once, each cleaned up after.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use crossdock_kit::browser::{Browser, BrowserError, DESKTOP, TABLET};
use crossdock_kit::proxy::Proxy;
use futures::Stream;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bound of waits that should succeed quickly; failures are reported by the harness.
const SOON: Duration = Duration::from_secs(10);

const ORDERS_PAGE: &str = r#"<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <title>Kit page</title>
  <style>
    body { font-family: sans-serif; margin: 0; padding: 16px; background: #fff; }
    #toast { background: #222; color: #fff; padding: 4px; }
  </style>
</head>
<body>
  <h1>Orders</h1>
  <input id="dish" placeholder="dish">
  <select id="size">
    <option value="small">Small</option>
    <option value="large">Large</option>
  </select>
  <button id="add">Add</button>
  <div id="toast" hidden>Added</div>
  <ul id="list"></ul>
  <p id="later"></p>
  <script>
    let added = 0;
    document.getElementById('add').addEventListener('click', () => {
      added += 1;
      const li = document.createElement('li');
      li.textContent = added + ': ' + document.getElementById('dish').value
        + ' (' + document.getElementById('size').value + ')';
      document.getElementById('list').appendChild(li);
      const toast = document.getElementById('toast');
      toast.hidden = false;
      clearTimeout(window.toastTimer);
      window.toastTimer = setTimeout(() => { toast.hidden = true; }, 1500);
    });
    document.getElementById('size').addEventListener('change', (e) => {
      document.body.dataset.size = e.target.value;
    });
    setTimeout(() => {
      document.getElementById('later').textContent = 'arrived late';
    }, 400);
  </script>
</body>
</html>
"#;

/// The page reads `/events` and, whenever the stream fails, opens it again 100 ms later
/// (its own retry, not EventSource's).
const STREAM_PAGE: &str = r#"<!doctype html>
<html>
<head><meta charset="utf-8"><title>Stream page</title></head>
<body>
  <p id="state">connecting</p>
  <p id="tick"></p>
  <script>
    let opens = 0;
    function connect() {
      const events = new EventSource('/events');
      events.onopen = () => {
        opens += 1;
        document.getElementById('state').textContent = 'open ' + opens;
      };
      events.onmessage = (e) => {
        document.getElementById('tick').textContent = 'tick ' + e.data + ' on ' + opens;
      };
      events.onerror = () => {
        events.close();
        document.getElementById('state').textContent = 'down';
        setTimeout(connect, 100);
      };
    }
    connect();
  </script>
</body>
</html>
"#;

async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the test server");
    let addr = listener.local_addr().expect("the test server's address");
    tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("the test server stopped");
    });
    addr
}

async fn orders_server() -> SocketAddr {
    serve(Router::new().route("/", get(|| async { Html(ORDERS_PAGE) }))).await
}

/// A stream of one numbered message every 100 ms; `opened` counts the streams started.
async fn events(State(opened): State<Arc<AtomicUsize>>) -> impl IntoResponse {
    opened.fetch_add(1, Ordering::SeqCst);
    let ticks: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> =
        Box::pin(futures::stream::unfold(
            (0_u64, tokio::time::interval(Duration::from_millis(100))),
            |(n, mut every)| async move {
                // The stream's pace: the first tick is at once.
                every.tick().await;
                Some((Ok(Event::default().data(n.to_string())), (n + 1, every)))
            },
        ));
    Sse::new(ticks)
}

/// Checks the PNG at `path`: signature, and the IHDR's width and height.
fn assert_png(path: &Path, (width, height): (u32, u32)) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        bytes.len() > 24,
        "{} is too short for a PNG",
        path.display()
    );
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} has no PNG signature",
        path.display()
    );
    assert_eq!(
        &bytes[12..16],
        b"IHDR",
        "{}: first chunk is not IHDR",
        path.display()
    );
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    assert_eq!(
        (be(16), be(20)),
        (width, height),
        "{}: size of the image",
        path.display()
    );
}

/// Processes whose command line names `dir` (Chromium's browser process has its
/// `--user-data-dir` in it).
fn processes_using(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(&needle)
                .then_some(pid)
        })
        .collect()
}

/// Waits until no process names `dir` any more and the directory is gone.
async fn assert_cleaned_up(dir: &Path) {
    crossdock_kit::wait_for(
        &format!("the processes of {} to end", dir.display()),
        SOON,
        || async { processes_using(dir).is_empty().then_some(()) },
    )
    .await;
    assert!(!dir.exists(), "{} still exists", dir.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn drives_a_page_and_takes_screenshots() {
    let addr = orders_server().await;
    let url = format!("http://{addr}/");
    let browser = Browser::start().await.expect("start the browser");
    let dir = browser.temp_dir().to_owned();
    assert!(
        !processes_using(&dir).is_empty(),
        "no Chromium runs with the profile in {}",
        dir.display()
    );

    browser.goto(&url).await.expect("open the page");
    assert_eq!(browser.url().await.expect("url"), url);
    assert_eq!(browser.text("h1").await.expect("heading"), "Orders");

    // fill empties the field first.
    browser.fill("#dish", "Pad thai").await.expect("fill");
    browser
        .fill("#dish", "Green curry")
        .await
        .expect("fill again");
    assert_eq!(
        browser
            .eval("return document.getElementById('dish').value;")
            .await
            .expect("eval"),
        json!("Green curry")
    );

    // select chooses like a user: the change handler runs.
    browser.select("#size", "large").await.expect("select");
    assert_eq!(
        browser
            .eval("return [document.getElementById('size').value, document.body.dataset.size];")
            .await
            .expect("eval"),
        json!(["large", "large"])
    );

    browser.click("#add").await.expect("click");
    let text = browser
        .wait_text("#list li", "Green curry", SOON)
        .await
        .expect("the first item");
    assert_eq!(text, "1: Green curry (large)");

    // The toast shows for 1.5 s after a click: displayed now, then gone.
    browser
        .find_within("#toast", Duration::from_secs(1))
        .await
        .expect("the toast shows");
    browser
        .wait_gone("#toast", SOON)
        .await
        .expect("the toast goes");
    assert_eq!(
        browser
            .eval("return document.getElementById('toast').hidden;")
            .await
            .expect("eval"),
        json!(true),
        "wait_gone returned before the toast was hidden"
    );

    // Text that appears later is waited for.
    assert_eq!(
        browser
            .wait_text("#later", "late", SOON)
            .await
            .expect("late text"),
        "arrived late"
    );

    browser.fill("#dish", "Pho").await.expect("fill");
    browser.select("#size", "small").await.expect("select");
    browser.click("#add").await.expect("click");
    browser
        .wait_text("#list li", "2: Pho (small)", SOON)
        .await
        .expect("the second item");
    assert_eq!(browser.count("#list li").await.expect("count"), 2);
    assert_eq!(browser.count("#nothing-here").await.expect("count"), 0);
    assert_eq!(
        browser
            .eval(
                "return { items: document.querySelectorAll('#list li').length, \
                 title: document.title };"
            )
            .await
            .expect("eval"),
        json!({ "items": 2, "title": "Kit page" })
    );

    // Failed waits say what was looked for, where, and what the page showed.
    let started = std::time::Instant::now();
    let error = browser
        .wait_text("#list li", "3: never", Duration::from_millis(300))
        .await
        .expect_err("no third item");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "gave up early"
    );
    assert!(matches!(error, BrowserError::Timeout { .. }), "{error:?}");
    let message = error.to_string();
    for part in [
        "#list li",
        "3: never",
        url.as_str(),
        "1: Green curry (large)",
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
    let message = browser
        .find_within("#missing", Duration::from_millis(200))
        .await
        .expect_err("no such element")
        .to_string();
    assert!(
        message.contains("#missing") && message.contains(&url),
        "{message}"
    );
    let message = browser
        .wait_gone("#list li", Duration::from_millis(200))
        .await
        .expect_err("the items stay")
        .to_string();
    assert!(message.contains("#list li"), "{message}");
    let message = browser
        .select("#size", "huge")
        .await
        .expect_err("no such option")
        .to_string();
    assert!(
        message.contains("huge") && message.contains("small"),
        "{message}"
    );
    assert!(matches!(
        browser.screenshot("../escape").await,
        Err(BrowserError::ScreenshotName(_))
    ));

    // Screenshots are the viewport at the size set.
    browser
        .set_size(TABLET.0, TABLET.1)
        .await
        .expect("tablet size");
    assert_eq!(
        browser.viewport().await.expect("viewport"),
        (u64::from(TABLET.0), u64::from(TABLET.1))
    );
    let tablet = browser
        .screenshot("kit-browser-tablet")
        .await
        .expect("tablet screenshot");
    browser
        .set_size(DESKTOP.0, DESKTOP.1)
        .await
        .expect("desktop size");
    let desktop = browser
        .screenshot("kit-browser-desktop.png")
        .await
        .expect("desktop screenshot");
    let screenshots = crossdock_kit::harness::repo_root()
        .canonicalize()
        .expect("repository root")
        .join("screenshots");
    assert_eq!(tablet, screenshots.join("kit-browser-tablet.png"));
    assert_eq!(desktop, screenshots.join("kit-browser-desktop.png"));
    assert_png(&tablet, TABLET);
    assert_png(&desktop, DESKTOP);

    browser.close().await.expect("close the browser");
    assert_cleaned_up(&dir).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_browsers_at_once_are_independent_and_cleaned_up() {
    let addr = orders_server().await;
    let url = format!("http://{addr}/");
    let (first, second) =
        tokio::try_join!(Browser::start(), Browser::start()).expect("start two browsers at once");
    assert_ne!(first.temp_dir(), second.temp_dir());
    assert_ne!(first.chromium_pid(), second.chromium_pid());

    tokio::try_join!(first.goto(&url), second.goto(&url)).expect("open the page in both");
    tokio::try_join!(first.fill("#dish", "Ramen"), second.fill("#dish", "Laksa"))
        .expect("fill both");
    tokio::try_join!(first.click("#add"), second.click("#add")).expect("click both");
    let (one, two) = tokio::try_join!(
        first.wait_text("#list li", "1:", SOON),
        second.wait_text("#list li", "1:", SOON)
    )
    .expect("an item in each");
    assert_eq!(
        (one.as_str(), two.as_str()),
        ("1: Ramen (small)", "1: Laksa (small)")
    );

    // Separate profiles: what one page stores, the other does not see.
    first
        .eval("localStorage.setItem('who', 'first'); return null;")
        .await
        .expect("store in the first");
    assert_eq!(
        second
            .eval("return localStorage.getItem('who');")
            .await
            .expect("read in the second"),
        json!(null)
    );
    assert_eq!(
        first
            .eval("return localStorage.getItem('who');")
            .await
            .expect("read in the first"),
        json!("first")
    );

    // Dropping kills the processes and removes the profile; the other browser goes on.
    // A clone of the WebDriver client outlives the browser, so that the client does not
    // end the session itself on drop: the processes must go all the same.
    let first_dir = first.temp_dir().to_owned();
    assert!(!processes_using(&first_dir).is_empty());
    let client = first.client().clone();
    drop(first);
    assert_cleaned_up(&first_dir).await;
    drop(client);
    second
        .click("#add")
        .await
        .expect("the second browser still works");
    second
        .wait_text("#list li", "2: Laksa", SOON)
        .await
        .expect("a second item");
    let second_dir = second.temp_dir().to_owned();
    second.close().await.expect("close");
    assert_cleaned_up(&second_dir).await;
}

/// Waits until the stream page says its stream is open for the `n`th time and messages
/// arrive on that stream.
async fn stream_flows(browser: &Browser, n: usize) {
    browser
        .wait_text("#state", &format!("open {n}"), SOON)
        .await
        .unwrap_or_else(|e| panic!("the stream opens (time {n}): {e}"));
    browser
        .wait_text("#tick", &format!("on {n}"), SOON)
        .await
        .unwrap_or_else(|e| panic!("messages arrive (stream {n}): {e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_cut_drops_the_page_stream_and_restore_lets_it_reconnect() {
    let opened = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/", get(|| async { Html(STREAM_PAGE) }))
        .route("/events", get(events))
        .with_state(Arc::clone(&opened));
    let server = serve(app).await;
    let proxy = Proxy::start(server).await.expect("start the proxy");
    let browser = Browser::start().await.expect("start the browser");

    browser
        .goto(&proxy.url())
        .await
        .expect("open the page through the proxy");
    stream_flows(&browser, 1).await;
    let before = proxy.connections();
    assert!(before >= 1, "the page came through the proxy");
    assert_eq!(opened.load(Ordering::SeqCst), 1);

    // Cut: the open stream drops at once, and the page's retries are refused.
    proxy.cut().await;
    assert!(proxy.is_cut());
    browser
        .wait_text("#state", "down", SOON)
        .await
        .expect("the page sees the stream drop");
    crossdock_kit::wait_for("the page's retries to be refused", SOON, || async {
        (proxy.refused() >= 3).then_some(())
    })
    .await;
    assert_eq!(
        proxy.connections(),
        before,
        "a connection got through the cut"
    );
    assert_eq!(
        browser.text("#state").await.expect("state"),
        "down",
        "the page reopened its stream during the cut"
    );
    assert_eq!(
        opened.load(Ordering::SeqCst),
        1,
        "a stream reached the server during the cut"
    );

    // Restore: the page's next retry gets through, and messages flow again.
    proxy.restore();
    let after = proxy
        .wait_connections(before + 1, SOON)
        .await
        .expect("the page reconnects");
    assert!(after > before);
    stream_flows(&browser, 2).await;
    assert_eq!(opened.load(Ordering::SeqCst), 2);

    browser.close().await.expect("close");
}

/// An echo server that reports each connection's end.
async fn echo_server() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("echo address");
    let (closed, closes) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let closed = closed.clone();
            tokio::spawn(async move {
                let mut buf = [0_u8; 1024];
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    if stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = closed.send(());
            });
        }
    });
    (addr, closes)
}

async fn echo_once(stream: &mut TcpStream, message: &[u8]) {
    stream
        .write_all(message)
        .await
        .expect("write through the proxy");
    let mut back = vec![0_u8; message.len()];
    tokio::time::timeout(SOON, stream.read_exact(&mut back))
        .await
        .expect("echo in time")
        .expect("read the echo");
    assert_eq!(back, message);
}

/// Whether the peer closed `stream` (end of stream or reset), within a bound.
async fn is_closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0_u8; 16];
    matches!(
        tokio::time::timeout(SOON, stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_forwards_cuts_refuses_and_restores() {
    let (target, mut closes) = echo_server().await;
    let proxy = Proxy::start(target).await.expect("start the proxy");
    assert_eq!(proxy.target(), target);
    assert_eq!(proxy.connections(), 0);

    let mut first = TcpStream::connect(proxy.addr()).await.expect("connect");
    let mut second = TcpStream::connect(proxy.addr()).await.expect("connect");
    echo_once(&mut first, b"hello").await;
    echo_once(&mut second, b"again").await;
    assert_eq!(proxy.connections(), 2);

    // Both forwarded connections close, on both sides.
    proxy.cut().await;
    assert!(is_closed(&mut first).await, "the client side stayed open");
    assert!(is_closed(&mut second).await, "the client side stayed open");
    for _ in 0..2 {
        tokio::time::timeout(SOON, closes.recv())
            .await
            .expect("the server side closes in time")
            .expect("echo server running");
    }

    // New connections are accepted and closed at once, not forwarded.
    let mut refused = TcpStream::connect(proxy.addr()).await.expect("connect");
    assert!(
        is_closed(&mut refused).await,
        "a connection was served during the cut"
    );
    assert_eq!(proxy.refused(), 1);
    assert_eq!(proxy.connections(), 2);
    assert!(
        proxy
            .wait_connections(3, Duration::from_millis(200))
            .await
            .is_err(),
        "wait_connections succeeded during the cut"
    );

    proxy.restore();
    assert!(!proxy.is_cut());
    let mut third = TcpStream::connect(proxy.addr()).await.expect("connect");
    echo_once(&mut third, b"back").await;
    assert_eq!(proxy.wait_connections(3, SOON).await.expect("counted"), 3);

    // Dropping the proxy closes what it forwards.
    drop(proxy);
    assert!(
        is_closed(&mut third).await,
        "dropping the proxy left a connection open"
    );
}
