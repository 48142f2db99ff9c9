//! A small but real tokio program: a multi-threaded runtime with TCP on
//! loopback, timers, file work through spawn_blocking and tokio::fs,
//! channels and signal handling. It is the program the tokio syscall
//! baseline is measured on (test/baseline/measure.sh).
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--minimal") {
        // The tokio baseline: what the runtime itself needs, whatever the
        // program does: start the worker and blocking pools, run a timer,
        // use the blocking pool once, shut down.
        tokio::time::sleep(Duration::from_millis(5)).await;
        tokio::task::spawn_blocking(|| ()).await.expect("blocking task");
        tokio::spawn(async {}).await.expect("task");
        return;
    }
    let dir = std::env::var("AGENT_DIR").unwrap_or_else(|_| "/tmp".to_string());

    // TCP on loopback: a listener task echoes what a client sends.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.expect("server read");
        s.write_all(&buf).await.expect("server write");
    });
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(b"hello").await.expect("client write");
    let mut buf = [0u8; 5];
    c.read_exact(&mut buf).await.expect("client read");
    server.await.expect("server task");

    // Timers.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let _ = tokio::time::timeout(Duration::from_millis(5), std::future::pending::<()>()).await;

    // File work on the blocking pool, and through tokio::fs.
    let path = format!("{}/tokio-agent.{}", dir, std::process::id());
    let p2 = path.clone();
    let n = tokio::task::spawn_blocking(move || {
        std::fs::write(&p2, b"data").expect("write file");
        std::fs::read(&p2).expect("read file").len()
    })
    .await
    .expect("blocking task");
    let meta = tokio::fs::metadata(&path).await.expect("metadata");
    tokio::fs::remove_file(&path).await.expect("remove");

    // Channels.
    let (tx, mut rx) = mpsc::channel::<u32>(4);
    let (otx, orx) = oneshot::channel::<u32>();
    tokio::spawn(async move {
        for i in 0..3 {
            tx.send(i).await.expect("send");
        }
        otx.send(42).expect("oneshot");
    });
    let mut sum = 0;
    while let Some(v) = rx.recv().await {
        sum += v;
    }
    let answer = orx.await.expect("oneshot recv");

    // Signal handling.
    let mut usr1 = signal(SignalKind::user_defined1()).expect("signal");
    unsafe {
        libc::kill(libc::getpid(), libc::SIGUSR1);
    }
    usr1.recv().await.expect("SIGUSR1");

    println!(
        "tokio-agent ok: echo={} file={} len={} sum={} answer={}",
        String::from_utf8_lossy(&buf),
        n,
        meta.len(),
        sum,
        answer
    );
}
