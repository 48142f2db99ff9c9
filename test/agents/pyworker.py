"""pyworker: a small but real Python program for clawos-run --learn's
tests: threads, a TCP echo over loopback, file work in $AGENT_DIR (default
/tmp), JSON and hashing. Prints "ok"."""
import hashlib
import json
import os
import socket
import threading


def echo_server(srv):
    conn, _ = srv.accept()
    with conn:
        conn.sendall(conn.recv(5))


def main():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    t = threading.Thread(target=echo_server, args=(srv,))
    t.start()
    with socket.create_connection(srv.getsockname()) as c:
        c.sendall(b"hello")
        assert c.recv(5) == b"hello"
    t.join()
    srv.close()

    d = os.environ.get("AGENT_DIR", "/tmp")
    p = os.path.join(d, "pyworker.%d" % os.getpid())
    with open(p, "w") as f:
        json.dump({"n": list(range(10))}, f)
    with open(p) as f:
        data = json.load(f)
    os.remove(p)
    assert hashlib.sha256(json.dumps(data).encode()).hexdigest()
    print("ok")


if __name__ == "__main__":
    main()
