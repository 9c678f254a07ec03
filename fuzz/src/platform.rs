//! A stub platform on the loopback, for adapter calls that go over HTTP (`check_code`):
//! every request is answered `200` with the answer the current fuzz input holds, so the
//! adapter's reading of the platform's answer is fuzzed through its real call path.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Mutex, OnceLock};

use crossdock_channel::{Channel, ChannelError, CodeClaim};

/// What the stub answers next.
static ANSWER: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// The stub's URL (`http://127.0.0.1:PORT`), started on first use.
pub fn base_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the loopback stub");
        let address = listener.local_addr().expect("the stub's address");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || serve(stream));
            }
        });
        format!("http://{address}")
    })
    .clone()
}

/// Answers the requests of one connection (kept alive) until it closes.
fn serve(stream: TcpStream) {
    // One write per answer, sent at once (Nagle's wait for the client's delayed ACK
    // would cost 40 ms an input).
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answer = ANSWER.lock().map(|a| a.clone()).unwrap_or_default();
        let mut response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        )
        .into_bytes();
        response.extend_from_slice(&answer);
        if writer.write_all(&response).is_err() {
            return;
        }
    }
}

/// `channel.check_code(claim)`, the stub answering `answer`.
pub fn check_code(
    channel: &dyn Channel,
    claim: &CodeClaim,
    answer: &[u8],
) -> Result<serde_json::Value, ChannelError> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    });
    if let Ok(mut current) = ANSWER.lock() {
        current.clear();
        current.extend_from_slice(answer);
    }
    runtime.block_on(channel.check_code(claim))
}
