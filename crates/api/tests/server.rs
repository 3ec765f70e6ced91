//! `api::serve` on a real socket: cached bodies large enough to be sent with `sendfile` arrive
//! byte for byte, also to a client whose small receive buffer and slow reads make every write
//! partial; keep-alive and pipelined requests work; a half-closed client is answered; a body
//! declared too large is refused before it is sent; shutdown ends the server.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use common::TestApp;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tower::ServiceExt;

const THREAD: &str = "/served/big";

/// One response read off the wire.
struct Wire {
    head: String,
    body: Vec<u8>,
}

impl Wire {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Reads one response with a `Content-Length` body, `chunk` bytes at a time, pausing
/// `pause` between reads.
async fn read_response(stream: &mut TcpStream, pending: &mut Vec<u8>, chunk: usize, pause: Duration) -> Wire {
    let mut buffer = vec![0u8; chunk];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(pending[..end].to_vec()).expect("ASCII head");
            let length: usize = head
                .lines()
                .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse().ok())
                .expect("content-length");
            while pending.len() < end + 4 + length {
                let read = stream.read(&mut buffer).await.expect("read");
                assert!(read > 0, "connection closed mid-body");
                pending.extend_from_slice(&buffer[..read]);
                tokio::time::sleep(pause).await;
            }
            let body = pending[end + 4..end + 4 + length].to_vec();
            pending.drain(..end + 4 + length);
            return Wire { head, body };
        }
        let read = stream.read(&mut buffer).await.expect("read");
        assert!(read > 0, "connection closed before a response");
        pending.extend_from_slice(&buffer[..read]);
    }
}

fn get_request(extra: &str) -> String {
    format!("GET /api/v1/comments?thread={THREAD} HTTP/1.1\r\nhost: test\r\n{extra}\r\n")
}

/// What `serving` starts.
struct Served {
    _app: TestApp,
    address: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
    /// The thread list's bytes as the router gives them.
    expected: Vec<u8>,
}

/// A served app whose thread list is about 40 kB and already in the cache. `send_buffer`:
/// the accepted sockets' send buffer size (inherited from the listener), small to make the
/// kernel take each response in parts.
async fn serving(send_buffer: Option<u32>) -> Served {
    serving_with(send_buffer, |_| {}).await
}

async fn serving_with(send_buffer: Option<u32>, adjust: impl FnOnce(&mut api::ApiConfig)) -> Served {
    let app = TestApp::with_config(|config| {
        config.limits.cache_sendfile_bytes_min = 8 * 1024;
        adjust(config);
    })
    .await;
    for n in 0..50 {
        let text = format!("Comment {n}: {}", "a long and thoughtful remark about the article. ".repeat(12));
        app.comment(THREAD, &text, None, None).await;
    }
    let uri = format!("/api/v1/comments?thread={THREAD}");
    let fill = app.service.clone().oneshot(Request::get(&uri).body(Body::empty()).expect("request")).await;
    let expected = fill.expect("infallible").into_body().collect().await.expect("body").to_bytes().to_vec();
    assert!(expected.len() > 30_000, "the list is only {} bytes", expected.len());
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(bytes) = send_buffer {
        socket.set_send_buffer_size(bytes).expect("send buffer");
    }
    socket.bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let listener = socket.listen(64).expect("listen");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve(listener, app.state.clone(), async move {
        let _ = stopped.await;
    }));
    Served { _app: app, address, stop, server, expected }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_cached_body_arrives_whole_over_keep_alive() {
    let Served { _app, address, stop, server, expected } = serving(None).await;
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let mut pending = Vec::new();
    for _ in 0..3 {
        stream.write_all(get_request("").as_bytes()).await.expect("write");
        let response = read_response(&mut stream, &mut pending, 64 * 1024, Duration::ZERO).await;
        assert!(response.head.starts_with("HTTP/1.1 200"), "{}", response.head);
        assert_eq!(response.header("afterword-cache"), Some("hit"));
        assert_eq!(response.body, expected);
    }
    // The gzip variant is small and written from the heap; it still decodes to the same JSON.
    stream.write_all(get_request("accept-encoding: gzip\r\n").as_bytes()).await.expect("write");
    let response = read_response(&mut stream, &mut pending, 64 * 1024, Duration::ZERO).await;
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    let mut decoded = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&response.body[..]), &mut decoded).expect("gunzip");
    assert_eq!(decoded, expected);
    stop.send(()).expect("server running");
    drop(stream);
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("server stops").expect("server task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_with_a_small_buffer_gets_every_byte_of_pipelined_responses() {
    let Served { _app, address, stop, server, expected } = serving(Some(4 * 1024)).await;
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4 * 1024).expect("receive buffer");
    let mut stream = socket.connect(address).await.expect("connect");
    // Five requests at once: the server writes each response while the client is still
    // reading the one before, so the socket fills and writes stop part-way.
    let requests: String = (0..5).map(|_| get_request("")).collect();
    stream.write_all(requests.as_bytes()).await.expect("write");
    let mut pending = Vec::new();
    for _ in 0..5 {
        let response = read_response(&mut stream, &mut pending, 1_000, Duration::from_micros(200)).await;
        assert!(response.head.starts_with("HTTP/1.1 200"), "{}", response.head);
        assert_eq!(response.body.len(), expected.len());
        assert!(response.body == expected, "a body arrived changed");
    }
    stop.send(()).expect("server running");
    drop(stream);
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("server stops").expect("server task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_the_cache_does_not_answer_reach_the_router() {
    let Served { _app, address, stop, server, .. } = serving(None).await;
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let mut pending = Vec::new();
    let request = "GET /api/v1/comments?thread=/x&limit=abc HTTP/1.1\r\nhost: test\r\n\r\n";
    stream.write_all(request.as_bytes()).await.expect("write");
    let response = read_response(&mut stream, &mut pending, 64 * 1024, Duration::ZERO).await;
    assert!(response.head.starts_with("HTTP/1.1 400"), "{}", response.head);
    let body: serde_json::Value = serde_json::from_slice(&response.body).expect("JSON error");
    assert_eq!(body["error"]["field"], "limit", "{body}");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n").await.expect("write");
    let health = read_response(&mut stream, &mut pending, 64 * 1024, Duration::ZERO).await;
    assert!(health.head.starts_with("HTTP/1.1 200"), "{}", health.head);
    stop.send(()).expect("server running");
    drop(stream);
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("server stops").expect("server task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_bound_a_client_waits_until_one_closes() {
    let Served { _app, address, stop, server, .. } =
        serving_with(None, |config| config.limits.connections_max = 1).await;
    let mut first = TcpStream::connect(address).await.expect("connect");
    let mut first_pending = Vec::new();
    first.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n").await.expect("write");
    let answer = read_response(&mut first, &mut first_pending, 64 * 1024, Duration::ZERO).await;
    assert!(answer.head.starts_with("HTTP/1.1 200"), "{}", answer.head);
    // The kernel completes the second connection (backlog), but the server does not take it.
    let mut second = TcpStream::connect(address).await.expect("connect");
    second.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n").await.expect("write");
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), second.read(&mut byte)).await;
    assert!(early.is_err(), "the second connection was served while the first was open");
    drop(first);
    let mut pending = Vec::new();
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        read_response(&mut second, &mut pending, 64 * 1024, Duration::ZERO),
    )
    .await
    .expect("served once the first closed");
    assert!(answer.head.starts_with("HTTP/1.1 200"), "{}", answer.head);
    stop.send(()).expect("server running");
    drop(second);
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("server stops").expect("server task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_closes_its_sending_side_still_gets_its_answers() {
    let Served { _app, address, stop, server, expected } = serving(None).await;
    let requests = [
        ("/healthz", None),
        ("/static/embed.js", None),
        ("/api/v1/threads", None),
        (&*format!("/api/v1/comments?thread={THREAD}"), Some(&expected)),
    ];
    for (path, body) in requests {
        for _ in 0..20 {
            let mut stream = TcpStream::connect(address).await.expect("connect");
            let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
            stream.write_all(request.as_bytes()).await.expect("write");
            stream.shutdown().await.expect("half-close");
            let mut pending = Vec::new();
            let response = tokio::time::timeout(
                Duration::from_secs(5),
                read_response(&mut stream, &mut pending, 64 * 1024, Duration::ZERO),
            )
            .await
            .unwrap_or_else(|_| panic!("no answer to {path}"));
            assert!(response.head.starts_with("HTTP/1.1 200"), "{path}: {}", response.head);
            if let Some(body) = body {
                assert!(&response.body == body, "{path}: a body arrived changed");
            }
        }
    }
    stop.send(()).expect("server running");
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("server stops").expect("server task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_declared_too_large_is_refused_before_it_is_sent() {
    let Served { _app, address, stop, server, .. } = serving(None).await;
    for expect in ["", "expect: 100-continue\r\n"] {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        let request = format!(
            "POST /api/v1/comments HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
             content-length: 100000000\r\n{expect}\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut pending = Vec::new();
        let response = tokio::time::timeout(
            Duration::from_secs(5),
            read_response(&mut stream, &mut pending, 64 * 1024, Duration::ZERO),
        )
        .await
        .unwrap_or_else(|_| panic!("no answer before the body ({expect:?})"));
        assert!(response.head.starts_with("HTTP/1.1 413"), "{expect:?}: {}", response.head);
        let body: serde_json::Value = serde_json::from_slice(&response.body).expect("JSON error");
        assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    }
    stop.send(()).expect("server running");
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("server stops").expect("server task");
}
