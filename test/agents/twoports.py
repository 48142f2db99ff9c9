# An agent that talks to two services: it listens on two ports of its own
# (127.0.0.1 in its network namespace) and connects to each, for the learn
# tests of port proposals. Prints "ok PORT PORT".
import socket
import sys

ports = [int(p) for p in sys.argv[1:]]
listeners = []
for p in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", p))
    s.listen(1)
    listeners.append(s)
for p in ports:
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.connect(("127.0.0.1", p))
    c.sendall(b"x")
    c.close()
print("ok", *ports)
